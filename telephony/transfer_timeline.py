"""How a transfer goes after the automated part: ringing, waiting in a queue, answered, not answered, a call-back.

Each step is a `TransferEvent` on the call (`CallInfo.transfer_events`), recorded from Twilio's webhooks
(`telephony.twilio.webhooks`), stored with the call and pushed to the desk over its live event stream, where the
card shows the latest state and the call view the whole timeline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum


class TransferState(StrEnum):
    """Where a transferred call stands."""

    RINGING = "ringing"
    """The department's number or SIP address is being dialled."""
    QUEUED = "queued"
    """The caller waits in the department's queue."""
    ANSWERED = "answered"
    """A person picked up (and hears the handoff before the caller is connected)."""
    COMPLETED = "completed"
    """The caller was connected to a person and that call has ended."""
    NOT_ANSWERED = "not_answered"
    """Nobody took the call (no answer, busy, failed, a full queue); the caller is offered a call-back."""
    CALLER_HUNG_UP = "caller_hung_up"
    """The caller hung up before a person took the call."""
    CALLBACK_REQUESTED = "callback_requested"
    """The caller asked to be called back (or chose nothing)."""
    MESSAGE_LEFT = "message_left"
    """The caller left a message."""


@dataclass(frozen=True, slots=True)
class TransferEvent:
    """One step of a transfer."""

    state: TransferState
    detail: str | None = None
    """What Twilio reported, when it says more than the state ("no-answer", "position 2")."""
    at: float = field(default_factory=time.time)
    """When it happened (``time.time()``)."""

    def same_step(self, other: TransferEvent | None) -> bool:
        """Whether `other` says the same (Twilio repeats some webhooks, such as the queue's wait message)."""
        return other is not None and (other.state, other.detail) == (self.state, self.detail)
