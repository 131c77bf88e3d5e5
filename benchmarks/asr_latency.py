"""How long Whisper tiny.en (int8) takes for one caller utterance, to choose thread counts for two cores.

Runs the real English clips of 2-5 s from audio_fixtures/real_speech/ through `SpeechRecognizer.transcribe` with each
`--threads` value, alone and while Piper synthesises replies in a background thread (as happens when one call is
answered while another caller speaks). Prints min, median and p95 per setting; never asserts on time.

Usage: python benchmarks/asr_latency.py [--repeat 5] [--threads 1 2] [--beam-size 5] [--tts-threads 1 0]
"""

from __future__ import annotations

import os

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import argparse
import json
import statistics
import threading
import time
from pathlib import Path

import numpy as np
import soxr

from qa.stats import percentile
from voice.asr import SAMPLE_RATE_HZ, AsrOptions, SpeechRecognizer
from voice.models import piper_voice_files, whisper_model_dir
from voice.wavfile import read_wav

REAL_SPEECH_DIR = Path(__file__).resolve().parents[1] / "audio_fixtures" / "real_speech"
BACKGROUND_REPLY = "I am connecting you to our billing team and passing on what you told me. Please stay on the line."


def load_clips(min_s: float, max_s: float) -> list[tuple[str, np.ndarray]]:
    """The English clips between `min_s` and `max_s` seconds, as float32 at 16 kHz."""
    manifest = json.loads((REAL_SPEECH_DIR / "manifest.json").read_text(encoding="utf-8"))
    clips = []
    for entry in manifest:
        if entry["language"] == "en" and min_s <= entry["duration_s"] <= max_s:
            clips.append((Path(entry["file"]).stem, read_wav_16k(REAL_SPEECH_DIR / entry["file"])))
    return clips


def read_wav_16k(path: Path) -> np.ndarray:
    """A 16-bit mono WAV file as float32 at 16 kHz."""
    samples, rate_hz = read_wav(path)
    if rate_hz != SAMPLE_RATE_HZ:
        samples = soxr.resample(samples, rate_hz, SAMPLE_RATE_HZ).astype(np.float32)
    return samples


def time_clips(
    recognizers: dict[str, SpeechRecognizer], clips: list[tuple[str, np.ndarray]], repeat: int, at_once: int = 1
) -> dict[str, list[float]]:
    """Seconds per transcription for each setting, every clip `repeat` times.

    With `at_once` > 1, that many threads transcribe the clip at the same moment (callers whose turns end
    together) and each one's time counts. Settings alternate clip by clip, so that the drifting load of a shared
    machine hits them alike.
    """
    timings: dict[str, list[float]] = {label: [] for label in recognizers}
    for _ in range(repeat):
        for _name, samples in clips:
            for label, recognizer in recognizers.items():
                timings[label].extend(_transcribe_together(recognizer, samples, at_once))
    return timings


def _transcribe_together(recognizer: SpeechRecognizer, samples: np.ndarray, at_once: int) -> list[float]:
    seconds: list[float] = []
    start = threading.Barrier(at_once)

    def one() -> None:
        start.wait()
        started = time.perf_counter()
        recognizer.transcribe(samples)
        seconds.append(time.perf_counter() - started)

    threads = [threading.Thread(target=one) for _ in range(at_once)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return seconds


class BackgroundSpeech:
    """Piper synthesising replies in a loop on its own thread, as a concurrent call's reply would."""

    def __init__(self, onnx_threads: int) -> None:
        from voice.tts_piper import PiperOptions, PiperSynthesizer

        model, config = piper_voice_files(None)
        self._synthesizer = PiperSynthesizer(model, config, PiperOptions(onnx_threads=onnx_threads))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.sentences = 0

    def _loop(self) -> None:
        while not self._stop.is_set():
            for _chunk in self._synthesizer.synthesize(BACKGROUND_REPLY):
                self.sentences += 1

    def __enter__(self) -> BackgroundSpeech:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


def report(label: str, timings: list[float], audio_s: float) -> None:
    print(
        f"{label:<52} min {min(timings) * 1000:5.0f} ms  median {statistics.median(timings) * 1000:5.0f} ms  "
        f"p95 {percentile(timings, 0.95) * 1000:5.0f} ms  RTF {sum(timings) / audio_s:.3f}  (n={len(timings)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="runs of every clip per setting (default 5)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="Whisper cpu_threads to try")
    parser.add_argument("--beam-size", type=int, default=AsrOptions().beam_size, help="beam width")
    parser.add_argument(
        "--tts-threads",
        type=int,
        nargs="*",
        default=[1, 0],
        help="Piper onnx threads for the concurrent-TTS runs (0: onnxruntime's default); none to skip",
    )
    parser.add_argument("--min-s", type=float, default=2.0, help="shortest clip, seconds")
    parser.add_argument("--max-s", type=float, default=5.0, help="longest clip, seconds")
    args = parser.parse_args()

    clips = load_clips(args.min_s, args.max_s)
    if not clips:
        raise SystemExit(f"no English clips of {args.min_s}-{args.max_s} s in {REAL_SPEECH_DIR}")
    audio_s = sum(samples.size for _name, samples in clips) / SAMPLE_RATE_HZ * args.repeat
    print(
        f"{len(clips)} clips of {args.min_s}-{args.max_s} s ({audio_s / args.repeat:.1f} s of audio), "
        f"repeat {args.repeat}, beam {args.beam_size}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
    )
    model_dir = whisper_model_dir(None)

    def load(threads: int, workers: int) -> SpeechRecognizer:
        recognizer = SpeechRecognizer(
            model_dir, AsrOptions(beam_size=args.beam_size, cpu_threads=threads, num_workers=workers)
        )
        recognizer.transcribe(clips[0][1])  # warm-up: the first call allocates buffers
        return recognizer

    recognizers = {f"cpu_threads={threads}": load(threads, 1) for threads in args.threads}
    for label, timings in time_clips(recognizers, clips, args.repeat).items():
        report(f"{label}, alone", timings, audio_s)
    for tts_threads in args.tts_threads:
        tts_label = "default" if tts_threads == 0 else str(tts_threads)
        with BackgroundSpeech(tts_threads) as background:
            all_timings = time_clips(recognizers, clips, args.repeat)
        for label, timings in all_timings.items():
            report(f"{label}, with TTS (onnx threads {tts_label})", timings, audio_s)
        print(f"{'':<52} (TTS made {background.sentences} sentences meanwhile)")

    # Two calls whose turns end together: does a second model replica (num_workers) let them run side by side?
    pairs = {
        f"cpu_threads={threads} num_workers={workers}": load(threads, workers)
        for threads in args.threads
        for workers in (1, 2)
    }
    for label, timings in time_clips(pairs, clips, args.repeat, at_once=2).items():
        report(f"{label}, 2 at once", timings, audio_s * 2)


if __name__ == "__main__":
    main()
