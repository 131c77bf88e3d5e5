"""Response latency of the call path with each latency lever off and on, and whether callers who pause are cut off.

Replays one scripted call per configuration through the real Media Streams path (the QA replay's in-process
server, `qa.replay`), with the bundled Whisper tiny.en and Piper voice. Response latency is the replay's own
measure: the caller's last voiced frame sent -> the first agent frame received. The caller's utterances:
- complete requests, synthesised with the bundled Piper voice ("What are your opening hours?");
- real recorded speech from audio_fixtures/real_speech/ (not requests the catalogue knows: answered "not understood");
- utterances with mid-sentence pauses of 600-700 ms, each a sequence of fixture turns with a pause between them
  ("I have a question about" - pause - "my last bill."), and the recorded account number read in three groups
  (audio_fixtures/number_with_pauses_16k.wav).
A mid-sentence pause counts as cut off when the server answered part of the utterance on its own (more than one
exchange for it, or an answer before its last part).

Configurations (rows): baseline (fixed 800 ms end-of-turn silence, ASR after the turn, whole replies), each lever
alone, and all together; the last row is all together with the understanding levers too (the heard examples, and the
second opinion when VOICE_AGENT_SECOND_OPINION_MODEL is set), which the other rows leave off. Adaptive end of turn
reads the pause's speculative transcript, so its row has speculative ASR on too. Replies: "uncached" empties the
phrase cache of intent replies before each configuration (the fixed replies stay preloaded, as in production), so
that streaming the first sentence matters; "cached" preloads every reply, as the server does for the sample
catalogue. Prints a table per reply mode and the machine load; never asserts on time.

Usage: python benchmarks/response_latency.py [--replies uncached cached] [--configs baseline all] [--report DIR]
"""

from __future__ import annotations

import os

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import argparse
import asyncio
import dataclasses
import itertools
import json
import logging
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.fixtures import CallerVoice, PreparedCall, load_fixture, prepare_call
from qa.replay import replay_calls
from qa.server import InProcessServer
from qa.stats import percentile
from telephony.twilio.framing import FRAME_MS
from telephony.twilio.say import replies_spoken_by_agent
from voice.pipeline import TurnRecord, VoiceServices
from voice.tts import PhraseCache

REPO = Path(__file__).resolve().parents[1]
REAL_SPEECH = REPO / "audio_fixtures" / "real_speech" / "audio"
NUMBER_FIXTURE = REPO / "audio_fixtures" / "number_with_pauses_16k.wav"
# Silence the caller leaves after the agent's answer has been played in full, before the next utterance.
GAP_AFTER_ANSWER_MS = 300


@dataclass(frozen=True, slots=True)
class Utterance:
    """One thing the caller says: one or more spoken parts with pauses between them."""

    kind: str
    """"complete" (a whole request), "real" (recorded speech) or "paused" (mid-sentence pauses)."""
    parts: tuple[dict[str, Any], ...]
    """Fixture turns (say or audio), in order."""
    pause_ms: int = 600
    """Silence between the parts."""


def say(text: str) -> dict[str, Any]:
    return {"say": text}


def real(name: str) -> dict[str, Any]:
    return {"audio": str(REAL_SPEECH / name)}


# Understood requests between the recorded clips keep the engine from transferring after three turns in a row that
# it did not understand (the clips are not requests it knows); nothing here transfers or ends the call before the
# last utterance.
SCRIPT = (
    Utterance("complete", (say("What are your opening hours?"),)),
    Utterance("paused", (say("I have a question about"), say("my last bill."))),
    Utterance("real", (real("command_is_the_front_door_locked.wav"),)),
    Utterance("complete", (say("I want to pay my bill."),)),
    Utterance("paused", ({"audio": str(NUMBER_FIXTURE)},)),
    Utterance("complete", (say("Where is my order?"),)),
    Utterance("paused", (say("My internet is not working and"), say("the light on the router is red.")), 700),
    Utterance("real", (real("harvard_birch_canoe.wav"),)),
    Utterance("complete", (say("How do I change my address?"),)),
    Utterance("paused", (say("My customer number is"), say("four one seven"), say("five nine three."))),
    Utterance("complete", (say("Is there an outage in my area?"),)),
    Utterance("real", (real("command_whats_the_weather_like_in_new_york.wav"),)),
    Utterance("complete", (say("I was charged twice on my last bill."),)),
    Utterance("paused", (say("I would like to"), say("check the status of my order.")), 700),
    Utterance("complete", (say("Can I speak to an agent, please?"),)),
)


@dataclass(frozen=True, slots=True)
class Config:
    """Which levers are on."""

    name: str
    speculative_asr: bool
    adaptive_end_of_turn: bool
    stream_first_sentence: bool
    understanding: bool = False
    """The heard examples and, when VOICE_AGENT_SECOND_OPINION_MODEL is set, the second opinion (as configured)."""


CONFIGS = {
    config.name: config
    for config in (
        Config("baseline", False, False, False),
        Config("+speculative ASR", True, False, False),
        Config("+speculative ASR +adaptive EOT", True, True, False),
        Config("+streaming first sentence", False, False, True),
        Config("all", True, True, True),
        Config("all +heard examples +second opinion", True, True, True, True),
    )
}


def write_fixture(folder: Path, gaps: dict[int, int] | None = None) -> tuple[Path, list[tuple[Utterance, list[int]]]]:
    """The script as one fixture call; returns its path and, per utterance, the fixture turn numbers of its parts.

    Args:
        gaps: fixture turn number of a pause -> its length in ms, instead of the utterance's `pause_ms`.
    """
    turns: list[dict[str, Any]] = [{"pause_ms": 1000}]
    groups = []
    for utterance in SCRIPT:
        numbers = []
        for position, part in enumerate(utterance.parts):
            if position:
                turns.append({"pause_ms": (gaps or {}).get(len(turns) + 1, utterance.pause_ms)})
            last = position == len(utterance.parts) - 1
            # Each utterance waits for its answer to be played in full (at most 15 s), so that every answer is timed
            # against its own utterance, however slow; the parts before a mid-sentence pause go straight on.
            turns.append({**part, "wait": "reply", "gap_ms": GAP_AFTER_ANSWER_MS} if last else {**part, "wait": "none"})
            numbers.append(len(turns))
        groups.append((utterance, numbers))
    fixture = {
        "name": "response_latency",
        "description": "Requests, recorded speech and utterances with mid-sentence pauses (benchmark).",
        # The greeting's frames arrive at once; starting 1 s in saves listening to it on every configuration.
        "wait_for_greeting": False,
        "turns": turns,
    }
    path = folder / "response_latency.json"
    path.write_text(json.dumps(fixture, indent=2), encoding="utf-8")
    return path, groups


def prepare_script(folder: Path) -> tuple[PreparedCall, list[tuple[Utterance, list[int]]]]:
    """The call with its audio made, each mid-sentence pause exactly `pause_ms` from voiced frame to voiced frame.

    Piper starts and ends every sentence with some silence, which would lengthen the pauses between parts.
    """
    voice = CallerVoice()
    path, groups = write_fixture(folder)
    call = prepare_call(load_fixture(path), voice)
    turns = {turn.index: turn for turn in call.turns}
    gaps = {}
    for utterance, numbers in groups:
        for before, after in itertools.pairwise(numbers):
            trailing = _unvoiced_run(reversed(turns[before].voiced))
            leading = _unvoiced_run(turns[after].voiced)
            gaps[after - 1] = max(FRAME_MS, utterance.pause_ms - (trailing + leading) * FRAME_MS)
    path, groups = write_fixture(folder, gaps)
    return prepare_call(load_fixture(path), voice), groups


def _unvoiced_run(flags) -> int:
    return sum(1 for _ in itertools.takewhile(lambda voiced: not voiced, flags))


def configured(base: VoiceServices, config: Config, replies: str, speculate_after_ms: int) -> VoiceServices:
    """The shared models with this configuration's levers, and a phrase cache as the reply mode says."""
    speech = base.speech
    if replies == "uncached":
        speech = PhraseCache(base.speech.synthesizer, max_entries=base.speech.max_entries)
        speech.preload(replies_spoken_by_agent(base.engine.catalogue.replies).values())
    return dataclasses.replace(
        base,
        speech=speech,
        turn_options=dataclasses.replace(
            base.turn_options, pause_report_ms=speculate_after_ms if config.speculative_asr else None
        ),
        end_of_turn=dataclasses.replace(base.end_of_turn, enabled=config.adaptive_end_of_turn),
        stream_first_sentence=config.stream_first_sentence,
    )


@dataclass(slots=True)
class Outcome:
    """What one utterance got."""

    kind: str
    latency_ms: float | None
    cut_off: bool
    records: list[TurnRecord]


Groups = list[tuple[Utterance, list[int]]]


def outcomes(data: dict[str, Any], records: list[TurnRecord], groups: Groups) -> list[Outcome]:
    turns = {turn["index"]: turn for turn in data["turns"]}
    by_start = [(record.caller.start_ms, record) for record in records if record.caller is not None]
    results = []
    for position, (utterance, numbers) in enumerate(groups):
        exchanges = sum(len(turns[number]["exchanges"] or ()) for number in numbers)
        answered_early = any(turns[number]["response_latency_ms"] is not None for number in numbers[:-1])
        first = turns[numbers[0]]["start_ms"]
        following = groups[position + 1][1][0] if position + 1 < len(groups) else None
        end = turns[following]["start_ms"] if following is not None else None
        own = [
            record
            for start_ms, record in by_start
            if first is not None and start_ms + 100 >= first and (end is None or start_ms + 100 < end)
        ]
        results.append(
            Outcome(
                kind=utterance.kind,
                latency_ms=turns[numbers[-1]]["response_latency_ms"],
                cut_off=utterance.kind == "paused" and (exchanges > 1 or answered_early),
                records=own,
            )
        )
    return results


def run_config(
    base: VoiceServices, config: Config, replies: str, call: PreparedCall, groups, report: Path, speculate_ms: int
) -> tuple[list[Outcome], tuple[float, float, float]]:
    services = configured(base, config, replies, speculate_ms)
    with InProcessServer(language="en", services=services) as server:
        result = asyncio.run(
            replay_calls([call], report / replies / config.name.replace(" ", "_"), in_process=server, progress=_quiet)
        )
        data = result.calls[0].data
        info = server.app.state.voice.registry.get(data["call_sid"])
        records = list(info.records) if info is not None else []
    return outcomes(data, records, groups), os.getloadavg()


def _quiet(line: str) -> None:
    pass


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def row(name: str, results: list[list[Outcome]]) -> str:
    everything = [outcome for run in results for outcome in run]
    latencies = [outcome.latency_ms for outcome in everything if outcome.latency_ms is not None]
    by_kind = {
        kind: [o.latency_ms for o in everything if o.kind == kind and o.latency_ms is not None]
        for kind in ("complete", "real", "paused")
    }
    paused = [outcome for outcome in everything if outcome.kind == "paused"]
    records = [record for outcome in everything for record in outcome.records if record.end_of_turn is not None]
    speculative = sum(1 for record in records if record.end_of_turn.speculative_asr)
    rules = Counter(record.end_of_turn.rule.value for record in records)
    rule_text = ", ".join(f"{rule} {count}" for rule, count in sorted(rules.items()))
    answered = f"{len(latencies)}/{len(everything)}"
    kinds = " | ".join(_ms(statistics.median(values)) if values else "-" for values in by_kind.values())
    cut = f"{sum(outcome.cut_off for outcome in paused)}/{len(paused)}"
    median = _ms(statistics.median(latencies)) if latencies else "-"
    p95 = _ms(percentile(latencies, 0.95)) if latencies else "-"
    return f"| {name} | {answered} | {median} | {p95} | {kinds} | {cut} | {speculative}/{len(records)} | {rule_text} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", nargs="+", default=["uncached", "cached"], choices=["uncached", "cached"])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument(
        "--cached-configs",
        nargs="+",
        default=["baseline", "all", "all +heard examples +second opinion"],
        choices=list(CONFIGS),
    )
    parser.add_argument("--repeat", type=int, default=1, help="calls per configuration")
    parser.add_argument("--speculate-after-ms", type=int, default=None, help="default: VOICE_AGENT_ setting (200)")
    parser.add_argument("--report", type=Path, default=None, help="keep the replay reports here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    from telephony.settings import load_settings
    from telephony.voice_services import load_voice_services
    from voice.dialogue import DialogueEngine
    from voice.prompts import load_catalogue

    settings = load_settings()
    speculate_ms = args.speculate_after_ms or settings.speculative_asr_after_ms
    started = time.perf_counter()
    loaded = load_voice_services(settings, load_catalogue(settings.prompts_dir, settings.language))
    # Every row but the last runs without the understanding levers, whatever the settings say.
    base = dataclasses.replace(
        loaded, engine=DialogueEngine(loaded.engine.catalogue, heard_examples=False), second_opinion=None
    )
    with_understanding = dataclasses.replace(
        loaded, engine=DialogueEngine(loaded.engine.catalogue, heard_examples=True)
    )
    with tempfile.TemporaryDirectory() as folder:
        call, groups = prepare_script(Path(folder))
        report = args.report or Path(folder) / "report"
        print(f"models loaded and caller audio made in {time.perf_counter() - started:.0f} s; load {_load()}")
        print(
            f"{len(SCRIPT)} utterances per call ({sum(u.kind == 'paused' for u in SCRIPT)} with mid-sentence pauses), "
            f"{args.repeat} call(s) per configuration; speculative ASR after {speculate_ms} ms of silence; "
            f"end of turn: {base.end_of_turn.complete_silence_ms} ms complete, {base.end_of_turn.default_silence_ms} "
            f"ms default, {base.end_of_turn.trailing_silence_ms} ms trailing; second opinion: "
            f"{with_understanding.second_opinion.name if with_understanding.second_opinion else 'none'}"
        )
        for replies in args.replies:
            names = args.configs if replies == "uncached" else args.cached_configs
            print(f"\nreplies {replies}; response latency in ms (caller's last voiced frame -> first agent frame)\n")
            print(
                "| configuration | answered | median | p95 | complete median | real median | paused median "
                "| mid-sentence pauses cut off | transcripts from speculation | end-of-turn rules | load (1/5 min) |"
            )
            print("|---|---|---|---|---|---|---|---|---|---|---|")
            for name in names:
                runs, loads = [], []
                for _ in range(args.repeat):
                    config = CONFIGS[name]
                    services = with_understanding if config.understanding else base
                    results, load = run_config(services, config, replies, call, groups, report, speculate_ms)
                    runs.append(results)
                    loads.append(load)
                print(row(name, runs) + f" {' '.join(f'{load[0]:.1f}/{load[1]:.1f}' for load in loads)} |", flush=True)
    base.workers.shutdown()
    print(f"\ntotal {time.perf_counter() - started:.0f} s; load {_load()}")


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f} (1/5/15 min) on {os.cpu_count()} CPUs"


if __name__ == "__main__":
    main()
