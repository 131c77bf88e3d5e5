"""Admission control: beyond `VOICE_AGENT_MAX_CALLS` simultaneous calls a new call goes straight to a person.

A call counts from the moment ``/twilio/voice`` admits it, not only once its media stream has started: Twilio
opens the stream a moment after the webhook's answer, and a burst of calls must not all slip in during that
moment. An admitted call whose stream never arrives (the caller hung up while connecting) stops counting after
`PENDING_STREAM_S`.

Per process: the webhook and the stream of one call may land on different instances of a multi-instance
deployment, and each instance counts only the calls it holds. Set the limit per instance, and let the load balancer
spread calls.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from telephony.calls import CallRegistry
from telephony.stream_tickets import StreamTickets
from voice.events import Action, Decision
from voice.handoff import build_handoff
from voice.prompts import Catalogue, HandoffReason

log = logging.getLogger(__name__)

PENDING_STREAM_S = 15.0
"""How long an admitted call counts while its media stream has not started (Twilio opens it within seconds)."""
OVER_CAPACITY_RULE = "over_capacity"
STREAM_SECRET_PARAMETER = "ticket"
"""The ``<Stream><Parameter>`` (and ``start.customParameters`` entry) that carries a call's stream ticket."""


class Admission:
    """Decides whether this process takes a new call, counting live calls and those whose stream is on its way."""

    def __init__(
        self,
        registry: CallRegistry,
        max_calls: int,
        tickets: StreamTickets | None = None,
        pending_stream_s: float = PENDING_STREAM_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Count against `max_calls`; `tickets` issues and checks the streams' tickets (default: this process's)."""
        if max_calls < 1:
            raise ValueError(f"max_calls must be at least 1, got {max_calls}")
        self.max_calls = max_calls
        self._registry = registry
        self._pending_stream_s = pending_stream_s
        self._clock = clock
        self._tickets = tickets or StreamTickets()
        # Call SID -> when its admission lapses if no stream has started for it by then.
        self._pending: dict[str, float] = {}

    def calls(self) -> int:
        """Calls this process holds: live streams, and admitted calls whose stream has not started yet."""
        now = self._clock()
        self._pending = {
            sid: deadline
            for sid, deadline in self._pending.items()
            if deadline > now and self._registry.get(sid) is None
        }
        return self._registry.live_count() + len(self._pending)

    def admit(self, call_sid: str) -> str | None:
        """Take the call (and count it from now) if fewer than `max_calls` are held.

        Returns:
            The ticket its media stream must carry in ``start`` (a fresh one if the call was already admitted and
            its stream has not started: Twilio retried the webhook); None to turn the call away.
        """
        if call_sid not in self._pending and self.calls() >= self.max_calls:
            return None
        if call_sid:
            self._pending[call_sid] = self._clock() + self._pending_stream_s
        return self._tickets.issue(call_sid)

    def pending(self, call_sid: str) -> bool:
        """Whether `call_sid` was admitted here and its stream has not started yet."""
        return call_sid in self._pending and self._registry.get(call_sid) is None

    def claim(self, call_sid: str, ticket: str) -> bool:
        """Whether a media stream may carry the call: `ticket` was issued for it (here, or by another instance with
        the same key) and is still valid, and the call is not open here.

        The caller of a successful claim must open the call in the registry at once (before awaiting anything),
        where it goes on counting as live; a call already recorded elsewhere is the caller's to refuse first.
        """
        if self._registry.get(call_sid) is not None or not self._tickets.valid(call_sid, ticket):
            return False
        self._pending.pop(call_sid, None)
        return True


def turn_away(
    registry: CallRegistry,
    catalogue: Catalogue,
    call_sid: str,
    caller: str | None,
    limit: int,
    draining: str | None = None,
) -> Decision:
    """Record a call that was not admitted, as a finished call transferred to the default department.

    The record carries a handoff, so the person who answers hears why in the whisper and the desk shows the call,
    and a call-back chosen when nobody answers is kept on it like any other transfer's.

    Args:
        limit: the limit of simultaneous calls, reached unless `draining` says otherwise.
        draining: why the server takes no new calls (it is draining before a stop), if that is why.
    """
    department = catalogue.policy.default_department
    if draining is not None:
        transfer_reason = f"the automated agent was taking no new calls: {draining}"
        why = f"draining: {draining}"
    else:
        transfer_reason = "the automated agent had all the calls it may take"
        why = f"limit of {limit} simultaneous calls reached"
    decision = Decision(
        reply=catalogue.replies.over_capacity,
        action=Action.TRANSFER,
        rule=OVER_CAPACITY_RULE,
        department=department,
        transfer_reason=transfer_reason,
        reasons=(f"rule {OVER_CAPACITY_RULE}", why),
    )
    log.warning("call turned away: %s", why, extra={"call": call_sid or "-"})
    if call_sid:
        # No media stream: the stream SID stays empty.
        info = registry.open(call_sid, stream_sid="", caller_number=caller)
        info.handoff = build_handoff(
            catalogue, call_sid, [(None, decision)], decision, caller, kind=HandoffReason.ASSISTANT_UNAVAILABLE
        )
        registry.finish(call_sid, decision)
    return decision
