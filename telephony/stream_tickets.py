"""`StreamTickets`: the secret a media stream's ``start`` must carry, issued by ``/twilio/voice`` for one call.

A ticket names its call and its expiry and is signed (HMAC-SHA256) with a key every instance derives from the same
Twilio auth token, so the stream may reach another instance than the webhook did (no sticky sessions). It is valid
for one call and a short time; that it is used only once is the caller's part: a call that already has a record
(live, finished, on any instance) is never opened again.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable

TICKET_LIFETIME_S = 30.0
"""How long a ticket opens its call's stream (Twilio opens it within seconds of the webhook's answer)."""
_CONTEXT = b"voice-agent media stream ticket"


class StreamTickets:
    """Issues and checks stream tickets under one key."""

    def __init__(
        self, key: bytes | None = None, lifetime_s: float = TICKET_LIFETIME_S, clock: Callable[[], float] = time.time
    ) -> None:
        """Sign with a key derived from `key` (the Twilio auth token, shared by every instance); default: a random
        key of this process only."""
        self._key = hmac.new(key or secrets.token_bytes(32), _CONTEXT, hashlib.sha256).digest()
        self._lifetime_s = lifetime_s
        self._clock = clock

    def _signature(self, call_sid: str, expiry: int) -> str:
        return hmac.new(self._key, f"{call_sid}.{expiry}".encode(), hashlib.sha256).hexdigest()

    def issue(self, call_sid: str) -> str:
        """A ticket for `call_sid`'s stream, valid for the ticket lifetime from now."""
        expiry = int(self._clock() + self._lifetime_s)
        return f"{expiry}.{self._signature(call_sid, expiry)}"

    def valid(self, call_sid: str, ticket: str) -> bool:
        """Whether `ticket` was issued for `call_sid` and has not expired."""
        expiry_text, _, signature = ticket.partition(".")
        if not expiry_text.isdigit() or len(expiry_text) > 12:
            return False
        expiry = int(expiry_text)
        if expiry < self._clock():
            return False
        return hmac.compare_digest(signature.encode(), self._signature(call_sid, expiry).encode())
