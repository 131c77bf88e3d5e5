"""Expectations of QA replay fixtures: what a fixture call states should happen, and the checks against the report.

    per turn  "expect": {"intent", "action", "department", "rule"}   the decision that answered the turn
    per call  "expect": {"outcome", "department", "ai_disclosure", "no_talking_over"}

`check_call` reads only a call's report data (the JSON `qa.report` writes), so every verdict can be
traced to figures in the report. Each check says what was expected and what happened. The format is described in
audio_fixtures/README.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from voice.tone import discloses_ai, sentences

NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
"""Intent, department and rule names as the catalogue and the engine write them."""
IN_PROCESS_DATA = "in-process app"
"""The report's ``server_data`` when the call record was read from the app running in this process."""
CALL_API_DATA = "call API"
"""The report's ``server_data`` when the call record was read from a running server's ``GET /api/calls/{sid}``."""
ONSET_GRACE_MS = 40
"""Agent audio that starts this soon after the caller's first voiced frame was sent before the server could have
received that frame (one 20 ms tick for the frame, one for the agent's audio to reach playback): not talking over."""


def turn_field(number: int, path: str = "") -> str:
    """Where something is in a fixture's turn, for messages: ``turn 2 expect.intent``; turns count from 1, as the
    report numbers them.

    Args:
        number: the turn's position in the fixture, from 1.
        path: the field inside the turn, as a JSON path (``expect.intent``), or empty for the turn itself.
    """
    return f"turn {number} {path}" if path else f"turn {number}"


class TurnExpect(BaseModel):
    """What the decision answering one caller turn should be; only the fields given are checked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    intent: str | None = Field(default=None, pattern=NAME_PATTERN)
    """The intent, such as ``billing_question``; ``null`` means "not understood" (no intent)."""
    action: Literal["reply", "transfer", "end"] | None = None
    """What the call does after the reply."""
    department: str | None = Field(default=None, pattern=NAME_PATTERN)
    """For a transfer, the department that takes the call; ``null`` means none."""
    rule: str | None = Field(default=None, pattern=NAME_PATTERN)
    """The policy rule that decided, such as ``ai_question``, ``dtmf_zero`` or ``not_understood``."""

    @model_validator(mode="after")
    def _something_expected(self) -> TurnExpect:
        if not self.model_fields_set:
            raise ValueError("give at least one of 'intent', 'action', 'department', 'rule'")
        return self


class CallExpect(BaseModel):
    """What should be true of the whole call. The two promises are checked unless switched off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    outcome: Literal["transfer", "end", "none"] | None = None
    """How the automated part ends: "transfer" (handed to a person), "end" (the agent said goodbye and ended the
    call), "none" (neither: the caller hung up or stopped with the call still open). Not checked when absent."""
    department: str | None = Field(default=None, pattern=NAME_PATTERN)
    """With outcome "transfer": the department the call went to."""
    ai_disclosure: bool = True
    """The agent's first sentence says it is an automated AI assistant, and it was played (unless the caller cut
    it off)."""
    no_talking_over: bool = True
    """The agent never starts new audio while the caller is speaking."""

    @field_validator("department")
    @classmethod
    def _department_needs_a_transfer(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("outcome") != "transfer":
            raise ValueError('a department needs "outcome": "transfer"')
        return value


# --- checks ---------------------------------------------------------------------------------------------------------


class Status(StrEnum):
    """The verdict of one check."""

    PASSED = "passed"
    FAILED = "failed"
    UNCHECKED = "unchecked"
    """The report lacks what the check needs (transcripts and decisions, against --server)."""


@dataclass(frozen=True, slots=True)
class Check:
    """One expectation and what happened."""

    field: str
    """Where the expectation is in the fixture: ``turn 2 expect.intent`` (turns from 1), ``expect.outcome``."""
    status: Status
    expected: str
    """What the fixture expects, in words."""
    actual: str
    """What the report shows."""

    @property
    def message(self) -> str:
        """``turn 2 expect.intent: expected 'speak_to_person'; got 'billing_question' (...)``."""
        return f"{self.field}: expected {self.expected}; got {self.actual}"

    def to_json(self) -> dict[str, str]:
        """The check as the report's JSON stores it."""
        return {"field": self.field, "status": self.status.value, "expected": self.expected, "actual": self.actual}


def _status(passed: bool) -> Status:
    return Status.PASSED if passed else Status.FAILED


def _seconds(ms: float) -> str:
    return f"{ms / 1000:.2f} s"


def _decision_words(decision: dict[str, Any]) -> str:
    words = f"intent {decision['intent']!r}, action {decision['action']!r}, rule {decision['rule']!r}"
    if decision["department"]:
        words += f", department {decision['department']!r}"
    return words


def _turn_checks(path: str, turn: dict[str, Any], expect: TurnExpect, server_data: str) -> list[Check]:
    fields = [name for name in TurnExpect.model_fields if name in expect.model_fields_set]
    expected = {name: repr(getattr(expect, name)) if getattr(expect, name) is not None else "null" for name in fields}
    if not turn["played"]:
        why = turn["note"] or "not played"
        return [Check(f"{path}.{name}", Status.FAILED, expected[name], why) for name in fields]
    exchanges = turn["exchanges"]
    if exchanges is None:
        why = f"nothing: {server_data}"
        return [Check(f"{path}.{name}", Status.UNCHECKED, expected[name], why) for name in fields]
    if not exchanges:
        why = "no decision: the server answered nothing to this turn"
        if turn["transcript"] is None and turn["kind"] != "dtmf":
            why += " (it heard no words)"
        return [Check(f"{path}.{name}", Status.FAILED, expected[name], why) for name in fields]
    # The last decision is the one the caller was left with (a turn heard as two utterances gets two).
    decision = exchanges[-1]["decision"]
    context = _decision_words(decision)
    if turn["transcript"] is not None:
        context += f"; heard as {turn['transcript']!r}"
    if len(exchanges) > 1:
        context += f"; the last of {len(exchanges)} decisions for this turn"
    checks = []
    for name in fields:
        actual = decision[name]
        shown = repr(actual) if actual is not None else "null"
        checks.append(
            Check(f"{path}.{name}", _status(actual == getattr(expect, name)), expected[name], f"{shown} ({context})")
        )
    return checks


def has_server_data(data: dict[str, Any]) -> bool:
    """The call's report holds the server's record (transcripts, decisions, outcome), in-process or from the API."""
    return data["server_data"] in (IN_PROCESS_DATA, CALL_API_DATA)


def _actual_outcome(data: dict[str, Any]) -> tuple[str | None, str | None]:
    """(outcome, department) as the report shows them; (None, None) when it cannot tell."""
    if has_server_data(data):
        outcome = data["ended"]["outcome"]
        if outcome is None:
            return "none", None
        return outcome["action"], outcome["department"]
    # Without the record: a server that closes the stream itself hands over (Dial, Enqueue) or hangs up.
    if data["ended"]["by"] != "server_closed":
        return "none", None
    verb = data["after_stream"].get("verb")
    if verb in ("Dial", "Enqueue"):
        return "transfer", None
    if verb == "Hangup":
        return "end", None
    return None, None


def _outcome_checks(data: dict[str, Any], expect: CallExpect) -> list[Check]:
    checks = []
    outcome, department = _actual_outcome(data)
    how = f"ended {data['ended']['by']}"
    if expect.outcome is not None:
        if outcome is None:
            checks.append(Check("expect.outcome", Status.UNCHECKED, repr(expect.outcome), f"unknown ({how})"))
        else:
            shown = f"{outcome!r}" + (f" to {department!r}" if department else "") + f" ({how})"
            checks.append(Check("expect.outcome", _status(outcome == expect.outcome), repr(expect.outcome), shown))
    if expect.department is not None:
        if outcome == "transfer" and department is None:
            checks.append(
                Check("expect.department", Status.UNCHECKED, repr(expect.department), "a transfer to an unknown team")
            )
        else:
            shown = repr(department) if department else f"no transfer ({how})"
            checks.append(
                Check("expect.department", _status(department == expect.department), repr(expect.department), shown)
            )
    return checks


def _disclosure_check(data: dict[str, Any], language: str) -> Check:
    expected = "the agent's first sentence to say it is an automated AI assistant, played to the caller"
    exchange = data["greeting"]["exchange"]
    if exchange is None:
        if not has_server_data(data):
            return Check("expect.ai_disclosure", Status.UNCHECKED, expected, f"no text: {data['server_data']}")
        return Check(
            "expect.ai_disclosure", Status.FAILED, expected, "no greeting: the agent's first words were not one"
        )
    parts = sentences(exchange["decision"]["reply"])
    first = parts[0] if parts else ""
    if not discloses_ai(first, language):
        return Check("expect.ai_disclosure", Status.FAILED, expected, f"the first sentence {first!r}")
    # The server marks the end of each sentence, so the first mark tells whether the first sentence was played out.
    marks = data["timeline"]["marks"]
    if not marks:
        return Check("expect.ai_disclosure", Status.FAILED, expected, f"{first!r}, but no agent audio was played")
    mark = marks[0]
    if mark["reached"]:
        return Check("expect.ai_disclosure", Status.PASSED, expected, f"{first!r}, played in full")
    barged = [
        turn["index"]
        for turn in data["turns"]
        if turn["barge_in"] is not None and turn["start_ms"] is not None and turn["start_ms"] <= mark["at_ms"]
    ]
    if barged:
        actual = f"{first!r}, cut off by the caller (turn {barged[0]}) at {_seconds(mark['at_ms'])}"
        return Check("expect.ai_disclosure", Status.PASSED, expected, actual)
    actual = f"{first!r}, but it was cleared at {_seconds(mark['at_ms'])} while the caller was silent"
    return Check("expect.ai_disclosure", Status.FAILED, expected, actual)


def talking_over(caller_speech: Sequence[dict[str, int]], agent_audio: Sequence[dict[str, int]]) -> list[str]:
    """Where the agent started new audio while the caller was speaking.

    Agent audio that was already playing when the caller started (a barge-in) is not new; a start of agent audio
    after a silent tick is. Both lists hold positions on the call's 20 ms frame clock, as in the report's timeline.

    Args:
        caller_speech: per caller turn, its first to last voiced frame: ``{"turn", "start_ms", "end_ms"}``.
        agent_audio: stretches of agent audio played without a gap: ``{"start_ms", "end_ms"}``.

    Returns:
        One line per agent start inside a caller's turn; empty when the agent never talked over the caller.
    """
    found = []
    for audio in agent_audio:
        onset = audio["start_ms"]
        for speech in caller_speech:
            if speech["start_ms"] + ONSET_GRACE_MS < onset < speech["end_ms"]:
                found.append(
                    f"agent audio started at {_seconds(onset)} while the caller spoke (turn {speech['turn']}, "
                    f"{speech['start_ms'] / 1000:.2f}-{_seconds(speech['end_ms'])})"
                )
    return found


def _talking_over_check(data: dict[str, Any]) -> Check:
    expected = "no agent audio starting while the caller speaks"
    timeline = data["timeline"]
    found = talking_over(timeline["caller_speech"], timeline["agent_audio"])
    if found:
        return Check("expect.no_talking_over", Status.FAILED, expected, "; ".join(found))
    starts, turns = len(timeline["agent_audio"]), len(timeline["caller_speech"])
    actual = f"none ({starts} starts of agent audio, {turns} caller turns with speech)"
    return Check("expect.no_talking_over", Status.PASSED, expected, actual)


def check_call(
    data: dict[str, Any], turn_expects: Sequence[TurnExpect | None], expect: CallExpect, language: str
) -> list[Check]:
    """Check one replayed call against its fixture's expectations.

    Args:
        data: the call's report data (`qa.report`), with its ``timeline``.
        turn_expects: per fixture turn, in order, its ``expect`` (None where it has none).
        expect: the fixture's call-level ``expect``.
        language: the call's language (for the disclosure wording).

    Returns:
        The checks in the fixture's order: turns first, then the call's.
    """
    checks = []
    for turn, turn_expect in zip(data["turns"], turn_expects, strict=True):
        if turn_expect is not None:
            checks += _turn_checks(turn_field(turn["index"], "expect"), turn, turn_expect, data["server_data"])
    checks += _outcome_checks(data, expect)
    if expect.ai_disclosure:
        checks.append(_disclosure_check(data, language))
    if expect.no_talking_over:
        checks.append(_talking_over_check(data))
    return checks
