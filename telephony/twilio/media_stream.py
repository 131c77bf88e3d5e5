"""The Media Streams WebSocket loop: parse each frame, hand it to the call's session, never crash on bad input.

Caller audio is decoded from mu-law here and fed to the pipeline as PCM at Twilio's rate. A malformed message is
logged and counted and the call goes on. Media, marks, keys or a stop before ``start``, a
second ``start``, or a message for another stream mean the peer is not following the protocol: a clear log line
and a clean close. A stream that ends before the call was handed over and without Twilio's ``stop`` (the
connection dropped, or was closed for breaking the protocol) is recorded as the call's failure; Twilio then asks
``/twilio/after-stream``, which dials a person.
"""

from __future__ import annotations

import logging

from starlette.websockets import WebSocket, WebSocketDisconnect

from telephony.calls import CallInfo, CallRegistry
from telephony.drain import Drain
from telephony.session import CLOSE_NORMAL, CLOSE_PROTOCOL_ERROR, StreamCounters, close_websocket
from telephony.twilio import twiml
from telephony.twilio.framing import TWILIO_SAMPLE_RATE_HZ
from telephony.twilio.messages import (
    MULAW_ENCODING,
    Connected,
    Dtmf,
    Mark,
    Media,
    ProtocolError,
    Start,
    Stop,
    Unknown,
    parse_inbound,
)
from telephony.twilio.mulaw import mulaw_to_float32
from telephony.twilio.session import Redirect, TwilioSession
from voice.pipeline import VoiceServices

log = logging.getLogger(__name__)

# Twilio's media frames are ~250 characters; anything this large is not one of them and is not parsed.
MAX_MESSAGE_CHARS = 64 * 1024
CUT_SHORT = (
    "the media stream closed without a 'stop' (the connection was lost, or the caller hung up before Twilio said so)"
)
"""The failure recorded on a call whose stream closed before a handover and without Twilio's ``stop``: from here a
lost connection and a hang-up that Twilio did not announce look the same."""


async def run_media_stream(
    websocket: WebSocket,
    services: VoiceServices,
    registry: CallRegistry,
    counters: StreamCounters,
    redirect: Redirect | None = None,
    drain: Drain | None = None,
) -> CallInfo | None:
    """Serve one Twilio media stream until it stops, the peer disconnects or the call is handed over.

    Args:
        redirect: in ``rest_redirect`` mode, gives a handed-over call its TwiML through Twilio's REST API.
        drain: holds the call's pipeline while it is live, to hand it over when a drain reaches its deadline.

    Returns:
        The call's record, finished; None when the stream ended before a valid ``start``.
    """
    await websocket.accept()
    counters.streams += 1
    session: TwilioSession | None = None
    # Why the stream ended early, if it did: the call's failure unless it was handed over or stopped by Twilio.
    cut_short: str | None = CUT_SHORT

    def malformed(why: str) -> None:
        counters.protocol_errors += 1
        if session is not None:
            session.info.protocol_errors += 1
        call = session.info.call_sid if session else "-"
        log.warning("malformed media-stream message ignored: %s", why, extra={"call": call})

    async def refuse(why: str) -> None:
        nonlocal cut_short
        cut_short = f"media stream closed for breaking the protocol: {why}"
        counters.protocol_closes += 1
        call = session.info.call_sid if session else "-"
        log.warning("closing media stream: %s", why, extra={"call": call})
        await close_websocket(websocket, CLOSE_PROTOCOL_ERROR)

    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text is None:
                malformed("binary frame (Twilio sends JSON text)")
                continue
            if len(text) > MAX_MESSAGE_CHARS:
                malformed(f"message of {len(text)} characters")
                continue
            try:
                event = parse_inbound(text)
            except ProtocolError as error:
                malformed(str(error))
                continue

            if isinstance(event, Connected | Unknown):
                continue
            if isinstance(event, Start):
                if session is not None:
                    await refuse(f"second 'start' (stream {event.stream_sid})")
                    break
                media_format = event.start.media_format
                if media_format.encoding != MULAW_ENCODING or media_format.sample_rate != TWILIO_SAMPLE_RATE_HZ:
                    await refuse(f"unsupported media format {media_format.encoding} at {media_format.sample_rate} Hz")
                    break
                caller = event.start.custom_parameters.get(twiml.CALLER_PARAMETER)
                info = registry.open(event.start.call_sid, event.stream_sid, caller_number=caller)
                session = TwilioSession(
                    info,
                    services,
                    registry,
                    send=websocket.send_text,
                    close=lambda: close_websocket(websocket, CLOSE_NORMAL),
                    redirect=redirect,
                )
                log.info("call started", extra={"call": info.call_sid, "stream": info.stream_sid})
                if drain is not None:
                    drain.add(session.pipeline)
                await session.pipeline.start()
                continue
            if session is None:
                await refuse(f"{event.event!r} before 'start'")
                break
            if event.stream_sid != session.info.stream_sid:
                await refuse(f"{event.event!r} for another stream ({event.stream_sid})")
                break
            if isinstance(event, Media):
                if event.media.track in ("inbound", "inbound_track"):
                    session.pipeline.feed_audio(mulaw_to_float32(event.media.payload), TWILIO_SAMPLE_RATE_HZ)
            elif isinstance(event, Dtmf):
                session.pipeline.feed_dtmf(event.dtmf.digit)
            elif isinstance(event, Mark):
                session.pipeline.marked(event.mark.name)
            elif isinstance(event, Stop):
                cut_short = None
                break
    except WebSocketDisconnect:
        pass
    finally:
        if session is not None:
            if drain is not None:
                drain.discard(session.pipeline)
            await session.end(cut_short)
        await close_websocket(websocket, CLOSE_NORMAL)
    return session.info if session is not None else None
