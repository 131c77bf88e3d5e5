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

import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from telephony.calls import CallRegistry
from voice.events import Action, Decision
from voice.handoff import build_handoff
from voice.prompts import Catalogue

log = logging.getLogger(__name__)

PENDING_STREAM_S = 15.0
"""How long an admitted call counts while its media stream has not started (Twilio opens it within seconds)."""
OVER_CAPACITY_RULE = "over_capacity"
STREAM_SECRET_PARAMETER = "ticket"
"""The ``<Stream><Parameter>`` (and ``start.customParameters`` entry) that carries a call's one-time stream secret."""


@dataclass(slots=True)
class _Pending:
    deadline: float
    secret: str


class Admission:
    """Decides whether this process takes a new call, counting live calls and those whose stream is on its way."""

    def __init__(
        self,
        registry: CallRegistry,
        max_calls: int,
        pending_stream_s: float = PENDING_STREAM_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_calls < 1:
            raise ValueError(f"max_calls must be at least 1, got {max_calls}")
        self.max_calls = max_calls
        self._registry = registry
        self._pending_stream_s = pending_stream_s
        self._clock = clock
        # Call SID -> when its admission lapses if no stream has started for it by then, and the stream's secret.
        self._pending: dict[str, _Pending] = {}

    def calls(self) -> int:
        """Calls this process holds: live streams, and admitted calls whose stream has not started yet."""
        now = self._clock()
        self._pending = {
            sid: pending
            for sid, pending in self._pending.items()
            if pending.deadline > now and self._registry.get(sid) is None
        }
        return self._registry.live_count() + len(self._pending)

    def admit(self, call_sid: str) -> str | None:
        """Take the call (and count it from now) if fewer than `max_calls` are held.

        Returns:
            The one-time secret its media stream must carry in ``start`` (a new one if the call was already
            admitted and its stream has not started: Twilio retried the webhook); None to turn the call away.
        """
        if call_sid in self._pending:
            self._pending[call_sid] = _Pending(self._clock() + self._pending_stream_s, secrets.token_urlsafe(24))
            return self._pending[call_sid].secret
        if self.calls() >= self.max_calls:
            return None
        pending = _Pending(self._clock() + self._pending_stream_s, secrets.token_urlsafe(24))
        if call_sid:
            self._pending[call_sid] = pending
        return pending.secret

    def pending(self, call_sid: str) -> bool:
        """Whether `call_sid` was admitted and its stream has not started yet."""
        return call_sid in self._pending and self._registry.get(call_sid) is None

    def claim(self, call_sid: str, secret: str) -> bool:
        """Whether a media stream may carry the call: admitted, not lapsed, and `secret` is its ticket.

        A ticket is used once: the caller of a successful claim must open the call in the registry at once (before
        awaiting anything), where it goes on counting as live.
        """
        pending = self._pending.get(call_sid)
        if pending is None or pending.deadline <= self._clock() or self._registry.get(call_sid) is not None:
            return False
        if not hmac.compare_digest(pending.secret.encode(), secret.encode()):
            return False
        del self._pending[call_sid]
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
        info.handoff = build_handoff(call_sid, [(None, decision)], decision, caller)
        registry.finish(call_sid, decision)
    return decision
