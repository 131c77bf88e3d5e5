"""The QA replay report: each call's JSON and stereo WAV, and summary.md for the whole run.

    CallLog (+ ServerView, in-process) -> <name>.json: the call, its turns linked to the server's exchanges,
        latencies, agent audio counts, protocol violations, the after-stream TwiML
    caller and agent tracks -> <name>.wav: stereo, 8 kHz, 16-bit, left caller, right agent
    every call -> summary.md: one row per call, then each call's turns

The fields are described in audio_fixtures/README.md.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from qa.call_log import CallLog, ServerView, TurnLog
from qa.expect import Check, Status, check_call, has_server_data
from qa.fixtures import TURN_KEYS, DtmfTurn
from telephony.call_record import TurnView
from telephony.twilio.framing import TWILIO_SAMPLE_RATE_HZ
from telephony.twilio.mulaw import MULAW_SILENCE, mulaw_to_float32
from voice.wavfile import write_wav

# --- linking the server's records to the caller's turns -------------------------------------------------------------


def _exchange_json(turn: TurnView) -> dict[str, Any]:
    """One exchange of the call record, as the report's JSON stores it."""
    caller = turn.caller
    heard: dict[str, Any] | None = None
    if caller is not None and caller.kind == "speech":
        heard = {
            "text": caller.text,
            "confidence": caller.confidence,
            "start_ms": caller.start_ms,
            "end_ms": caller.end_ms,
        }
    elif caller is not None:
        heard = {"dtmf": caller.digit}
    return {
        "caller": heard,
        "decision": turn.decision.model_dump(),
        "processing_ms": turn.processing_ms,
        "heard_in_full": turn.heard,
        "interrupted": turn.interrupted,
        "latency": turn.latency.model_dump() if turn.latency is not None else None,
    }


# A transcript may start a little before the frame we call voiced (the VAD's 32 ms windows, soxr's delay).
_TRANSCRIPT_SLACK_MS = 100


def link_records(
    turns: Sequence[TurnLog], records: Sequence[TurnView]
) -> tuple[TurnView | None, dict[int, list[TurnView]], list[TurnView]]:
    """Match the server's exchanges to the caller turns they answer.

    A transcript belongs to the last turn that had started where the transcript starts (server stream time equals
    our frame count); a key press to the next dtmf turn with that key. The greeting is the first record with no
    caller input.

    Returns:
        (greeting record or None, records per turn index, records that match no turn, such as a failure transfer).
    """
    greeting = None
    per_turn: dict[int, list[TurnView]] = {turn.turn.index: [] for turn in turns}
    others: list[TurnView] = []
    used_keys: set[int] = set()
    for position, record in enumerate(records):
        caller = record.caller
        if caller is None:
            if position == 0 and record.decision.rule == "greeting":
                greeting = record
            else:
                others.append(record)
            continue
        match: TurnLog | None = None
        if caller.kind == "dtmf":
            match = next(
                (
                    turn
                    for turn in turns
                    if isinstance(turn.turn.spec, DtmfTurn)
                    and turn.turn.spec.dtmf == caller.digit
                    and turn.turn.index not in used_keys
                    and turn.played
                ),
                None,
            )
            if match is not None:
                used_keys.add(match.turn.index)
        elif caller.start_ms is not None:
            started = [
                turn
                for turn in turns
                if turn.start_ms is not None
                and not isinstance(turn.turn.spec, DtmfTurn)
                and turn.start_ms <= caller.start_ms + _TRANSCRIPT_SLACK_MS
            ]
            match = started[-1] if started else None
        if match is None:
            others.append(record)
        else:
            per_turn[match.turn.index].append(record)
    return greeting, per_turn, others


# --- the report -----------------------------------------------------------------------------------------------------

SERVER_DATA_MISSING = (
    "transcripts and decisions are not available: replaying against --server, the replay reads them from the call "
    "API (GET /api/calls/{call_sid}) only with an agent or admin token: give --token (or VOICE_AGENT_REPLAY_TOKEN)"
)
"""The report's ``server_data`` against --server without a token."""


@dataclass(frozen=True, slots=True)
class CallReport:
    """One replayed call, as written to the report folder."""

    name: str
    ok: bool
    """Completed without protocol violations (either way)."""
    data: dict[str, Any]
    """The JSON written to `json_path`."""
    json_path: Path
    wav_path: Path
    checks: tuple[Check, ...] = ()
    """The fixture's expectations, checked against `data`."""

    @property
    def failed_checks(self) -> tuple[Check, ...]:
        """The expectations that failed."""
        return tuple(check for check in self.checks if check.status is Status.FAILED)

    @property
    def passed(self) -> bool:
        """Completed without protocol violations, and no expectation failed."""
        return self.ok and not self.failed_checks


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """Every call of one replay run."""

    calls: tuple[CallReport, ...]
    report_dir: Path
    summary_path: Path
    html_path: Path | None = None
    """The run's self-contained HTML report."""

    @property
    def exit_code(self) -> int:
        """0 when every call completed without protocol violations and met its expectations, else 1."""
        return 0 if all(call.passed for call in self.calls) else 1


def _call_json(
    log: CallLog, server: str, view: ServerView | None, after_stream: dict[str, Any], missing: str
) -> dict[str, Any]:
    fixture = log.call.source.fixture
    greeting = None
    per_turn: dict[int, list[TurnView]] = {}
    others: list[TurnView] = []
    if view is not None:
        greeting, per_turn, others = link_records(log.turns, view.records)
    outcome = None
    if view is not None and view.outcome is not None:
        outcome = {"action": view.outcome.action, "department": view.outcome.department}
    turns = []
    for turn in log.turns:
        exchanges = None if view is None else [_exchange_json(record) for record in per_turn[turn.turn.index]]
        texts = [item["caller"]["text"] for item in exchanges or () if item["caller"] and "text" in item["caller"]]
        turns.append(
            {
                "index": turn.turn.index,
                "kind": turn.turn.kind,
                "input": turn.turn.spec.model_dump(),
                "played": turn.played,
                "start_ms": turn.start_ms,
                "end_ms": turn.end_ms,
                "voiced_start_ms": turn.voiced_start_ms,
                "voiced_end_ms": turn.voiced_end_ms,
                "transcript": " ".join(texts) if view is not None and texts else None,
                "exchanges": exchanges,
                "response_latency_ms": _round(turn.response_latency_ms),
                "barge_in": None
                if turn.barge_in_buffered_ms is None
                else {
                    "agent_audio_buffered_ms": turn.barge_in_buffered_ms,
                    "clear_after_ms": _round(turn.barge_in_clear_ms),
                },
                "note": turn.note,
            }
        )
    server_violations = view.protocol_errors if view is not None else None
    return {
        "name": fixture.name,
        "description": fixture.description,
        "fixture": str(log.call.source.path),
        "server": server,
        "server_data": view.source if view is not None else missing,
        "call_sid": log.twilio.call_sid,
        "stream_sid": log.twilio.stream_sid,
        "started_at": log.started_at,
        "duration_ms": log.duration_ms,
        "completed": log.completed,
        "ok": log.completed and log.violations == 0 and not server_violations,
        "ended": {
            "by": log.ended_by.value if log.ended_by else None,
            "close_code": log.close_code,
            "detail": log.detail,
            "outcome": outcome,
            "pipeline_failure": view.failure if view is not None else None,
        },
        "greeting": {
            "first_audio_ms": _round(log.greeting_first_audio_ms),
            "exchange": _exchange_json(greeting) if greeting is not None else None,
        },
        "turns": turns,
        "other_exchanges": [_exchange_json(record) for record in others] if view is not None else None,
        "agent_audio": {
            "frames_received": log.frames_received,
            "frames_played": log.frames_played,
            "frames_cleared": log.frames_cleared,
            "marks_echoed": log.marks_echoed,
            "underruns": log.underruns,
            "underrun_ms": log.underrun_ms,
            "longest_underrun_ms": log.longest_underrun_ms,
            "clears_at_ms": [_round(value) for value in log.clears_ms],
        },
        "protocol": {
            "violations": log.violations,
            "examples": log.violation_examples,
            "server_reported_errors": server_violations,
        },
        "after_stream": after_stream,
        "audio": f"{fixture.name}.wav",
        "timeline": _timeline_json(log),
    }


def _timeline_json(log: CallLog) -> dict[str, Any]:
    """Both sides on the 20 ms frame clock (ms from the start of the stream, as in the WAV)."""
    speech = [
        {"turn": turn.turn.index, "start_ms": turn.voiced_start_ms, "end_ms": turn.voiced_end_ms}
        for turn in log.turns
        if not isinstance(turn.turn.spec, DtmfTurn) and turn.voiced_start_ms is not None
    ]
    keys = [
        {"turn": turn.turn.index, "at_ms": turn.start_ms, "digit": turn.turn.spec.dtmf}
        for turn in log.turns
        if isinstance(turn.turn.spec, DtmfTurn) and turn.start_ms is not None
    ]
    return {
        "duration_ms": log.duration_ms,
        "caller_speech": speech,
        "key_presses": keys,
        "agent_audio": [{"start_ms": start, "end_ms": end} for start, end in log.agent_audio_ms],
        "marks": [{"name": mark.name, "at_ms": mark.at_ms, "reached": mark.reached} for mark in log.marks],
    }


def write_call_report(
    report_dir: Path,
    log: CallLog,
    server: str,
    view: ServerView | None,
    after_stream: dict[str, Any],
    missing: str = SERVER_DATA_MISSING,
) -> CallReport:
    """Write one call's files into the report folder: ``<name>.json`` and the stereo ``<name>.wav``.

    Args:
        report_dir: the report folder (it must exist).
        log: the replay's record of the call.
        server: how the report names the server (its URL, or "in-process server").
        view: the server's record of the call (in-process, or from the call API); None when it could not be read.
        after_stream: what ``POST /twilio/after-stream`` answered for the call (`fetch_after_stream`).
        missing: without `view`, why: the report's ``server_data``.

    Returns:
        The call's report.
    """
    name = log.call.name
    fixture = log.call.source.fixture
    data = _call_json(log, server, view, after_stream, missing)
    checks = tuple(check_call(data, fixture.turn_expects(), fixture.expect, fixture.language))
    data["expectations"] = {
        "passed": sum(check.status is Status.PASSED for check in checks),
        "failed": sum(check.status is Status.FAILED for check in checks),
        "unchecked": sum(check.status is Status.UNCHECKED for check in checks),
        "checks": [check.to_json() for check in checks],
    }
    json_path = report_dir / f"{name}.json"
    wav_path = report_dir / f"{name}.wav"
    json_path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    write_timeline_wav(wav_path, log.caller_track, log.agent_track)
    return CallReport(name=name, ok=data["ok"], data=data, json_path=json_path, wav_path=wav_path, checks=checks)


def write_summary(report_dir: Path, reports: Sequence[CallReport], server: str) -> ReplayResult:
    """Write ``summary.md`` for the calls of one replay run into the report folder.

    Returns:
        The run's result, the calls in the order given.
    """
    summary_path = report_dir / "summary.md"
    summary_path.write_text(_summary_markdown(reports, server), encoding="utf-8")
    return ReplayResult(calls=tuple(reports), report_dir=report_dir, summary_path=summary_path)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def write_timeline_wav(path: Path, caller_mulaw: bytes, agent_mulaw: bytes) -> None:
    """Write both directions of a call as one stereo WAV: left the caller, right the agent, 8 kHz 16-bit.

    Args:
        path: the file to write.
        caller_mulaw: the caller's track, 8 kHz mu-law.
        agent_mulaw: the agent's track as played, 8 kHz mu-law, on the same timeline.
    """
    length = max(len(caller_mulaw), len(agent_mulaw))
    silence = bytes([MULAW_SILENCE])
    left = mulaw_to_float32(bytes(caller_mulaw) + silence * (length - len(caller_mulaw)))
    right = mulaw_to_float32(bytes(agent_mulaw) + silence * (length - len(agent_mulaw)))
    write_wav(path, np.column_stack([left, right]), TWILIO_SAMPLE_RATE_HZ)


def _outcome_text(data: dict[str, Any]) -> str:
    outcome = data["ended"]["outcome"]
    if outcome is not None:
        action = outcome["action"]
        return f"{action} to {outcome['department']}" if outcome["department"] else action
    verb = data["after_stream"].get("verb")
    return f"after-stream: {verb}" if verb else "-"


def _ended_text(data: dict[str, Any]) -> str:
    ended = data["ended"]
    text = ended["by"].replace("_", " ")
    if ended["close_code"] is not None and ended["by"] in ("server_closed", "error"):
        text += f" ({ended['close_code']})"
    return text


def _summary_markdown(reports: Sequence[CallReport], server: str) -> str:
    lines = [
        "# Replay report",
        "",
        f"{len(reports)} calls against {server}, {datetime.now(UTC).isoformat(timespec='seconds')}. "
        "Latencies in ms: response = the caller's last voiced frame sent -> the first agent frame received; "
        "barge-in = the first voiced caller frame over buffered agent audio -> `clear` received; the server's "
        "budget = when the server heard the silence, decided the end of the turn (by which rule), had the "
        "transcript and sent the first audio, from the arrival of the caller's last voiced frame.",
        "",
    ]
    for reason in dict.fromkeys(report.data["server_data"] for report in reports if not has_server_data(report.data)):
        lines += [f"Note: {reason}.", ""]
    lines += [
        "| call | result | ended | outcome | turns | expectations | greeting first audio | response latency per turn "
        "| barge-in -> clear | violations |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for report in reports:
        data = report.data
        played = sum(1 for turn in data["turns"] if turn["played"])
        latencies = [
            ms_text(turn["response_latency_ms"]).removesuffix(" ms")
            for turn in data["turns"]
            if turn["kind"] in ("say", "audio", "dtmf") and turn["played"]
        ]
        barge_ins = [
            ms_text(turn["barge_in"]["clear_after_ms"]).removesuffix(" ms")
            for turn in data["turns"]
            if turn["barge_in"]
        ]
        violations = data["protocol"]["violations"]
        if data["protocol"]["server_reported_errors"]:
            violations = f"{violations} (+{data['protocol']['server_reported_errors']} reported by the server)"
        lines.append(
            f"| {report.name} | {result_text(report)} | {_ended_text(data)} | {_outcome_text(data)} "
            f"| {played}/{len(data['turns'])} | {expectations_text(data)} "
            f"| {ms_text(data['greeting']['first_audio_ms'])} | {', '.join(latencies) or '-'} "
            f"| {', '.join(barge_ins) or '-'} | {violations} |"
        )
    for report in reports:
        data = report.data
        lines += ["", f"## {report.name}", ""]
        if data["description"]:
            lines += [data["description"], ""]
        lines += [f"Files: `{report.json_path.name}`, `{report.wav_path.name}` (left caller, right agent).", ""]
        lines += [
            f"- {check.status.value.upper()} {_cell(check.message)}"
            for check in report.checks
            if check.status is not Status.PASSED
        ]
        if any(check.status is not Status.PASSED for check in report.checks):
            lines.append("")
        lines += [
            "| turn | caller | heard as | decision | response | server's budget | barge-in -> clear | note |",
            "|---|---|---|---|---|---|---|---|",
        ]
        greeting = data["greeting"]["exchange"]
        if greeting is not None:
            lines.append(
                f"| greeting | - | - | {decision_text(greeting['decision'])} "
                f"| first audio {ms_text(data['greeting']['first_audio_ms'])} | - | - | - |"
            )
        for turn in data["turns"]:
            decisions = "; ".join(decision_text(item["decision"]) for item in turn["exchanges"] or ()) or "-"
            barge_in = ms_text(turn["barge_in"]["clear_after_ms"]) if turn["barge_in"] else "-"
            budgets = "; ".join(
                latency_text(item.get("latency")) for item in turn["exchanges"] or () if item.get("latency")
            )
            lines.append(
                f"| {turn['index']} | {_cell(input_text(turn['input']))} | {_cell(turn['transcript'])} | {decisions} "
                f"| {ms_text(turn['response_latency_ms'])} | {_cell(budgets)} | {barge_in} | {_cell(turn['note'])} |"
            )
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    return "-" if value in (None, "") else str(value).replace("|", "\\|")


def input_text(spec: dict[str, Any]) -> str:
    """A caller turn as the fixture states it, in a few words: ``say: Agent, please.``, ``pause 2000 ms``."""
    for key in TURN_KEYS:
        if key in spec:
            if key == "hangup":
                return "hang up"
            if key == "pause_ms":
                return f"pause {spec[key]} ms"
            return f"{key}: {spec[key]}"
    return "-"


def decision_text(decision: dict[str, Any]) -> str:
    """A decision in a few words: ``transfer (human_request, speak_to_person 0.93, to billing)``."""
    text = f"{decision['action']} ({decision['rule']}"
    if decision["intent"]:
        text += f", {decision['intent']} {decision['confidence']:.2f}"
    if decision["department"]:
        text += f", to {decision['department']}"
    return text + ")"


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason a call failed, for the console and for JUnit."""

    kind: str
    """``expectation``, ``protocol`` or ``incomplete``."""
    message: str


def call_problems(report: CallReport) -> list[Problem]:
    """Every reason a call failed, one each: its failed expectations (what was expected and what happened), each
    protocol violation kept as an example (and how many more there were), and not completing."""
    data = report.data
    problems = [Problem("expectation", check.message) for check in report.failed_checks]
    protocol = data["protocol"]
    problems += [Problem("protocol", f"protocol violation at {example}") for example in protocol["examples"]]
    if protocol["violations"] > len(protocol["examples"]):
        more = protocol["violations"] - len(protocol["examples"])
        problems.append(Problem("protocol", f"{more} more protocol violations (not kept)"))
    if protocol["server_reported_errors"]:
        count = protocol["server_reported_errors"]
        problems.append(Problem("protocol", f"the server reported {count} malformed messages from the replay"))
    if not data["completed"]:
        ended = data["ended"]
        problems.append(
            Problem("incomplete", f"incomplete: ended {ended['by']} ({ended['detail'] or ended['close_code']})")
        )
    return problems


def result_text(report: CallReport) -> str:
    """A call's verdict in a word or two: ok, failed expectations, violations, incomplete."""
    if not report.data["completed"]:
        return "incomplete"
    if not report.ok:
        return "violations"
    return "failed expectations" if report.failed_checks else "ok"


def expectations_text(data: dict[str, Any]) -> str:
    """``"6/7 passed, 1 failed"``, with unchecked ones counted when there are any."""
    counts = data["expectations"]
    total = counts["passed"] + counts["failed"] + counts["unchecked"]
    text = f"{counts['passed']}/{total} passed"
    if counts["failed"]:
        text += f", {counts['failed']} failed"
    if counts["unchecked"]:
        text += f", {counts['unchecked']} unchecked"
    return text


def median_latency_ms(data: dict[str, Any]) -> float | None:
    """The median response latency of a call's turns, or None when no turn was answered."""
    values = [turn["response_latency_ms"] for turn in data["turns"] if turn["response_latency_ms"] is not None]
    return statistics.median(values) if values else None


def latency_text(latency: dict[str, Any] | None) -> str:
    """A spoken turn's latency budget as the server recorded it, from the caller's last voiced frame:
    ``silence +150, end of turn +520 (complete_request), transcript +480, first audio +610 ms``."""
    if not latency:
        return "-"

    def at(name: str) -> str:
        value = latency.get(name)
        return "-" if value is None else f"+{value:.0f}"

    return (
        f"silence {at('silence_detected_ms')}, end of turn {at('end_of_turn_ms')} ({latency['end_of_turn_rule']}), "
        f"transcript {at('transcript_ready_ms')}, first audio {at('first_audio_ms')} ms"
    )


def ms_text(value: float | None) -> str:
    """A duration for a report line or table cell: ``"812 ms"``, or ``"-"`` when there is none."""
    return "-" if value is None else f"{value:.0f} ms"
