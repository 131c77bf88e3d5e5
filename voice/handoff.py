"""The handoff: what the person who takes a transferred call needs to know, so the caller never repeats themselves.

Made when the engine decides to transfer: who is calling (number masked), why (intent, department, the reason in
plain words), the key facts the caller gave (what they asked about, keys pressed) and the transcript so far. The
caller's words arrive already redacted (`voice.redaction`); as a second line of defence every digit run of four or
more that is left is masked too, which covers card, account and phone numbers in any form redaction missed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from voice.events import Action, Decision, Dtmf, Transcript

# Four or more digits, possibly separated by spaces or dashes as recognisers write them ("4111 1111 ...").
_DIGIT_RUN = re.compile(r"\d(?:[ \-]?\d){3,}")
_MASK = "[number]"
_VISIBLE_CALLER_DIGITS = 2


@dataclass(frozen=True, slots=True)
class TranscriptLine:
    """One line of the conversation as the agent desk shows it."""

    speaker: str
    """"caller" or "agent"."""
    text: str
    """What was said (masked) or, for a key press, "pressed 3"."""


@dataclass(frozen=True, slots=True)
class Handoff:
    """The context passed to the person who takes the call."""

    call_sid: str
    """The call, for the agent desk and the API."""
    caller: str
    """The caller's number with all but the last two digits masked, or "unknown"."""
    intent: str | None
    """What the caller wanted when the transfer was decided."""
    department: str
    """Who takes the call."""
    reason: str
    """Why the call was transferred, in plain words."""
    facts: tuple[str, ...]
    """Key facts the caller gave: topics asked about, keys pressed, whether they were understood."""
    transcript: tuple[TranscriptLine, ...]
    """The conversation so far, masked."""

    def summary(self) -> str:
        """One or two short sentences for the whisper to the person before the caller is connected."""
        topic = self.intent.replace("_", " ") if self.intent else "an unrecognised request"
        return f"Transferred caller about {topic}. Reason: {self.reason}."


def mask_digits(text: str) -> str:
    """Replace every run of four or more digits in `text` (spaces and dashes allowed inside) with a marker."""
    return _DIGIT_RUN.sub(_MASK, text)


def mask_caller_number(number: str | None) -> str:
    """ "+31 6 1234 5678" -> "*********78": enough for the person to recognise a repeat caller, no more."""
    digits = re.sub(r"\D", "", number or "")
    if len(digits) <= _VISIBLE_CALLER_DIGITS:
        return "unknown"
    return "*" * (len(digits) - _VISIBLE_CALLER_DIGITS) + digits[-_VISIBLE_CALLER_DIGITS:]


def build_handoff(
    call_sid: str,
    exchanges: Sequence[tuple[Transcript | Dtmf | None, Decision]],
    decision: Decision,
    caller_number: str | None,
) -> Handoff:
    """Make the handoff for a transfer decision.

    Args:
        call_sid: the call.
        exchanges: every (caller turn, decision) so far, greeting first, `decision` last.
        decision: the transfer decision.
        caller_number: the caller's number as the telephony provider gave it, if known.

    Raises:
        ValueError: `decision` is not a transfer.
    """
    if decision.action is not Action.TRANSFER or decision.department is None:
        raise ValueError(f"a handoff needs a transfer decision with a department, got {decision.action.value}")
    transcript: list[TranscriptLine] = []
    topics: list[str] = []
    keys: list[str] = []
    not_understood = 0
    for turn, reply in exchanges:
        if isinstance(turn, Transcript):
            transcript.append(TranscriptLine("caller", mask_digits(turn.text)))
        elif isinstance(turn, Dtmf):
            transcript.append(TranscriptLine("caller", f"pressed {turn.digit}"))
            keys.append(turn.digit)
        transcript.append(TranscriptLine("agent", mask_digits(reply.reply)))
        if turn is not None and reply.intent is None:
            not_understood += 1
        if reply.intent and reply.intent not in topics and reply.rule in ("intent", "keypad", "sensitive"):
            topics.append(reply.intent)
    facts = []
    if topics:
        facts.append("asked about: " + ", ".join(topic.replace("_", " ") for topic in topics))
    if keys:
        facts.append("pressed: " + " ".join(keys))
    if not_understood:
        facts.append(f"turns the automated agent did not understand: {not_understood}")
    if decision.intent:
        facts.append(f"intent at transfer: {decision.intent.replace('_', ' ')} ({decision.confidence:.2f})")
    return Handoff(
        call_sid=call_sid,
        caller=mask_caller_number(caller_number),
        intent=decision.intent,
        department=decision.department,
        reason=decision.transfer_reason or "transfer",
        facts=tuple(facts),
        transcript=tuple(transcript),
    )
