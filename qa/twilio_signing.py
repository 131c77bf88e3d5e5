"""Talking to the server as Twilio does: signed webhooks, a signed media-stream upgrade, and the stream's secret.

The one place on the QA side that signs (the server checks in `telephony.twilio.signature`). Twilio signs a webhook's
URL and form parameters, and a media stream's WebSocket upgrade (its ws:// or wss:// URL, no parameters), with the
account's auth token (X-Twilio-Signature). Behind a TLS proxy the signed URL is the server's public one.

A call starts with ``POST /twilio/voice``: its TwiML's ``<Stream>`` carries parameters (the one-time stream secret,
the caller's number), which Twilio passes back in the stream's ``start.customParameters``. `admit_call` asks for
them, so that `qa.twilio_emulator.TwilioSide.start` sends them as Twilio would.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass

import httpx
from twilio.request_validator import RequestValidator

from qa.twilio_emulator import TwilioSide
from telephony.twilio.twiml import MEDIA_PATH

VOICE_PATH = "/twilio/voice"
TEST_CALLER = "+15005550006"
"""Twilio's magic test number: a caller number that reaches nobody."""


class NotAdmittedError(RuntimeError):
    """``/twilio/voice`` did not connect the call to a stream (refused, or turned away to a person)."""


@dataclass(frozen=True, slots=True)
class TwilioCredentials:
    """What Twilio signs with, and the URL it calls the server by.

    Args:
        auth_token: the server's TWILIO_AUTH_TOKEN; None for a development server that accepts unsigned requests.
        public_url: the server's VOICE_AGENT_PUBLIC_URL, when set: the signed URLs start with it.
    """

    auth_token: str | None = None
    public_url: str | None = None

    def signed_url(self, url: str) -> str:
        """The URL Twilio signs for a request to `url`: the same path and query on the public URL, if one is set."""
        if not self.public_url:
            return url
        scheme, _, rest = url.partition("://")
        path = "/" + rest.partition("/")[2]
        public = self.public_url.rstrip("/")
        if scheme in ("ws", "wss"):
            public = "wss://" + public.removeprefix("https://") if public.startswith("https://") else public
            public = "ws://" + public.removeprefix("http://") if public.startswith("http://") else public
        return public + path

    def headers(self, url: str, params: dict[str, str] | None = None) -> dict[str, str]:
        """The X-Twilio-Signature header for a request to `url` with form `params` (none without a token)."""
        if not self.auth_token:
            return {}
        signature = RequestValidator(self.auth_token).compute_signature(self.signed_url(url), params or {})
        return {"X-Twilio-Signature": signature}


def incoming_call_form(twilio: TwilioSide, caller: str | None = TEST_CALLER) -> dict[str, str]:
    """The form Twilio posts to ``/twilio/voice`` for a new call (the fields the server reads, and a few more)."""
    form = {
        "CallSid": twilio.call_sid,
        "AccountSid": twilio.account_sid,
        "CallStatus": "ringing",
        "Direction": "inbound",
    }
    if caller:
        form["From"] = caller
    return form


def stream_parameters(twiml: str) -> dict[str, str]:
    """The ``<Stream><Parameter>`` names and values of a ``<Connect><Stream>`` answer.

    Raises:
        NotAdmittedError: the TwiML connects no stream (the call was turned away to a person).
    """
    try:
        stream = ElementTree.fromstring(twiml).find("Connect/Stream")
    except ElementTree.ParseError as error:
        raise NotAdmittedError(f"/twilio/voice answered something that is not TwiML: {twiml[:200]!r}") from error
    if stream is None:
        raise NotAdmittedError(f"/twilio/voice connected no stream: {twiml[:300]}")
    return {parameter.attrib["name"]: parameter.attrib["value"] for parameter in stream.iter("Parameter")}


async def admit_call(
    http_base: str, twilio: TwilioSide, credentials: TwilioCredentials, caller: str | None = TEST_CALLER
) -> None:
    """Offer the call to ``POST /twilio/voice`` as Twilio does, and keep its stream's parameters on `twilio`.

    Raises:
        NotAdmittedError: the server refused the webhook or connected no stream.
        httpx.HTTPError: the server could not be reached.
    """
    form = incoming_call_form(twilio, caller)
    url = http_base.rstrip("/") + VOICE_PATH
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(url, data=form, headers=credentials.headers(url, form))
    if response.status_code != 200:
        raise NotAdmittedError(f"/twilio/voice answered {response.status_code}: {response.text[:200]}")
    twilio.custom_parameters = stream_parameters(response.text)


def media_stream_url(http_base: str) -> str:
    """The media stream's ws:// (or wss://) URL on the server at `http_base`."""
    base = http_base.rstrip("/")
    scheme = "wss://" if base.startswith("https://") else "ws://"
    return scheme + base.split("://", 1)[1] + MEDIA_PATH
