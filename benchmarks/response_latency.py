"""Response latency of the call path, where it goes, and whether callers who pause inside their turn are cut off.

Replays scripted calls through the real Media Streams path (the QA replay's in-process server, `qa.replay`), with
the bundled Whisper tiny.en and Piper voice, one call at a time (the replay's 20 ms clock runs in real time). Three
calls, each starting by talking over the greeting; the caller's utterances:
- complete requests, synthesised with the bundled Piper voice ("What are your opening hours?");
- turns with pauses inside them that do not end them (audio_fixtures/pauses/, `make_pause_fixtures.py`): sentences
  broken off mid-way with 0.4-0.9 s pauses in six espeak-ng voices and Piper, numbers read in groups (and
  audio_fixtures/number_with_pauses_16k.wav), callers who say "um" and think;
- recorded speech with natural pauses (audio_fixtures/real_speech/, listed in pauses/manifest.json): pauses up to
  about 1 s count in the verdict; two clips with pauses over 1.2 s are reported apart;
- a question whose answer the caller talks over (barge-in).
Each utterance waits for its answer to be played in full, then 300 ms, so that each answer is timed against its own
utterance.

Printed per configuration:
- the server's latency budget of every spoken turn (`voice.latency`, read from the call records): median and p95 of
  each stage, in ms from the arrival of the caller's last voiced frame;
- response latency as the replay measures it (the caller's last voiced frame sent -> the first agent frame
  received), median and p95, overall and by kind; and GET /metrics' voice_agent_response_latency_seconds (the same
  registry) against it: the server's figure per turn minus the replay's;
- barge-in: the caller's first voiced frame over agent audio -> `clear` received;
- the greeting's first audio (stream start -> first agent frame);
- cut-offs: a turn with pauses is cut off when the agent answered part of it (more than one exchange for it) or
  its audio started between the turn's first and last voiced frames;
- a verdict against the targets: median <= 0.45 s, p95 <= 0.7 s, no cut-offs.

Configurations: "all" (the production settings: speculative ASR, adaptive end of turn, first sentence streamed) by
default; "baseline" and each lever alone on request. Replies: "cached" (every reply preloaded, as the server does
for the sample catalogue) by default, or "uncached" (intent replies synthesised when first needed). Never asserts.

Usage: python benchmarks/response_latency.py [--configs all baseline] [--replies cached uncached] [--repeat N]
"""

from __future__ import annotations

import os

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import argparse
import asyncio
import dataclasses
import json
import logging
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.fixtures import CallerVoice, PreparedCall, load_fixture, prepare_call
from qa.replay import replay_calls
from qa.server import InProcessServer
from qa.stats import percentile
from telephony.twilio.say import replies_spoken_by_agent
from voice.pipeline import EARLY_REPLY_CONFIRMED, VoiceServices
from voice.tts import PhraseCache

REPO = Path(__file__).resolve().parents[1]
PAUSES = REPO / "audio_fixtures" / "pauses"
NUMBER_FIXTURE = REPO / "audio_fixtures" / "number_with_pauses_16k.wav"
# Silence the caller leaves after the agent's answer has been played in full, before the next utterance.
GAP_AFTER_ANSWER_MS = 300
# The caller talks over the answer to a question this long after asking it (the answer is then playing).
BARGE_IN_AFTER_MS = 1800
TARGET_MEDIAN_MS = 450.0
TARGET_P95_MS = 700.0
STAGES = (
    ("silence_detected_ms", "the VAD declared silence"),
    ("end_of_turn_ms", "end of turn decided"),
    ("transcript_ready_ms", "transcript of the whole turn ready"),
    ("first_audio_ms", "first agent audio sent (server)"),
)
COMPLETE = (
    "What are your opening hours?",
    "Where is my order?",
    "How do I change my address?",
    "Is there an outage in my area?",
    "I was charged twice on my last bill.",
    "I want to pay my bill.",
)


@dataclass(frozen=True, slots=True)
class Utterance:
    """One thing the caller says, as one fixture turn (a barge-in adds the question it talks over)."""

    kind: str
    """"complete", "barge_in", "mid_sentence", "digits", "hesitation", "real" or "real_long_pauses"."""
    name: str
    turn: dict[str, Any]
    speech_ms: tuple[int, int] | None = None
    """Where the speech lies in the turn's audio (from the manifest), else the replay's voiced frames say."""

    @property
    def has_pauses(self) -> bool:
        """A turn with pauses inside it: answering before its end is a cut-off."""
        return self.kind in ("mid_sentence", "digits", "hesitation", "real", "real_long_pauses")


def load_pause_fixtures() -> dict[str, Utterance]:
    """Every turn of audio_fixtures/pauses/manifest.json (and the number read in groups), by name."""
    manifest = json.loads((PAUSES / "manifest.json").read_text(encoding="utf-8"))
    found = {}
    for entry in manifest["fixtures"]:
        path = (PAUSES / entry["file"]).resolve()
        kind = entry["kind"]
        if kind == "real" and not entry["in_verdict"]:
            kind = "real_long_pauses"
        name = path.stem.removesuffix("_8k")
        found[name] = Utterance(kind, name, {"audio": str(path)}, tuple(entry["speech_ms"]))
    found["number_with_pauses"] = Utterance("digits", "number_with_pauses", {"audio": str(NUMBER_FIXTURE)})
    return found


def complete(index: int) -> Utterance:
    text = COMPLETE[index % len(COMPLETE)]
    return Utterance("complete", text, {"say": text})


def barge_in(index: int) -> list[Utterance]:
    """A question, then talking over its answer."""
    question = complete(index)
    return [
        Utterance("complete", question.name, {**question.turn, "wait": "none", "after_ms": BARGE_IN_AFTER_MS}),
        Utterance("barge_in", "Sorry, one more thing about my bill.", {"say": "Sorry, one more thing about my bill."}),
    ]


def scripts() -> list[tuple[str, list[Utterance]]]:
    """The calls: each starts by talking over the greeting; recorded clips (not requests the catalogue knows) sit
    between understood requests, so that three not understood in a row never transfer the call."""
    pauses = load_pause_fixtures()

    def p(*names: str) -> list[Utterance]:
        return [pauses[name] for name in names]

    return [
        (
            "latency_a",
            [complete(0)]
            + p("question_about_bill_piper", "question_about_bill_us")
            + [complete(1)]
            + p("router_red_scotland", "router_red_piper", "jfk_inaugural_ask_not")
            + [complete(2)]
            + p("order_status_caribbean", "order_status_us_female")
            + barge_in(3)
            + p("open_saturday_piper", "open_saturday_gb", "fleurs_en_000")
            + [complete(4)],
        ),
        (
            "latency_b",
            [complete(5)]
            + p("moved_address_us_female", "moved_address_piper", "charge_on_card_rp", "log_in_scotland")
            + p("fleurs_en_005")
            + [complete(0)]
            + p("account_number_us", "customer_number_piper", "order_number_gb", "number_with_pauses", "fleurs_en_001")
            + [complete(1)]
            + barge_in(2),
        ),
        (
            "latency_c",
            [complete(2)]
            + p("uh_um_check_order_piper", "um_last_invoice_us", "so_um_wondering_caribbean", "fleurs_en_008")
            + [complete(3)]
            + p("vosk_digit_strings")
            + [complete(4)]
            + p("fleurs_en_002")
            + [complete(5)]
            # Last: the recogniser has heard it as "...to my shopping list" and the engine as theft (a transfer).
            + p("command_add_apples_to_my_shopping_list"),
        ),
    ]


def write_fixture(folder: Path, name: str, utterances: list[Utterance]) -> Path:
    """The call as a fixture file: a second into the greeting the caller starts talking over it."""
    turns: list[dict[str, Any]] = [{"pause_ms": 1000}]
    for utterance in utterances:
        spec = dict(utterance.turn)
        after_ms = spec.pop("after_ms", None)
        if spec.get("wait") == "none":
            turns.append(spec)
            turns.append({"pause_ms": after_ms or GAP_AFTER_ANSWER_MS})
        else:
            turns.append({**spec, "wait": "reply", "gap_ms": GAP_AFTER_ANSWER_MS})
    fixture = {
        "name": name,
        "description": "Requests, turns with pauses inside them, recorded speech and barge-ins (benchmark).",
        "wait_for_greeting": False,
        "turns": turns,
    }
    path = folder / f"{name}.json"
    path.write_text(json.dumps(fixture, indent=2), encoding="utf-8")
    return path


def utterance_turns(utterances: list[Utterance]) -> list[int]:
    """The fixture turn number (from 1) of each utterance in `write_fixture`'s layout."""
    numbers, number = [], 1  # turn 1 is the pause into the greeting
    for utterance in utterances:
        number += 1
        numbers.append(number)
        if utterance.turn.get("wait") == "none":
            number += 1  # the pause after it
    return numbers


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

    utterance: Utterance
    latency_ms: float | None
    """The replay's: last voiced frame sent -> first agent frame received."""
    exchanges: int
    cut_off: bool
    budget: dict[str, Any] | None
    """The server's latency budget of its answer (None: several exchanges, none, or a server without budgets)."""
    reasons: list[str]
    """Every reason of every decision made for it."""
    barge_in_clear_ms: float | None


@dataclass(slots=True)
class Run:
    """Everything one configuration's calls gave."""

    outcomes: list[Outcome] = field(default_factory=list)
    greetings_ms: list[float] = field(default_factory=list)
    clears_ms: list[float] = field(default_factory=list)
    metrics_sum_s: float = 0.0
    metrics_count: float = 0.0
    loads: list[tuple[float, float, float]] = field(default_factory=list)


def outcomes(data: dict[str, Any], utterances: list[Utterance]) -> list[Outcome]:
    turns = {turn["index"]: turn for turn in data["turns"]}
    agent_starts = [stretch["start_ms"] for stretch in data["timeline"]["agent_audio"]]
    results = []
    for utterance, number in zip(utterances, utterance_turns(utterances), strict=True):
        turn = turns[number]
        exchanges = turn["exchanges"] or []
        talked_over = False
        if turn["voiced_start_ms"] is not None:
            # The agent's audio started while the caller was still to say something: between the first and the last
            # of the speech (recorded clips: as the manifest measured it, their room noise being above the floor).
            first, last = turn["voiced_start_ms"], turn["voiced_end_ms"]
            if utterance.speech_ms is not None:
                first, last = (turn["start_ms"] + offset for offset in utterance.speech_ms)
            talked_over = any(first < start < last for start in agent_starts)
        budget = exchanges[0].get("latency") if len(exchanges) == 1 else None
        reasons = [reason for exchange in exchanges for reason in exchange["decision"]["reasons"]]
        results.append(
            Outcome(
                utterance=utterance,
                latency_ms=turn["response_latency_ms"],
                exchanges=len(exchanges),
                reasons=reasons,
                cut_off=utterance.has_pauses and (len(exchanges) > 1 or talked_over),
                budget=budget,
                barge_in_clear_ms=turn["barge_in"]["clear_after_ms"] if turn["barge_in"] else None,
            )
        )
    return results


def run_config(
    base: VoiceServices,
    config: Config,
    replies: str,
    calls: list[tuple[PreparedCall, list[Utterance]]],
    report: Path,
    speculate_ms: int,
    run: Run,
) -> None:
    services = configured(base, config, replies, speculate_ms)
    with InProcessServer(language="en", services=services) as server:
        for call, utterances in calls:
            folder = report / replies / config.name.replace(" ", "_")
            result = asyncio.run(replay_calls([call], folder, in_process=server, progress=_quiet))
            data = result.calls[0].data
            run.outcomes += outcomes(data, utterances)
            if data["greeting"]["first_audio_ms"] is not None:
                run.greetings_ms.append(data["greeting"]["first_audio_ms"])
            run.clears_ms += [turn["barge_in"]["clear_after_ms"] for turn in data["turns"] if turn["barge_in"]]
            run.loads.append(os.getloadavg())
        # What GET /metrics exposes: this app's own registry, observed as each call's stream ended.
        registry = server.app.state.voice.metrics.registry
        run.metrics_sum_s += registry.get_sample_value("voice_agent_response_latency_seconds_sum") or 0.0
        run.metrics_count += registry.get_sample_value("voice_agent_response_latency_seconds_count") or 0.0


def vad_path_lags(calls: list[tuple[PreparedCall, list[Utterance]]]) -> None:
    """Print how late the VAD path hears speech start (barge-in) and end, in stream time (the same under any load):
    scoring the caller's frames at the input rate, as the pipeline does, and through a 16 kHz resampler, as before.

    Onset: the turn detector reports speech (`min_speech_ms` of voiced windows) -> after the first voiced frame.
    Offset: the VAD has scored the first unvoiced window after the turn's last voiced one -> after the last voiced
    frame. Voiced frames are the replay's (-40 dBFS).
    """
    from qa.fixtures import SILENCE_FRAME
    from telephony.twilio.framing import FRAME_MS, TWILIO_SAMPLE_RATE_HZ
    from telephony.twilio.mulaw import mulaw_to_float32
    from voice.resample import StreamResampler
    from voice.turns import SpeechStarted, TurnDetector, TurnEnded
    from voice.vad import StreamingVad

    print("\nVAD path, in stream time (independent of the machine's load), ms:\n")
    print(
        "| VAD fed | speech start reported after the first voiced frame (median, p95) "
        "| silence heard after the last voiced frame (median, p95) | turns |"
    )
    print("|---|---|---|---|")
    for label, rate in (
        ("at the input rate (now)", TWILIO_SAMPLE_RATE_HZ),
        ("through a 16 kHz resampler (before)", 16_000),
    ):
        onsets: list[float] = []
        offsets: list[float] = []
        for call, _ in calls:
            for turn in call.turns:
                voiced = [index for index, flag in enumerate(turn.voiced) if flag]
                if not voiced:
                    continue
                vad, detector = StreamingVad(rate), TurnDetector(window_ms=32.0)
                resampler = StreamResampler(TWILIO_SAMPLE_RATE_HZ, rate)
                started_at = last_end = None
                scored_at: list[tuple[float, float]] = []
                fed_ms = scored_ms = 0.0
                for frame in [*turn.frames, *[SILENCE_FRAME] * 75]:
                    fed_ms += FRAME_MS
                    probabilities = vad.process(resampler.process(mulaw_to_float32(frame)))
                    scored_ms += probabilities.size * 32.0
                    scored_at.append((scored_ms, fed_ms))
                    for event in detector.process(probabilities):
                        if isinstance(event, SpeechStarted) and started_at is None:
                            started_at = fed_ms
                        elif isinstance(event, TurnEnded):
                            last_end = event.end_ms
                if started_at is not None:
                    onsets.append(started_at - voiced[0] * FRAME_MS)
                if last_end is not None:
                    heard = next(fed for scored, fed in scored_at if scored >= last_end + 32.0)
                    offsets.append(heard - (voiced[-1] + 1) * FRAME_MS)
        print(
            f"| {label} | {_ms(statistics.median(onsets))}, {_ms(percentile(onsets, 0.95))} "
            f"| {_ms(statistics.median(offsets))}, {_ms(percentile(offsets, 0.95))} | {len(offsets)} |"
        )


def _quiet(line: str) -> None:
    pass


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _stats(values: list[float]) -> str:
    if not values:
        return "- | - | 0"
    return f"{_ms(statistics.median(values))} | {_ms(percentile(values, 0.95))} | {len(values)}"


def print_run(name: str, run: Run) -> bool:
    """Print one configuration's figures; True when it meets every target."""
    answered = [o for o in run.outcomes if o.latency_ms is not None and o.utterance.kind != "real_long_pauses"]
    latencies = [o.latency_ms for o in answered]
    print(f"\n### {name}\n")
    print("Latency budget of each spoken turn (server), ms from the arrival of the caller's last voiced frame:\n")
    print("| stage | median | p95 | turns |")
    print("|---|---|---|---|")
    budgets = [o.budget for o in answered if o.budget]
    for key, label in STAGES:
        print(f"| {label} | {_stats([b[key] for b in budgets if b.get(key) is not None])} |")
    print(f"| first agent frame received (replay) | {_stats(latencies)} |")
    rules = Counter(b["end_of_turn_rule"] for b in budgets)
    print(f"\nend-of-turn rules: {', '.join(f'{rule} {count}' for rule, count in sorted(rules.items())) or '-'}")
    reasons = [reason for o in run.outcomes for reason in o.reasons]
    confirmed = sum(reason == EARLY_REPLY_CONFIRMED for reason in reasons)
    cleared = sum("started from a partial transcript" in reason for reason in reasons)
    print(f"replies started from a partial transcript: {confirmed} confirmed, {cleared} cleared")
    anchors = Counter(b.get("anchor", "-") for b in budgets)
    print(f"last voiced frame found by: {', '.join(f'{k} {v}' for k, v in sorted(anchors.items())) or '-'}")

    print("\nResponse latency (replay: last voiced frame sent -> first agent frame received), ms:\n")
    print("| utterances | median | p95 | answered |")
    print("|---|---|---|---|")
    print(f"| all (the verdict's) | {_stats(latencies)} |")
    kinds = ("complete", "mid_sentence", "digits", "hesitation", "real", "barge_in", "real_long_pauses")
    for kind in kinds:
        values = [o.latency_ms for o in run.outcomes if o.utterance.kind == kind and o.latency_ms is not None]
        print(f"| {kind} | {_stats(values)} |")

    if run.metrics_count:
        mean_ms = run.metrics_sum_s / run.metrics_count * 1000
        print(
            f"\nGET /metrics voice_agent_response_latency_seconds: {run.metrics_count:.0f} observations, mean "
            f"{mean_ms:.0f} ms (every spoken turn, including the long-pause clips' pieces and barge-ins)"
        )
    # The recorded clips have room noise above the -40 dBFS floor after the speech, which the replay counts as voiced
    # and the server (inside the VAD's turn) does not: compared apart.
    for group, kinds in (
        ("synthesised", ("complete", "mid_sentence", "digits", "hesitation", "barge_in")),
        ("recorded", ("real",)),
    ):
        differences = [
            o.budget["first_audio_ms"] - o.latency_ms
            for o in answered
            if o.utterance.kind in kinds and o.budget and o.budget["first_audio_ms"] is not None
        ]
        if not differences:
            continue
        absolute = [abs(value) for value in differences]
        print(
            f"server's first audio minus the replay's response latency, {group} turns ({len(differences)}): median "
            f"{statistics.median(differences):+.1f} ms, p95 of |difference| {percentile(absolute, 0.95):.1f} ms, "
            f"largest {max(absolute):.1f} ms"
        )
    if not budgets:
        print("the server recorded no latency budgets (a server before voice/latency.py)")

    print(
        f"\nbarge-in -> clear (ms): median | p95 | n = {_stats(run.clears_ms)}; greeting first audio (ms): "
        f"median | p95 | n = {_stats(run.greetings_ms)}"
    )

    paused = [o for o in run.outcomes if o.utterance.has_pauses and o.utterance.kind != "real_long_pauses"]
    cut = [o for o in paused if o.cut_off]
    print(f"\ncut-offs: {len(cut)} of {len(paused)} turns with pauses inside them")
    for o in cut:
        print(f"  cut off: {o.utterance.name} ({o.utterance.kind}): {o.exchanges} exchanges")
    long_pauses = [o for o in run.outcomes if o.utterance.kind == "real_long_pauses"]
    if long_pauses:
        split = [o.utterance.name for o in long_pauses if o.cut_off]
        print(
            f"recorded clips with pauses over 1.2 s (not in the verdict): {len(split)} of {len(long_pauses)} answered "
            f"before their end{': ' + ', '.join(split) if split else ''}"
        )
    loads = " ".join(f"{one:.1f}/{five:.1f}" for one, five, _ in run.loads)
    print(f"load after each call (1/5 min): {loads}")

    median = statistics.median(latencies) if latencies else float("inf")
    p95 = percentile(latencies, 0.95) if latencies else float("inf")
    checks = [
        (f"median {median / 1000:.2f} s <= {TARGET_MEDIAN_MS / 1000:.2f} s", median <= TARGET_MEDIAN_MS),
        (f"p95 {p95 / 1000:.2f} s <= {TARGET_P95_MS / 1000:.2f} s", p95 <= TARGET_P95_MS),
        (f"{len(cut)} cut-offs == 0", not cut),
    ]
    met = all(ok for _, ok in checks)
    verdict = "; ".join(f"{text} {'PASS' if ok else 'FAIL'}" for text, ok in checks)
    print(f"\nverdict ({name}): {verdict}: {'MEETS THE TARGETS' if met else 'DOES NOT MEET THE TARGETS'}")
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", nargs="+", default=["cached"], choices=["cached", "uncached"])
    parser.add_argument("--configs", nargs="+", default=["all"], choices=list(CONFIGS))
    parser.add_argument("--repeat", type=int, default=1, help="times each call is replayed per configuration")
    parser.add_argument(
        "--speculate-after-ms", type=int, default=None, help="default: VOICE_AGENT_SPECULATIVE_ASR_AFTER_MS (64)"
    )
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
    # Every row but the understanding one runs without the heard examples and the second opinion, whatever the
    # settings say, so that one run compares the response time with and without them.
    base = dataclasses.replace(
        loaded, engine=DialogueEngine(loaded.engine.catalogue, heard_examples=False), second_opinion=None
    )
    with_understanding = dataclasses.replace(
        loaded, engine=DialogueEngine(loaded.engine.catalogue, heard_examples=True)
    )
    met = True
    with tempfile.TemporaryDirectory() as folder:
        voice = CallerVoice()
        calls = []
        for name, utterances in scripts():
            calls.append((prepare_call(load_fixture(write_fixture(Path(folder), name, utterances)), voice), utterances))
        report = args.report or Path(folder) / "report"
        count = sum(len(utterances) for _, utterances in calls)
        paused = sum(u.has_pauses for _, utterances in calls for u in utterances)
        print(f"models loaded and caller audio made in {time.perf_counter() - started:.0f} s; load {_load()}")
        print(
            f"{len(calls)} calls, {count} utterances ({paused} with pauses inside), replayed {args.repeat} time(s) "
            f"per configuration, one call at a time; speculative ASR after {speculate_ms} ms of silence; end of "
            f"turn: {base.end_of_turn.complete_silence_ms} ms complete, {base.end_of_turn.default_silence_ms} ms "
            f"default, {base.end_of_turn.trailing_silence_ms} ms trailing; second opinion: "
            f"{with_understanding.second_opinion.name if with_understanding.second_opinion else 'none'}"
        )
        try:
            vad_path_lags(calls)
        except (TypeError, ValueError) as error:  # a VAD before voice/vad.py scored the input rate
            print(f"\nVAD path: not measured ({error})")
        for replies in args.replies:
            for name in args.configs:
                run = Run()
                for _ in range(args.repeat):
                    config = CONFIGS[name]
                    services = with_understanding if config.understanding else base
                    run_config(services, config, replies, calls, report, speculate_ms, run)
                met = print_run(f"{name}, replies {replies}", run) and met
    base.workers.shutdown()
    print(f"\ntotal {time.perf_counter() - started:.0f} s; load {_load()}")


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f} (1/5/15 min) on {os.cpu_count()} CPUs"


if __name__ == "__main__":
    main()
