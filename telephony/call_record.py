"""The call record: what is kept and shown about one call, masked, in one shape for the API, the store and exports.

Built from a live `telephony.calls.CallInfo` (`call_record`, `summarise`) or read back from the database
(`telephony.storage`). Only masked data goes in: the caller's number as ``*********06`` and every run of four or more
digits in what was said, replied or reasoned replaced by ``[number]`` (on top of the redaction of personal data
that `voice.redaction.finder` already applied to each transcript).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel

from telephony.calls import CallInfo, CallState
from telephony.transfer_timeline import TransferEvent
from voice.events import Decision, Dtmf, Transcript
from voice.handoff import Handoff, mask_caller_number, mask_digits
from voice.pipeline import TurnRecord

# --- the record ---------------------------------------------------------------------------------------


class Outcome(BaseModel):
    """How the automated part of the call ended."""

    action: str
    """``transfer`` or ``end``."""
    department: str | None
    """For a transfer: who takes the call."""


class CallSummary(BaseModel):
    """One line of the call list, and the payload of each live event."""

    call_sid: str
    state: CallState
    started_at: str
    """ISO 8601, UTC."""
    ended_at: str | None
    """ISO 8601, UTC; None while the call is live."""
    duration_s: float
    """So far for a live call."""
    intent: str | None
    """The most recent intent the engine recognised, if any."""
    outcome: Outcome | None
    has_handoff: bool
    """A transfer was decided and its handoff is in the call's record."""
    transfer_state: str | None = None
    """Where the transfer stands now (`telephony.transfer_timeline.TransferState`), once Twilio reported a step."""


class CallerTurn(BaseModel):
    """What the caller said (masked) or pressed."""

    kind: Literal["speech", "dtmf"]
    text: str | None = None
    """Recognised words, long digit runs masked (speech only)."""
    confidence: float | None = None
    """Recogniser confidence, 0..1 (speech only)."""
    start_ms: int | None = None
    """From the start of the call (speech only)."""
    end_ms: int | None = None
    digit: str | None = None
    """The key (dtmf only)."""


class DecisionView(BaseModel):
    """The engine's decision for one turn, with the evidence behind it."""

    intent: str | None
    confidence: float
    action: str
    reply: str
    rule: str
    reasons: list[str]
    department: str | None
    transfer_reason: str | None


class LatencyView(BaseModel):
    """Where a spoken turn's response time went, in ms from the arrival of the caller's last voiced frame
    (`voice.latency.LatencyBudget`)."""

    silence_detected_ms: float | None
    """The VAD declared silence (None: the turn was cut, not ended by silence)."""
    end_of_turn_ms: float
    """The end of the turn was decided."""
    end_of_turn_rule: str
    """By which rule (`voice.end_of_turn.EndOfTurnRule`)."""
    transcript_ready_ms: float | None
    """A transcript of the whole turn existed (in the pause, or after the end of the turn)."""
    first_audio_ms: float | None
    """The reply's first audio was sent: the response latency (None: none was sent)."""
    anchor: str = "energy"
    """The last voiced frame is the last loud frame in the VAD's turn ("energy"), or the VAD's end ("vad")."""


class TurnView(BaseModel):
    """One exchange: the caller's turn (None for the greeting) and the agent's answer."""

    caller: CallerTurn | None
    decision: DecisionView
    processing_ms: float | None
    """End of the caller's turn decided (or the key taken) to the first agent audio sent (ASR + engine + TTS)."""
    heard: bool
    """The whole reply was played to the caller."""
    interrupted: bool
    """The caller spoke over the reply and it was cleared."""
    latency: LatencyView | None = None
    """A spoken turn's latency budget, from the caller's last voiced frame; None for keys, the greeting, faults."""


class TranscriptLineView(BaseModel):
    speaker: str
    text: str


class HandoffView(BaseModel):
    """What the person who takes a transferred call is told."""

    caller: str
    """Masked number."""
    intent: str | None
    department: str
    reason: str
    """Why the engine transferred the call, as its decision recorded it."""
    facts: list[str]
    transcript: list[TranscriptLineView]
    summary: str
    """Two sentences in the call's language, what the caller raised and why a person takes over: the desk card's
    headline and the whisper spoken to the person before the caller is connected."""
    # Defaults: records stored before these fields existed still load.
    kind: str | None = None
    """Why a person takes over, as a `voice.prompts.HandoffReason` value (person_requested, sensitive, ...)."""
    topics: list[str] = []
    """The topics the caller raised, named in the call's language."""
    answered: list[str] = []
    """Those of `topics` the automated agent already answered."""
    reason_text: str | None = None
    """Why a person takes over, one sentence in the call's language (the summary's second)."""


class TransferEventView(BaseModel):
    """One step of a transfer, as Twilio's webhooks reported it."""

    at: str
    """ISO 8601, UTC."""
    state: str
    """A `telephony.transfer_timeline.TransferState` value."""
    detail: str | None = None
    """What Twilio reported, when it says more than the state ("no-answer", "position 2")."""


class CallRecord(CallSummary):
    """One call in full."""

    caller: str
    """The caller's number, all but the last two digits masked, or "unknown"."""
    turns: list[TurnView]
    handoff: HandoffView | None
    protocol_errors: int
    failure: str | None
    transfer_status: str | None = None
    """How the transfer went, as Twilio reported it (completed, no-answer, busy, bridged, ...)."""
    callback_requested: bool = False
    """Nobody took the transfer and the caller asked to be called back."""
    message_recording_sid: str | None = None
    """Nobody took the transfer and the caller left a message, kept at Twilio under this recording SID."""
    transfer_timeline: list[TransferEventView] = []
    """Every step of the transfer, oldest first."""


# --- building the views ---------------------------------------------------------------------------------------


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


def _current_intent(records: Sequence[TurnRecord]) -> str | None:
    # The latest recognised intent: a turn that was not understood does not make the desk forget the topic.
    for record in reversed(records):
        if record.decision.intent is not None:
            return record.decision.intent
    return None


def summarise(info: CallInfo, now: float | None = None) -> CallSummary:
    """The call's line in the list (and in the event stream).

    Args:
        info: the call.
        now: the time (``time.time()``) for a live call's duration; default: now.
    """
    end = info.ended_at if info.ended_at is not None else (time.time() if now is None else now)
    outcome = info.outcome
    return CallSummary(
        call_sid=info.call_sid,
        state=info.state,
        started_at=_iso(info.started_at) or "",
        ended_at=_iso(info.ended_at),
        duration_s=round(max(0.0, end - info.started_at), 1),
        intent=_current_intent(info.records),
        outcome=Outcome(action=outcome.action.value, department=outcome.department) if outcome else None,
        has_handoff=info.handoff is not None,
        transfer_state=info.transfer_events[-1].state.value if info.transfer_events else None,
    )


def transfer_event_view(event: TransferEvent) -> TransferEventView:
    """A step of a transfer as the API shows and the store keeps it."""
    return TransferEventView(at=_iso(event.at) or "", state=event.state.value, detail=event.detail)


def _caller_turn(turn: Transcript | Dtmf | None) -> CallerTurn | None:
    if isinstance(turn, Transcript):
        return CallerTurn(
            kind="speech",
            text=mask_digits(turn.text),
            confidence=round(turn.confidence, 4),
            start_ms=turn.start_ms,
            end_ms=turn.end_ms,
        )
    if isinstance(turn, Dtmf):
        return CallerTurn(kind="dtmf", digit=turn.digit)
    return None


def _decision(decision: Decision) -> DecisionView:
    # Replies and reasons can quote the caller ("matched 'my card is 4111 ...'"): masked like the transcript.
    return DecisionView(
        intent=decision.intent,
        confidence=round(decision.confidence, 4),
        action=decision.action.value,
        reply=mask_digits(decision.reply),
        rule=decision.rule,
        reasons=[mask_digits(reason) for reason in decision.reasons],
        department=decision.department,
        transfer_reason=decision.transfer_reason,
    )


def _handoff(handoff: Handoff) -> HandoffView:
    # Made masked by voice.handoff.build_handoff; shown as it is.
    return HandoffView(
        caller=handoff.caller,
        intent=handoff.intent,
        department=handoff.department,
        reason=handoff.reason,
        facts=list(handoff.facts),
        transcript=[TranscriptLineView(speaker=line.speaker, text=line.text) for line in handoff.transcript],
        summary=handoff.summary,
        kind=handoff.kind.value,
        topics=list(handoff.topics),
        answered=list(handoff.answered),
        reason_text=handoff.reason_text,
    )


def turn_view(record: TurnRecord) -> TurnView:
    """One exchange as the API shows it, masked (the caller's words were redacted when they were recognised)."""
    return TurnView(
        caller=_caller_turn(record.caller),
        decision=_decision(record.decision),
        processing_ms=None if record.processing_ms is None else round(record.processing_ms, 1),
        heard=record.heard,
        interrupted=record.interrupted,
        latency=None if record.latency is None else LatencyView.model_validate(record.latency.to_json()),
    )


def call_record(info: CallInfo, now: float | None = None) -> CallRecord:
    """Everything the API shows about one call, masked."""
    summary = summarise(info, now)
    return CallRecord(
        **summary.model_dump(),
        caller=info.handoff.caller if info.handoff is not None else mask_caller_number(info.caller_number),
        turns=[turn_view(record) for record in info.records],
        handoff=_handoff(info.handoff) if info.handoff is not None else None,
        protocol_errors=info.protocol_errors,
        failure=mask_digits(info.failure) if info.failure else None,
        transfer_status=info.transfer_status,
        callback_requested=info.callback_requested,
        message_recording_sid=info.message_recording_sid,
        transfer_timeline=[transfer_event_view(event) for event in info.transfer_events],
    )
