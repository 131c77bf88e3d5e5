"""The Media Streams WebSocket loop: parse each frame, hand it to the call's session, never crash on bad input.

Caller audio is decoded from mu-law here and fed to the pipeline as PCM at Twilio's rate. A malformed message is
counted and the call goes on (the first is logged, the rest summed up when the stream ends). The ``start`` must
name a call that ``/twilio/voice`` admitted and carry its one-time stream secret (`StartCheck`); else the stream is
closed and no record is touched. A stream that sends no valid ``start`` in time is closed; a started call is bounded
by `telephony.call_limits` (silence, length, exchanges, key rate) and handed to a person when a bound is reached.
Media, marks, keys or a stop before ``start``, a
second ``start``, or a message for another stream mean the peer is not following the protocol: a clear log line
and a clean close. A stream that ends before the call was handed over and without Twilio's ``stop`` (the
connection dropped, or was closed for breaking the protocol) is recorded as the call's failure; Twilio then asks
``/twilio/after-stream``, which dials a person.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from starlette.websockets import WebSocket, WebSocketDisconnect

from telephony.call_limits import CallLimits, CallWatchdog, KeyRate, exchanges
from telephony.calls import CallInfo, CallRegistry
from telephony.drain import Drain
from telephony.session import CLOSE_NORMAL, StreamCounters, close_websocket
from telephony.stream_guard import StreamGuard
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

StartCheck = Callable[[Start], Awaitable[str | None]]
"""Whether a ``start`` may open its call: None when it may (the call must then be opened before awaiting anything),
else why not."""


async def run_media_stream(
    websocket: WebSocket,
    services: VoiceServices,
    registry: CallRegistry,
    counters: StreamCounters,
    check_start: StartCheck,
    limits: CallLimits,
    redirect: Redirect | None = None,
    drain: Drain | None = None,
) -> CallInfo | None:
    """Serve one Twilio media stream until it stops, the peer disconnects or the call is handed over.

    Args:
        check_start: whether a ``start`` may open its call (admitted, with its stream secret).
        limits: the deadlines and bounds of the stream and its call.
        redirect: in ``rest_redirect`` mode, gives a handed-over call its TwiML through Twilio's REST API.
        drain: holds the call's pipeline while it is live, to hand it over when a drain reaches its deadline.

    Returns:
        The call's record, finished; None when the stream ended before a valid ``start``.
    """
    await websocket.accept()
    counters.streams += 1
    guard = StreamGuard(websocket, counters, "media stream", CUT_SHORT)
    malformed, refuse = guard.malformed, guard.refuse
    session: TwilioSession | None = None
    watchdog = CallWatchdog(limits)
    watching: asyncio.Task[None] | None = None
    keys = KeyRate(limits.max_keys_per_s)
    start_deadline = time.monotonic() + limits.start_timeout_s

    try:
        while True:
            if session is None:
                try:
                    message = await asyncio.wait_for(websocket.receive(), max(0.0, start_deadline - time.monotonic()))
                except TimeoutError:
                    await refuse(f"no valid 'start' within {limits.start_timeout_s:g} s")
                    break
            else:
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
                refused = await check_start(event)
                if refused is not None:
                    await refuse(f"'start' refused: {refused}")
                    break
                # From here on the call is open in the registry in this same step (its ticket is used up).
                caller = event.start.custom_parameters.get(twiml.CALLER_PARAMETER)
                info = registry.open(event.start.call_sid, event.stream_sid, caller_number=caller)
                session = TwilioSession(
                    info,
                    services,
                    registry,
                    send=websocket.send_text,
                    close=lambda: close_websocket(websocket, CLOSE_NORMAL),
                    redirect=redirect,
                    recorded=watchdog.recorded,
                )
                guard.session = session
                log.info("call started", extra={"call": info.call_sid, "stream": info.stream_sid})
                if drain is not None:
                    drain.add(session.pipeline)
                watchdog.heard_audio()
                watching = asyncio.create_task(watchdog.watch(info, session.pipeline), name=f"limits-{info.call_sid}")
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
                    watchdog.heard_audio()
                    session.pipeline.feed_audio(mulaw_to_float32(event.media.payload), TWILIO_SAMPLE_RATE_HZ)
            elif isinstance(event, Dtmf):
                # Beyond the rate, or once the exchanges are used up (the watchdog is handing the call over), a key is
                # not answered: it would only wait in the pipeline's queue.
                if keys.allow() and exchanges(session.info) < limits.max_turns:
                    session.pipeline.feed_dtmf(event.dtmf.digit)
            elif isinstance(event, Mark):
                session.pipeline.marked(event.mark.name)
            elif isinstance(event, Stop):
                guard.ended_by_peer()
                break
    except WebSocketDisconnect:
        pass
    finally:
        if watching is not None:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
        if keys.dropped:
            log.warning("%d key presses beyond the rate ignored", keys.dropped, extra={"call": guard.call_id()})
        finished = await guard.finish(drain)
    return finished
