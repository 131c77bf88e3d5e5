"""TwiML answers: connect a new call to our media stream, and what to do when the stream ends."""

from __future__ import annotations

from twilio.twiml.voice_response import Connect, Dial, VoiceResponse

from telephony.deployment import TransferTarget

MEDIA_PATH = "/twilio/media"
# Stream parameter carrying the caller's number from the webhook to the media stream (Twilio passes it back in
# `start.customParameters`).
CALLER_PARAMETER = "caller"
AFTER_STREAM_PATH = "/twilio/after-stream"


def websocket_url(public_base_url: str, path: str = MEDIA_PATH) -> str:
    """The wss:// (or ws://) URL of `path` on the server whose public base URL is `public_base_url`."""
    base = public_base_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base.removeprefix("https://") + path
    if base.startswith("http://"):
        return "ws://" + base.removeprefix("http://") + path
    raise ValueError(f"expected an http:// or https:// base URL, got {public_base_url!r}")


def connect_stream(public_base_url: str, parameters: dict[str, str] | None = None) -> str:
    """TwiML for an incoming call: a bidirectional <Connect><Stream> to our media WebSocket.

    When our side closes the stream, Twilio requests the <Connect action> URL: the hook for a transfer.
    """
    response = VoiceResponse()
    connect = Connect(action=public_base_url.rstrip("/") + AFTER_STREAM_PATH, method="POST")
    stream = connect.stream(url=websocket_url(public_base_url))
    for name, value in (parameters or {}).items():
        stream.parameter(name=name, value=value)
    response.append(connect)
    return str(response)


def hang_up() -> str:
    """TwiML that ends the call (after the agent said goodbye)."""
    response = VoiceResponse()
    response.hangup()
    return str(response)


def dial_department(target: TransferTarget) -> str:
    """TwiML that connects the caller to a department's number, SIP address or queue."""
    response = VoiceResponse()
    if target.queue:
        response.enqueue(target.queue)
        return str(response)
    dial = Dial()
    if target.number:
        dial.number(target.number)
    else:
        dial.sip(target.sip)
    response.append(dial)
    return str(response)
