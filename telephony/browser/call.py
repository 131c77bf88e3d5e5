"""The browser call's WebSocket loop: admit the call, feed its audio and keys to the pipeline, never crash on bad input.

The same path as a phone call from ``start`` on: admission control (`VOICE_AGENT_MAX_CALLS`), the call registry (so
the desk shows it live), the call records and their redaction. A malformed message is logged and counted and the
call goes on; a message out of order closes the socket (the protocol is in `telephony.browser.protocol`). A socket
that closes before the call was handed over and without the page's ``hangup`` is recorded as the call's failure.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable

from starlette.websockets import WebSocket, WebSocketDisconnect

from telephony.admission import turn_away
from telephony.browser import protocol
from telephony.browser.session import BrowserSession
from telephony.calls import CallInfo
from telephony.drain import DRAIN_REASON
from telephony.session import CLOSE_NORMAL, close_websocket, websocket_sender
from telephony.state import AppState
from telephony.stream_guard import StreamGuard
from voice.pipeline import TurnRecord, VoiceServices

log = logging.getLogger(__name__)

CALL_ID_PREFIX = "BR"
CUT_SHORT = "the browser call closed without a 'hangup' (the connection was lost, or the page was closed)"
"""The failure recorded on a browser call whose socket closed before a handover and without the page's hang-up."""


def new_call_id() -> str:
    """A call id for a browser call: ``BR`` and 32 hex digits, the shape of Twilio's call SIDs (``CA...``)."""
    return CALL_ID_PREFIX + secrets.token_hex(16)


class RealTimeBudget:
    """Caller audio may not run ahead of the wall clock by more than a slack: the pipeline runs the VAD on the event
    loop, so a page (or anything else holding a desk session) must not make it do hours of work in seconds."""

    def __init__(
        self,
        sample_rate_hz: int,
        slack_s: float = protocol.AUDIO_SLACK_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate = sample_rate_hz
        self._slack_s = slack_s
        self._clock = clock
        self._started = clock()
        self._samples = 0

    def take(self, samples: int) -> bool:
        """Count `samples` more and return True, or return False (and count nothing) when they run too far ahead."""
        allowed = (self._clock() - self._started + self._slack_s) * self._rate
        if self._samples + samples > allowed:
            return False
        self._samples += samples
        return True


async def run_browser_call(websocket: WebSocket, services: VoiceServices, state: AppState) -> CallInfo | None:
    """Serve one browser call (the socket is authenticated) until the page hangs up or goes, or the call is handed
    over.

    Returns:
        The call's record, finished; None when no call was started (no valid ``start``, or turned away).
    """
    await websocket.accept()
    counters = state.counters
    counters.streams += 1
    guard = StreamGuard(websocket, counters, "browser call", CUT_SHORT)
    malformed, call_id = guard.malformed, guard.call_id
    session: BrowserSession | None = None
    encoding = protocol.PCM_S16LE
    sample_rate_hz = protocol.OUTPUT_SAMPLE_RATE_HZ
    budget: RealTimeBudget | None = None
    ahead_of_time = 0
    start_deadline = asyncio.get_running_loop().time() + protocol.START_TIMEOUT_S

    async def refuse(why: str) -> None:
        await guard.refuse(why, tell=lambda reason: protocol.error(f"protocol error: {reason}"))

    try:
        while True:
            if session is None:
                try:
                    async with asyncio.timeout_at(start_deadline):
                        message = await websocket.receive()
                except TimeoutError:
                    await refuse(f"no 'start' within {protocol.START_TIMEOUT_S:g} s")
                    break
            else:
                message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break

            data = message.get("bytes")
            if data is not None:
                if session is None:
                    await refuse("audio before 'start'")
                    break
                try:
                    pcm = protocol.decode_audio(data, encoding)
                except protocol.ProtocolError as error:
                    malformed(str(error))
                    continue
                if budget is not None and not budget.take(pcm.size):
                    ahead_of_time += 1
                    counters.protocol_errors += 1
                    session.info.protocol_errors += 1
                    if ahead_of_time == 1:  # once per call: a flood would otherwise flood the log too
                        log.warning("caller audio ahead of real time dropped", extra={"call": call_id()})
                    continue
                session.pipeline.feed_audio(pcm, sample_rate_hz)
                continue

            try:
                event = protocol.parse_text(message.get("text") or "")
            except protocol.ProtocolError as error:
                malformed(str(error))
                continue
            if isinstance(event, protocol.Hangup):
                guard.ended_by_peer()
                log.info("browser call hung up", extra={"call": call_id()})
                break
            if isinstance(event, protocol.Start):
                if session is not None:
                    await refuse("second 'start'")
                    break
                encoding, sample_rate_hz = event.encoding, event.sample_rate
                session = await _open_call(websocket, services, state)
                if session is None:  # turned away: the page was told, the call recorded
                    guard.ended_by_peer()
                    break
                guard.session = session
                budget = RealTimeBudget(sample_rate_hz)
                # A drain that reaches its deadline hands this call to a person too.
                state.drain.add(session.pipeline)
                await session.send(protocol.ready(session.info.call_sid))
                await session.pipeline.start()
                continue
            if session is None:
                await refuse(f"{event.type!r} before 'start'")
                break
            if isinstance(event, protocol.Marked):
                session.pipeline.marked(event.name)
            elif isinstance(event, protocol.Key):
                session.pipeline.feed_dtmf(event.digit)
    except WebSocketDisconnect:
        pass
    finally:
        finished = await guard.finish(state.drain)
    return finished


async def _open_call(websocket: WebSocket, services: VoiceServices, state: AppState) -> BrowserSession | None:
    """Admit and open the call (not started yet); None when admission turned it away: the page is told why, and the
    call is recorded as a transfer, as a phone call over the limit is."""
    call_id = new_call_id()
    # During a drain a new call goes to a person at once, as a phone call does (`telephony.drain`).
    draining = DRAIN_REASON if state.drain.draining else None
    if draining is not None or not state.admission.admit(call_id):
        decision = turn_away(state.registry, state.catalogue, call_id, None, state.admission.max_calls, draining)
        state.metrics.turned_away(decision)
        await websocket.send_text(protocol.decision(1, TurnRecord(caller=None, decision=decision)))
        await websocket.send_text(protocol.handover(decision))
        return None
    info = state.registry.open(call_id, stream_sid="")
    session = BrowserSession(
        info,
        services,
        state.registry,
        send=websocket_sender(websocket),
        close=lambda: close_websocket(websocket, CLOSE_NORMAL),
    )
    log.info("browser call started", extra={"call": call_id})
    return session
