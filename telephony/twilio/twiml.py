"""TwiML answers: connect a new call to our media stream, what to do when the stream ends, and the transfer's steps.

Builders only: they take the URLs and the words and return the XML. Which TwiML a call gets is decided in
`telephony.twilio.transfer`.
"""

from __future__ import annotations

from twilio.twiml.voice_response import Connect, Dial, Gather, VoiceResponse

from telephony.twilio.deployment import TransferTarget

MEDIA_PATH = "/twilio/media"
# Stream parameter carrying the caller's number from the webhook to the media stream (Twilio passes it back in
# `start.customParameters`).
CALLER_PARAMETER = "caller"
AFTER_STREAM_PATH = "/twilio/after-stream"
# The transfer's webhooks (telephony.twilio.transfer builds their URLs).
WHISPER_PATH = "/twilio/whisper"
DIAL_STATUS_PATH = "/twilio/dial-status"
DIAL_CHOICE_PATH = "/twilio/dial-choice"
QUEUE_WAIT_PATH = "/twilio/queue-wait"
MESSAGE_RECORDED_PATH = "/twilio/message-recorded"


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


def dial_department(
    target: TransferTarget,
    *,
    whisper_url: str | None = None,
    status_url: str | None = None,
    wait_url: str | None = None,
    announcement: str | None = None,
    language: str | None = None,
) -> str:
    """TwiML that connects the caller to a department's number, SIP address or queue.

    Args:
        target: where the department takes calls.
        announcement: said to the caller first (<Say>), in `language`.
        whisper_url: TwiML played to the person who answers a number or SIP address before the caller is connected.
        status_url: asked when the dial (or the queue) ends, with DialCallStatus (or QueueResult); with it, a number
            or SIP address rings for the target's timeout.
        wait_url: TwiML played to the caller while waiting in a queue.

    Example: ``dial_department(TransferTarget(number="+15005550102"))`` gives
    ``<Response><Dial><Number>+15005550102</Number></Dial></Response>`` (after the XML declaration).
    """
    response = VoiceResponse()
    if announcement is not None:
        response.say(announcement, language=language)
    if target.queue:
        response.enqueue(
            target.queue,
            action=status_url,
            method="POST" if status_url else None,
            wait_url=wait_url,
            wait_url_method="POST" if wait_url else None,
        )
        return str(response)
    dial = Dial(
        action=status_url,
        method="POST" if status_url else None,
        timeout=target.dial_timeout_s if status_url else None,
    )
    whisper = {"url": whisper_url, "method": "POST"} if whisper_url else {}
    if target.number:
        dial.number(target.number, **whisper)
    else:
        dial.sip(target.sip, **whisper)
    response.append(dial)
    return str(response)


def say(text: str, language: str | None = None) -> str:
    """TwiML that speaks `text` and ends; as a whisper, the call is then connected."""
    response = VoiceResponse()
    response.say(text, language=language)
    return str(response)


def say_and_hang_up(text: str, language: str) -> str:
    """TwiML that speaks `text`, then ends the call."""
    response = VoiceResponse()
    response.say(text, language=language)
    response.hangup()
    return str(response)


def queue_wait(text: str, language: str, pause_s: int) -> str:
    """Wait TwiML for a queue: the message, then silence; Twilio asks the wait URL again when it ends, a loop."""
    response = VoiceResponse()
    response.say(text, language=language)
    response.pause(length=pause_s)
    return str(response)


def offer_choice(text: str, language: str, choice_url: str, timeout_s: int) -> str:
    """One key press offered with `text`; with no key after `timeout_s`, `choice_url` is asked without Digits."""
    response = VoiceResponse()
    gather = Gather(num_digits=1, action=choice_url, method="POST", timeout=timeout_s)
    gather.say(text, language=language)
    response.append(gather)
    # A <Gather> that gets no key falls through to the next verb: the choice URL decides what "nothing" means.
    response.redirect(choice_url, method="POST")
    return str(response)


def record_message(prompt: str, language: str, recorded_url: str, nothing_url: str, max_length_s: int) -> str:
    """Ask for a message and record it; `recorded_url` is asked with the recording, `nothing_url` if there is none.

    Twilio asks the <Record> action URL only when something was recorded; on silence it goes on to the next verb.
    """
    response = VoiceResponse()
    response.say(prompt, language=language)
    response.record(
        action=recorded_url, method="POST", max_length=max_length_s, finish_on_key="#", play_beep=True, timeout=5
    )
    response.redirect(nothing_url, method="POST")
    return str(response)
