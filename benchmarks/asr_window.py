"""What a shorter Whisper encoder window would save, and what it would cost in word errors.

faster-whisper pads every utterance's features to Whisper's 30 s window (3000 frames, `pad_or_trim`) before the
encoder, whatever its `chunk_length`: a 2 s request costs the encoder as much as 30 s of speech. CTranslate2's encoder
accepts fewer frames. This script trims the padding to a shorter window (never shorter than the utterance) in
`WhisperModel.encode`, here only, and transcribes the English clips of audio_fixtures/real_speech/ recorded and over
a telephone round trip with each window, with the decoding options the server uses apart from the prompt. Prints
the pooled word error rate per window and the median time of one transcription; never asserts. The server itself
always encodes the full 30 s window (voice/asr.py).

Usage: python benchmarks/asr_window.py [--windows-s 30 15 10]
"""

from __future__ import annotations

import os

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import argparse
import statistics
import time

import numpy as np
from faster_whisper import WhisperModel

from qa.caller_audio import load_real_speech, telephone_round_trip, word_error_rate
from voice.asr import AsrOptions
from voice.models import whisper_model_dir

FRAMES_PER_S = 100


class WindowedWhisper(WhisperModel):
    """Whisper whose encoder sees `window_frames` frames (or the utterance, if longer) instead of 3000."""

    window_frames: int | None = None

    def encode(self, features: np.ndarray):
        window = self.window_frames
        if window is not None and features.shape[-1] > window:
            # The padding faster-whisper added is exact zeros; a real log-mel frame never is.
            flat = features.reshape(-1, features.shape[-1])
            content = np.flatnonzero(np.any(flat != 0, axis=0))
            used = int(content[-1]) + 1 if content.size else 0
            features = features[..., : max(window, -(-used // FRAMES_PER_S) * FRAMES_PER_S)]
        return super().encode(features)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows-s", type=int, nargs="+", default=[30, 15, 10], help="encoder windows, seconds")
    args = parser.parse_args()

    options = AsrOptions()
    model = WindowedWhisper(
        str(whisper_model_dir(None)),
        device="cpu",
        compute_type="int8",
        cpu_threads=options.cpu_threads,
        local_files_only=True,
    )
    clips = load_real_speech("en")
    sets = {"recorded": [clip.samples_16k for clip in clips]}
    sets["telephone"] = [telephone_round_trip(samples) for samples in sets["recorded"]]
    references = [clip.text for clip in clips]
    print(f"{len(clips)} English clips; load {_load()}\n")
    texts = {(window, name): [] for window in args.windows_s for name in sets}
    seconds: dict[int, list[float]] = {window: [] for window in args.windows_s}
    # Clip by clip, every window in turn, so that the drifting load of a shared machine hits all alike.
    for index in range(len(clips)):
        for window in args.windows_s:
            model.window_frames = None if window >= 30 else window * FRAMES_PER_S
            for name, audio in sets.items():
                started = time.perf_counter()
                segments, _info = model.transcribe(
                    audio[index],
                    language="en",
                    beam_size=options.beam_size,
                    temperature=0.0,
                    condition_on_previous_text=False,
                    vad_filter=False,
                    without_timestamps=True,
                )
                texts[window, name].append(" ".join(segment.text.strip() for segment in segments))
                seconds[window].append(time.perf_counter() - started)
    print("| encoder window | WER recorded | WER telephone | median transcription |")
    print("|---|---|---|---|")
    for window in args.windows_s:
        rates = [word_error_rate(references, texts[window, name]) for name in sets]
        median_ms = statistics.median(seconds[window]) * 1000
        print(f"| {window} s | {rates[0]:.1%} | {rates[1]:.1%} | {median_ms:.0f} ms |")
    print(f"\nload {_load()}")


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f} (1/5/15 min) on {os.cpu_count()} CPUs"


if __name__ == "__main__":
    main()
