"""Values that cross the boundary between telephony and voice: caller turns in, decisions out."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

TECHNICAL_FAILURE_RULE = "technical_failure"
"""The rule of the transfer made when speech recognition or synthesis fails mid-call."""
HAND_OVER_NOW_RULE = "handed_over_now"
"""The rule of the transfer made when the call is handed over at once (the server is stopping)."""


class Action(StrEnum):
    """What the call does after the agent's reply."""

    REPLY = "reply"
    """Speak the reply and keep listening."""
    TRANSFER = "transfer"
    """Speak the reply, then hand the call to a person."""
    END = "end"
    """Speak the reply, then hang up."""


@dataclass(frozen=True, slots=True)
class Transcript:
    """What the caller said in one turn, as recognised."""

    text: str
    """The recognised words."""
    confidence: float = 1.0
    """Recogniser confidence, 0..1; 1.0 for typed text."""
    start_ms: int = 0
    """Start of the utterance, in milliseconds from the start of the call."""
    end_ms: int = 0
    """End of the utterance, in milliseconds from the start of the call."""


@dataclass(frozen=True, slots=True)
class Dtmf:
    """A key the caller pressed."""

    digit: str
    """One of 0-9, * and #."""


CallerTurn = Transcript | Dtmf


@dataclass(frozen=True, slots=True)
class Decision:
    """The engine's answer to one caller turn, with the reasons behind it."""

    reply: str
    """What the agent says next."""
    action: Action
    """What happens to the call after the reply."""
    rule: str
    """Identifier of the policy rule that decided, such as ``intent`` or ``human_request``."""
    intent: str | None = None
    """The caller's intent, or None when not understood."""
    confidence: float = 0.0
    """Confidence in `intent`, 0..1 (1.0 for key presses and keyword matches)."""
    department: str | None = None
    """For a transfer: the department that takes the call."""
    transfer_reason: str | None = None
    """For a transfer: why, in plain words, for the person who takes the call."""
    reasons: tuple[str, ...] = field(default_factory=tuple)
    """Human-readable evidence: which rule fired, which words or examples matched, which scores."""
