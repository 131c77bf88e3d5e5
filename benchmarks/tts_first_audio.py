"""How soon Piper's first sentence is ready, its real-time factor and its speaking rate.

For each `--length-scales` and `--threads` value, synthesises a typical two-sentence reply `--repeat` times and
prints time to the first chunk (what the caller waits for after the turn ends), total time and real-time factor
(synthesis time / audio time). `--with-asr` repeats the runs while Whisper transcribes in a background thread.
Then, per length_scale, the speaking rate over every English reply of the catalogue in prompts/: words per minute
of audio, pauses Piper leaves at sentence ends included. Never asserts on time.

Usage: python benchmarks/tts_first_audio.py [--repeat 10] [--length-scales 1.0 1.1 1.2 1.35] [--threads 1 2 0]
"""

from __future__ import annotations

import os

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import argparse
import re
import statistics
import threading
import time
from pathlib import Path

import numpy as np

from qa.stats import percentile
from telephony.voice_services import fixed_replies
from voice.models import piper_voice_files, whisper_model_dir
from voice.prompts import load_catalogue
from voice.tts_piper import PiperOptions, PiperSynthesizer

PROMPTS_DIR = Path(__file__).resolve().parents[1] / "prompts"
TYPICAL_REPLY = "I am connecting you to our billing team and passing on what you told me. Please stay on the line."


def count_words(text: str) -> int:
    return len(re.findall(r"[\w']+", text))


def measure(synthesizer: PiperSynthesizer, text: str, repeat: int) -> tuple[list[float], list[float], list[float]]:
    """Per run: seconds to the first chunk, seconds in total, seconds of audio."""
    first_s, total_s, audio_s = [], [], []
    for _ in range(repeat):
        started = time.perf_counter()
        samples = 0
        for index, chunk in enumerate(synthesizer.synthesize(text)):
            if index == 0:
                first_s.append(time.perf_counter() - started)
            samples += chunk.size
        total_s.append(time.perf_counter() - started)
        audio_s.append(samples / synthesizer.sample_rate_hz)
    return first_s, total_s, audio_s


class BackgroundRecognition:
    """Whisper transcribing 3 s of speech-like noise in a loop on its own thread, as another call's turn would."""

    def __init__(self) -> None:
        from voice.asr import SpeechRecognizer

        self._recognizer = SpeechRecognizer(whisper_model_dir(None))
        # The encoder sees a 30 s window whatever the input, so any 3 s of audio costs about the same.
        self._samples = (np.random.default_rng(0).standard_normal(48_000) * 0.05).astype(np.float32)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.transcriptions = 0

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._recognizer.transcribe(self._samples)
            self.transcriptions += 1

    def __enter__(self) -> BackgroundRecognition:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=10, help="runs per setting (default 10)")
    parser.add_argument(
        "--length-scales",
        type=float,
        nargs="+",
        default=sorted({1.0, 1.1, 1.2, 1.3, PiperOptions().length_scale, 1.5}),
        help="Piper length_scale values to try",
    )
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[1, 2], help="onnx intra-op threads (0: onnxruntime's default)"
    )
    parser.add_argument("--with-asr", action="store_true", help="also run with Whisper busy in the background")
    parser.add_argument("--text", default=TYPICAL_REPLY, help="the reply to speak")
    args = parser.parse_args()

    words = count_words(args.text)
    print(f"reply: {words} words, repeat {args.repeat}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    model, config = piper_voice_files(None)
    backgrounds = [False, True] if args.with_asr else [False]
    for threads in args.threads:
        for length_scale in args.length_scales:
            synthesizer = PiperSynthesizer(model, config, PiperOptions(length_scale=length_scale, onnx_threads=threads))
            list(synthesizer.synthesize("Warm up."))
            for busy in backgrounds:
                if busy:
                    with BackgroundRecognition() as background:
                        first_s, total_s, audio_s = measure(synthesizer, args.text, args.repeat)
                    note = f", with ASR ({background.transcriptions} transcriptions)"
                else:
                    first_s, total_s, audio_s = measure(synthesizer, args.text, args.repeat)
                    note = ""
                thread_label = "default" if threads == 0 else str(threads)
                print(
                    f"threads {thread_label:<7} length_scale {length_scale:4.2f}{note}: "
                    f"first audio min {min(first_s) * 1000:4.0f} ms p95 {percentile(first_s, 0.95) * 1000:4.0f} ms, "
                    f"total min {min(total_s) * 1000:4.0f} ms p95 {percentile(total_s, 0.95) * 1000:4.0f} ms, "
                    f"RTF {sum(total_s) / sum(audio_s):.3f}, "
                    f"{words / statistics.mean(audio_s) * 60:.0f} WPM ({statistics.mean(audio_s):.2f} s of audio)"
                )

    replies = fixed_replies(load_catalogue(PROMPTS_DIR, "en"))
    catalogue_words = sum(count_words(text) for text in replies)
    print(f"speaking rate over the {len(replies)} English replies of the catalogue ({catalogue_words} words):")
    for length_scale in args.length_scales:
        synthesizer = PiperSynthesizer(model, config, PiperOptions(length_scale=length_scale))
        per_reply = []
        total_s = 0.0
        for text in replies:
            audio_s = sum(chunk.size for chunk in synthesizer.synthesize(text)) / synthesizer.sample_rate_hz
            per_reply.append(count_words(text) / audio_s * 60)
            total_s += audio_s
        print(
            f"length_scale {length_scale:4.2f}: {catalogue_words / total_s * 60:.0f} WPM overall, per reply "
            f"min {min(per_reply):.0f} median {statistics.median(per_reply):.0f} max {max(per_reply):.0f}"
        )


if __name__ == "__main__":
    main()
