"""How well and how fast Smart Turn v3.2 (voice/turn_model.py) tells a finished sentence from one cut mid-way.

Runs every English clip of audio_fixtures/real_speech/ (recorded speech, over a telephone round trip too) through
`SmartTurn.probability`: the whole clip (ending 100 ms after its last loud sample), and the same clip cut at 40 % and
60 % of its length (an unfinished phrase), each followed by `--tails` ms of silence (0 is what the pipeline passes:
the turn up to its last voiced window). Prints, per tail and audio path, how often whole clips score at or above
0.5 and 0.9 and how often cut ones stay below 0.5 or reach 0.9 (the policy's thresholds), then the time of one
score. Cutting a clip is a stand-in for a mid-sentence pause: a real pause ends a word, a cut may end mid-word.
Never asserts.

Usage: python benchmarks/smart_turn.py [--tails 0 200] [--repeat 20] [--threads 1]
"""

from __future__ import annotations

import os

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import argparse
import statistics
import time

import numpy as np

from qa.caller_audio import load_real_speech, telephone_round_trip
from qa.stats import percentile
from voice.turn_model import SAMPLE_RATE_HZ, SmartTurn, TurnModelOptions

CUTS = (0.4, 0.6)


def speech_end(samples: np.ndarray) -> np.ndarray:
    """The clip up to 100 ms after its last sample above a tenth of its peak (recordings end with silence)."""
    loud = np.flatnonzero(np.abs(samples) > 0.1 * np.abs(samples).max())
    return samples[: loud[-1] + SAMPLE_RATE_HZ // 10] if loud.size else samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tails", type=int, nargs="+", default=[0, 200], help="ms of silence after the speech")
    parser.add_argument("--repeat", type=int, default=20, help="timed scores of one 3 s clip")
    parser.add_argument("--threads", type=int, default=TurnModelOptions().threads)
    args = parser.parse_args()

    model = SmartTurn(options=TurnModelOptions(threads=args.threads))
    clips = [speech_end(clip.samples_16k) for clip in load_real_speech("en")]
    paths = {"recorded": clips, "telephone": [telephone_round_trip(clip) for clip in clips]}
    print(f"{len(clips)} English clips; load {_load()}\n")
    print("| audio | tail ms | whole >= 0.5 | whole >= 0.9 | whole median | cut < 0.5 | cut >= 0.9 | cut median |")
    print("|---|---|---|---|---|---|---|---|")
    for name, audio in paths.items():
        for tail_ms in args.tails:
            silence = np.zeros(tail_ms * SAMPLE_RATE_HZ // 1000, dtype=np.float32)
            whole = np.array([model.probability(np.concatenate([clip, silence])) for clip in audio])
            cut = np.array(
                [
                    model.probability(np.concatenate([clip[: int(clip.size * share)], silence]))
                    for clip in audio
                    for share in CUTS
                ]
            )
            print(
                f"| {name} | {tail_ms} | {np.mean(whole >= 0.5):.0%} | {np.mean(whole >= 0.9):.0%} "
                f"| {np.median(whole):.2f} | {np.mean(cut < 0.5):.0%} | {np.mean(cut >= 0.9):.0%} "
                f"| {np.median(cut):.2f} |",
                flush=True,
            )
    sample = clips[0][: 3 * SAMPLE_RATE_HZ]
    timings = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        model.probability(sample)
        timings.append((time.perf_counter() - started) * 1000)
    print(
        f"\none score, {args.threads} thread(s): median {statistics.median(timings):.0f} ms, "
        f"p95 {percentile(timings, 0.95):.0f} ms, min {min(timings):.0f} ms ({args.repeat} runs); load {_load()}"
    )


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f} (1/5/15 min) on {os.cpu_count()} CPUs"


if __name__ == "__main__":
    main()
