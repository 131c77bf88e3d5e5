"""How long callers wait: the greeting's audio length, and the time from the call's start to the transfer sentence.

1. The greeting of each catalogue language (prompts/<lang>/replies.yaml), synthesised with the configured Piper
   voice at each pace (`VOICE_AGENT_VOICE_LENGTH_SCALE`, Piper's length_scale), in seconds of audio, with the
   transfer sentence a caller then hears: the median of five syntheses (Piper's generator noise varies the length
   by a few tenths of a second).
2. Calls through the real Media Streams path (the QA replay's in-process server, `qa.replay`, with the bundled
   Whisper tiny.en and Piper voice): a caller who says "Agent." 1.5 s into the greeting, and the fixture call
   audio_fixtures/calls/billing_then_agent.json (a question about a bill, then a person). For each: when the
   transfer sentence's first frame reached the caller, counted from the stream's start, and how much of the call
   was the agent talking (frames played, from the replay's timeline).

Prints figures and the machine load; never asserts on time.

Usage: python benchmarks/greeting_to_person.py [--scales 1.0 1.1 1.25] [--calls 3]
"""

from __future__ import annotations

import os

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import argparse
import asyncio
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from qa.fixtures import CallerVoice, load_fixture, prepare_call
from qa.replay import replay_calls
from qa.server import InProcessServer
from voice.piper_options import PiperOptions
from voice.prompts import LANGUAGES, load_catalogue

REPO = Path(__file__).resolve().parent.parent
BILLING_THEN_AGENT = REPO / "audio_fixtures" / "calls" / "billing_then_agent.json"
# The caller cuts into the greeting: 1.5 s of silence from the start of the stream, then "Agent."
AGENT_DURING_GREETING = {
    "name": "agent_during_greeting",
    "language": "en",
    "description": "Says agent 1.5 s into the greeting.",
    "wait_for_greeting": False,
    "turns": [
        {"pause_ms": 1500, "wait": "none"},
        {"say": "Agent.", "expect": {"intent": "speak_to_person", "action": "transfer"}},
    ],
    "expect": {"outcome": "transfer"},
}


def greeting_lengths(scales: list[float], voice_file: Path | None) -> None:
    """Print the greeting's and the transfer sentence's audio length per language and pace."""
    from voice.models import piper_voice_files
    from voice.tts_piper import PiperSynthesizer

    model, config = piper_voice_files(voice_file)
    catalogues = {language: load_catalogue(REPO / "prompts", language) for language in LANGUAGES}
    print(f"voice {model.name}; audio length in seconds\n")
    print("| language | length_scale | greeting | transfer sentence (key 0 at once) | greeting text |")
    print("|---|---|---|---|---|")
    for scale in scales:
        synthesizer = PiperSynthesizer(model, config, PiperOptions(length_scale=scale))
        for language, catalogue in catalogues.items():
            replies = catalogue.replies
            department = catalogue.policy.default_department
            greeting = _seconds(synthesizer, replies.greeting)
            transfer = _seconds(synthesizer, replies.transfer_to(department, caller_told=False))
            print(f"| {language} | {scale:.2f} | {greeting:.2f} | {transfer:.2f} | {replies.greeting} |", flush=True)


SYNTHESES = 5


def _seconds(synthesizer: Any, text: str) -> float:
    lengths = [sum(chunk.size for chunk in synthesizer.synthesize(text)) for _ in range(SYNTHESES)]
    return statistics.median(lengths) / synthesizer.sample_rate_hz


def _transfer_timing(data: dict[str, Any]) -> dict[str, float | None]:
    """From one replayed call: when the transfer sentence started (ms from the stream's start) and agent talk time."""
    turns = data["turns"]
    last = turns[-1] if turns else None
    # The transfer sentence is the agent audio that starts after the caller's last turn began.
    start = last["start_ms"] if last else None
    stretches = data["timeline"]["agent_audio"]
    after = [stretch for stretch in stretches if start is not None and stretch["start_ms"] >= start]
    talking_ms = sum(stretch["end_ms"] - stretch["start_ms"] for stretch in stretches)
    return {
        "transfer_sentence_ms": after[0]["start_ms"] if after else None,
        "transfer_sentence_end_ms": after[-1]["end_ms"] if after else None,
        "agent_talking_ms": float(talking_ms),
        "call_ms": float(data["duration_ms"]),
        "response_latency_ms": last["response_latency_ms"] if last else None,
    }


def replayed_calls(count: int, folder: Path) -> None:
    """Replay the two calls `count` times each and print the median timings."""
    fixture_path = folder / "agent_during_greeting.json"
    fixture_path.write_text(json.dumps(AGENT_DURING_GREETING), encoding="utf-8")
    voice = CallerVoice()
    calls = [prepare_call(load_fixture(path), voice) for path in (fixture_path, BILLING_THEN_AGENT)]
    print(
        "\nreplayed calls, ms from the start of the stream (median of "
        f"{count}); agent talking = agent audio played to the caller\n"
    )
    print(
        "| call | outcome | transfer sentence starts | transfer sentence ends | agent talking | "
        "response latency of the last turn | load (1 min) |"
    )
    print("|---|---|---|---|---|---|---|")
    with InProcessServer(language="en") as server:
        for call in calls:
            timings, outcomes, loads = [], set(), []
            for run in range(count):
                result = asyncio.run(replay_calls([call], folder / f"report-{run}", in_process=server, progress=_quiet))
                data = result.calls[0].data
                outcomes.add(str(data["ended"]["outcome"]))
                timings.append(_transfer_timing(data))
                loads.append(os.getloadavg()[0])
            medians = {key: _median([timing[key] for timing in timings]) for key in timings[0]}
            print(
                f"| {call.name} | {', '.join(sorted(outcomes))} | {_s(medians['transfer_sentence_ms'])} "
                f"| {_s(medians['transfer_sentence_end_ms'])} | {_s(medians['agent_talking_ms'])} "
                f"| {_s(medians['response_latency_ms'])} | {' '.join(f'{load:.1f}' for load in loads)} |",
                flush=True,
            )


def _median(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value / 1000:.1f} s"


def _quiet(line: str) -> None:
    pass


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f} (1/5/15 min) on {os.cpu_count()} CPUs"


def main() -> None:
    from telephony.settings import load_settings

    settings = load_settings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scales",
        nargs="+",
        type=float,
        default=sorted({1.0, settings.voice_length_scale, 1.25}),
        help="Piper length_scale values for the greeting's length (default: 1.0, the setting, 1.25)",
    )
    parser.add_argument("--calls", type=int, default=3, help="replays of each call (0: lengths only)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    started = time.perf_counter()
    print(f"load {_load()}; pace setting VOICE_AGENT_VOICE_LENGTH_SCALE={settings.voice_length_scale}\n")
    greeting_lengths(args.scales, settings.piper_voice)
    if args.calls:
        with tempfile.TemporaryDirectory() as folder:
            replayed_calls(args.calls, Path(folder))
    print(f"\ntotal {time.perf_counter() - started:.0f} s; load {_load()}")


if __name__ == "__main__":
    main()
