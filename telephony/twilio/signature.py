"""Is this request from Twilio? The one place that checks X-Twilio-Signature, for webhooks and media streams alike.

Twilio signs every webhook (the URL it requested and the form's parameters) and the WebSocket upgrade of a media
stream (the ``wss://`` URL, no parameters) with the account's auth token (HMAC-SHA1, `twilio.request_validator`).
Behind a TLS proxy the URL Twilio requested is the configured public URL, not the one the proxy forwards.

Without an auth token nothing can be checked: the server then refuses to start unless
VOICE_AGENT_ALLOW_UNSIGNED_WEBHOOKS=true says that this is a development set-up (`unsigned` is True, and start-up
and /healthz say so).

A signature has no timestamp, so a captured request stays valid: `RecentRequests` remembers the idempotency tokens
and signatures of recent state-changing webhooks, and a repeat changes nothing.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from starlette.requests import HTTPConnection
from twilio.request_validator import RequestValidator

from telephony.settings import Settings, SettingsError

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Twilio-Signature"
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"
UNSIGNED_WARNING = (
    "VOICE_AGENT_ALLOW_UNSIGNED_WEBHOOKS=true and no TWILIO_AUTH_TOKEN: webhooks and media streams are NOT checked; "
    "anyone who reaches this server can open and steer calls. For development only."
)
MAX_REMEMBERED_REQUESTS = 10_000
"""Recent webhooks remembered to spot a repeat (a few hours of a busy line's transfers; older ones are forgotten)."""


def _websocket_scheme(http_url: str) -> str:
    if http_url.startswith("https://"):
        return "wss://" + http_url.removeprefix("https://")
    return "ws://" + http_url.removeprefix("http://")


def signed_url(connection: HTTPConnection, settings: Settings) -> str:
    """The URL Twilio signed for this request: the public URL's when configured, else the request's own.

    A WebSocket's is its ``wss://`` (or ``ws://``) URL, as the ``<Stream url>`` named it.
    """
    if not settings.public_url:
        return str(connection.url)
    query = f"?{connection.url.query}" if connection.url.query else ""
    url = settings.public_url + connection.url.path + query
    return _websocket_scheme(url) if connection.scope["type"] == "websocket" else url


class TwilioSignatures:
    """Checks X-Twilio-Signature with the configured auth token (or lets everything through, said loudly)."""

    def __init__(self, settings: Settings) -> None:
        """Check with the settings' auth token.

        Raises:
            SettingsError: no auth token, and unsigned requests are not explicitly allowed.
        """
        self._settings = settings
        token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
        if not token and not settings.allow_unsigned_webhooks:
            raise SettingsError(
                "TWILIO_AUTH_TOKEN is not set, so nothing would check that webhooks and media streams come from "
                "Twilio: set it to your account's auth token, or, for development only, set "
                "VOICE_AGENT_ALLOW_UNSIGNED_WEBHOOKS=true"
            )
        self._validator = RequestValidator(token) if token else None

    @property
    def unsigned(self) -> bool:
        """Nothing is checked (development only: VOICE_AGENT_ALLOW_UNSIGNED_WEBHOOKS=true, no auth token)."""
        return self._validator is None

    def valid(self, connection: HTTPConnection, params: dict[str, str] | None = None) -> bool:
        """Whether the request carries Twilio's signature of its URL and `params` (a WebSocket upgrade has none)."""
        if self._validator is None:
            return True
        signature = connection.headers.get(SIGNATURE_HEADER, "")
        if not signature:
            return False
        return self._validator.validate(signed_url(connection, self._settings), params or {}, signature)


class RecentRequests:
    """The idempotency tokens and signatures of recent webhooks, to act on each request once (bounded memory)."""

    def __init__(self, capacity: int = MAX_REMEMBERED_REQUESTS) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity

    def repeated(self, connection: HTTPConnection) -> bool:
        """Whether this request was seen before (Twilio retrying it, or someone replaying it); remembers it."""
        keys = [
            f"{kind}:{connection.url.path}:{value}"
            for kind, value in (
                ("token", connection.headers.get(IDEMPOTENCY_HEADER)),
                ("signature", connection.headers.get(SIGNATURE_HEADER)),
            )
            if value
        ]
        repeated = any(key in self._seen for key in keys)
        for key in keys:
            self._seen[key] = None
            self._seen.move_to_end(key)
        while len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return repeated
