"""Throughput of the audio plumbing: mu-law encode/decode and soxr resampling of 60 s of audio.

    python benchmarks/codec_throughput.py [--repeat 20] [--seconds 60]

Prints the minimum and 95th-percentile wall time per operation and the real-time factor (p95 time / audio
duration; 0.001 means a minute of audio takes 60 ms). The streaming rows feed the audio in 20 ms chunks, as a call
does, so they include the per-chunk overhead. Figures only: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from telephony.twilio.framing import FRAME_MS, TWILIO_SAMPLE_RATE_HZ, pcm_to_twilio_frames
from telephony.twilio.mulaw import mulaw_to_pcm16, pcm16_to_mulaw
from voice.pcm import float32_to_pcm16
from voice.resample import RESAMPLE_QUALITY, StreamResampler, resample

ASR_SAMPLE_RATE_HZ = 16000
PIPER_SAMPLE_RATE_HZ = 22050


def _test_audio(rate_hz: int, seconds: float) -> np.ndarray:
    # Speech-band tones under a little noise: the codec's cost does not depend on content, soxr's barely.
    rng = np.random.default_rng(0)
    t = np.arange(int(rate_hz * seconds)) / rate_hz
    tones = sum(0.15 * np.sin(2 * np.pi * hz * t) for hz in (220.0, 660.0, 1800.0))
    return (tones + 0.05 * rng.standard_normal(len(t))).astype(np.float32)


def _streamed(samples: np.ndarray, from_hz: int, to_hz: int) -> Callable[[], object]:
    chunk = from_hz * FRAME_MS // 1000
    chunks = [samples[start : start + chunk] for start in range(0, len(samples), chunk)]
    stream = StreamResampler(from_hz, to_hz)

    def run() -> object:
        out = [stream.process(piece) for piece in chunks]
        out.append(stream.flush())
        return out

    return run


def _time(run: Callable[[], object], repeat: int) -> np.ndarray:
    run()  # warm-up: first-call allocations and soxr's filter design are not throughput
    timings_s = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        timings_s.append(time.perf_counter() - started)
    return np.asarray(timings_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20, help="timed runs per operation (default 20)")
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of audio per run (default 60)")
    args = parser.parse_args()
    if args.repeat < 1 or args.seconds <= 0:
        parser.error("--repeat must be at least 1 and --seconds positive")

    phone = _test_audio(TWILIO_SAMPLE_RATE_HZ, args.seconds)
    phone_pcm16 = float32_to_pcm16(phone)
    phone_mulaw = pcm16_to_mulaw(phone_pcm16)
    piper = _test_audio(PIPER_SAMPLE_RATE_HZ, args.seconds)

    cases: list[tuple[str, Callable[[], object]]] = [
        ("mu-law encode (int16 -> bytes)", lambda: pcm16_to_mulaw(phone_pcm16)),
        ("mu-law decode (bytes -> int16)", lambda: mulaw_to_pcm16(phone_mulaw)),
        ("resample 8k -> 16k one-shot", lambda: resample(phone, TWILIO_SAMPLE_RATE_HZ, ASR_SAMPLE_RATE_HZ)),
        ("resample 22.05k -> 8k one-shot", lambda: resample(piper, PIPER_SAMPLE_RATE_HZ, TWILIO_SAMPLE_RATE_HZ)),
        ("resample 8k -> 16k, 20 ms chunks", _streamed(phone, TWILIO_SAMPLE_RATE_HZ, ASR_SAMPLE_RATE_HZ)),
        ("resample 22.05k -> 8k, 20 ms chunks", _streamed(piper, PIPER_SAMPLE_RATE_HZ, TWILIO_SAMPLE_RATE_HZ)),
        ("piper 22.05k float -> twilio frames", lambda: pcm_to_twilio_frames(piper, PIPER_SAMPLE_RATE_HZ)),
    ]

    print(f"{args.seconds:g} s of audio, {args.repeat} runs each, soxr quality {RESAMPLE_QUALITY}")
    print(f"{'operation':<38}{'min ms':>9}{'p95 ms':>9}{'RTF (p95)':>12}")
    for name, run in cases:
        timings_s = _time(run, args.repeat)
        p95_s = float(np.percentile(timings_s, 95))
        print(f"{name:<38}{timings_s.min() * 1000:>9.2f}{p95_s * 1000:>9.2f}{p95_s / args.seconds:>12.6f}")


if __name__ == "__main__":
    main()
