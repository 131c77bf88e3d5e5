"""The call API: live and finished calls as JSON, and a live stream of changes for the agent desk.

    GET /api/calls              every call this process knows: state, times, current intent, outcome
    GET /api/calls/{call_sid}   one call in full: each turn with the caller's words and the decision with its
                                reasons, latencies, the handoff, protocol errors and failure
    GET /api/events             Server-Sent Events: one ``call`` event (a call's summary) per change, and a
                                comment heartbeat every ~15 s so proxies keep the connection open

Every route needs the agent role (`telephony.auth`): a bearer token or the desk's session cookie. Only masked data
leaves here: the caller's number as ``*********06``, and every run of four or more digits in what was said,
replied or reasoned replaced by ``[number]``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

import anyio
import uvicorn
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response, status
from pydantic import BaseModel

from telephony.auth import Role, require_role
from telephony.calls import MAX_FINISHED_CALLS, CallInfo, CallRegistry, CallState
from voice.events import Decision, Dtmf, Transcript
from voice.handoff import Handoff, mask_caller_number, mask_digits
from voice.pipeline import TurnRecord

if TYPE_CHECKING:
    import asyncio
    import socket

    from starlette.types import Receive, Scope, Send

log = logging.getLogger(__name__)

HEARTBEAT_S = 15.0
"""Idle time after which an event stream sends a comment, so that proxies and browsers keep it open."""
MAX_STREAM_AGE_S = 300.0
"""An event stream ends after this long and the browser reconnects: the token or session is checked again, so a
logged-out or expired desk session stops receiving within this time."""
RECONNECT_MS = 3000
"""How long a browser waits before it reconnects a dropped event stream (the SSE ``retry:`` field)."""
_MAX_SID_CHARS = 64

# Call data is personal: no cache (browser or proxy) may keep a copy.
_NO_STORE = {"Cache-Control": "no-store"}


# --- what the API returns ---------------------------------------------------------------------------------------


class Outcome(BaseModel):
    """How the automated part of the call ended."""

    action: str
    """``transfer`` or ``end``."""
    department: str | None
    """For a transfer: who takes the call."""


class CallSummary(BaseModel):
    """One line of the call list, and the payload of each live event."""

    call_sid: str
    state: CallState
    started_at: str
    """ISO 8601, UTC."""
    ended_at: str | None
    """ISO 8601, UTC; None while the call is live."""
    duration_s: float
    """So far for a live call."""
    intent: str | None
    """The most recent intent the engine recognised, if any."""
    outcome: Outcome | None
    has_handoff: bool
    """A transfer was decided and its handoff is in the call's record."""


class CallerTurn(BaseModel):
    """What the caller said (masked) or pressed."""

    kind: Literal["speech", "dtmf"]
    text: str | None = None
    """Recognised words, long digit runs masked (speech only)."""
    confidence: float | None = None
    """Recogniser confidence, 0..1 (speech only)."""
    start_ms: int | None = None
    """From the start of the call (speech only)."""
    end_ms: int | None = None
    digit: str | None = None
    """The key (dtmf only)."""


class DecisionView(BaseModel):
    """The engine's decision for one turn, with the evidence behind it."""

    intent: str | None
    confidence: float
    action: str
    reply: str
    rule: str
    reasons: list[str]
    department: str | None
    transfer_reason: str | None


class TurnView(BaseModel):
    """One exchange: the caller's turn (None for the greeting) and the agent's answer."""

    caller: CallerTurn | None
    decision: DecisionView
    processing_ms: float | None
    """End of the caller's turn to the first agent audio sent (ASR + engine + TTS)."""
    heard: bool
    """The whole reply was played to the caller."""
    interrupted: bool
    """The caller spoke over the reply and it was cleared."""


class TranscriptLineView(BaseModel):
    speaker: str
    text: str


class HandoffView(BaseModel):
    """What the person who takes a transferred call is told."""

    caller: str
    """Masked number."""
    intent: str | None
    department: str
    reason: str
    facts: list[str]
    transcript: list[TranscriptLineView]
    summary: str
    """The whisper spoken to the person before the caller is connected."""


class CallRecord(CallSummary):
    """One call in full."""

    caller: str
    """The caller's number, all but the last two digits masked, or "unknown"."""
    turns: list[TurnView]
    handoff: HandoffView | None
    protocol_errors: int
    failure: str | None


# --- building the views ---------------------------------------------------------------------------------------


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


def _current_intent(records: Sequence[TurnRecord]) -> str | None:
    # The latest recognised intent: a turn that was not understood does not make the desk forget the topic.
    for record in reversed(records):
        if record.decision.intent is not None:
            return record.decision.intent
    return None


def summarise(info: CallInfo, now: float | None = None) -> CallSummary:
    """The call's line in the list (and in the event stream).

    Args:
        info: the call.
        now: the time (``time.time()``) for a live call's duration; default: now.
    """
    end = info.ended_at if info.ended_at is not None else (time.time() if now is None else now)
    outcome = info.outcome
    return CallSummary(
        call_sid=info.call_sid,
        state=info.state,
        started_at=_iso(info.started_at) or "",
        ended_at=_iso(info.ended_at),
        duration_s=round(max(0.0, end - info.started_at), 1),
        intent=_current_intent(info.records),
        outcome=Outcome(action=outcome.action.value, department=outcome.department) if outcome else None,
        has_handoff=info.handoff is not None,
    )


def _caller_turn(turn: Transcript | Dtmf | None) -> CallerTurn | None:
    if isinstance(turn, Transcript):
        return CallerTurn(
            kind="speech",
            text=mask_digits(turn.text),
            confidence=round(turn.confidence, 4),
            start_ms=turn.start_ms,
            end_ms=turn.end_ms,
        )
    if isinstance(turn, Dtmf):
        return CallerTurn(kind="dtmf", digit=turn.digit)
    return None


def _decision(decision: Decision) -> DecisionView:
    # Replies and reasons can quote the caller ("matched 'my card is 4111 ...'"): masked like the transcript.
    return DecisionView(
        intent=decision.intent,
        confidence=round(decision.confidence, 4),
        action=decision.action.value,
        reply=mask_digits(decision.reply),
        rule=decision.rule,
        reasons=[mask_digits(reason) for reason in decision.reasons],
        department=decision.department,
        transfer_reason=decision.transfer_reason,
    )


def _handoff(handoff: Handoff) -> HandoffView:
    # Made masked by voice.handoff.build_handoff; shown as it is.
    return HandoffView(
        caller=handoff.caller,
        intent=handoff.intent,
        department=handoff.department,
        reason=handoff.reason,
        facts=list(handoff.facts),
        transcript=[TranscriptLineView(speaker=line.speaker, text=line.text) for line in handoff.transcript],
        summary=handoff.summary(),
    )


def call_record(info: CallInfo, now: float | None = None) -> CallRecord:
    """Everything the API shows about one call, masked."""
    summary = summarise(info, now)
    return CallRecord(
        **summary.model_dump(),
        caller=info.handoff.caller if info.handoff is not None else mask_caller_number(info.caller_number),
        turns=[
            TurnView(
                caller=_caller_turn(record.caller),
                decision=_decision(record.decision),
                processing_ms=None if record.processing_ms is None else round(record.processing_ms, 1),
                heard=record.heard,
                interrupted=record.interrupted,
            )
            for record in info.records
        ],
        handoff=_handoff(info.handoff) if info.handoff is not None else None,
        protocol_errors=info.protocol_errors,
        failure=mask_digits(info.failure) if info.failure else None,
    )


# --- the live event stream --------------------------------------------------------------------------------------


class EventStreams:
    """The open event streams of one app; `close` ends them all.

    uvicorn waits for every open response to finish before it shuts an app down, and an event stream never
    finishes by itself: `StreamClosingServer` calls `close` first. Used from the server's event loop only.
    """

    def __init__(self, heartbeat_s: float = HEARTBEAT_S, max_age_s: float = MAX_STREAM_AGE_S) -> None:
        self.heartbeat_s = heartbeat_s
        self.max_age_s = max_age_s
        self.closed = False
        self._wakers: set[anyio.Event] = set()

    def __len__(self) -> int:
        """Streams open now."""
        return len(self._wakers)

    def register(self) -> anyio.Event:
        """A new stream: the returned event is set when the streams are closed."""
        waker = anyio.Event()
        self._wakers.add(waker)
        return waker

    def release(self, waker: anyio.Event) -> None:
        self._wakers.discard(waker)

    def close(self) -> None:
        """End every open stream (and refuse new ones): the server is shutting down."""
        self.closed = True
        for waker in self._wakers:
            waker.set()


def event_streams_of(app: FastAPI) -> EventStreams:
    """The app's `EventStreams` (``app.state.event_streams``), made on first use."""
    streams = getattr(app.state, "event_streams", None)
    if streams is None:
        streams = app.state.event_streams = EventStreams()
    return streams


def format_event(summary: CallSummary) -> bytes:
    """One SSE ``call`` event; the JSON is on one line, as a ``data:`` field must be."""
    return b"event: call\ndata: " + summary.model_dump_json().encode("utf-8") + b"\n\n"


class EventStreamResponse(Response):
    """``text/event-stream`` of call changes, until the client goes away, the streams are closed or it is too old.

    The registry subscription is made before the response starts, so a client that loads the call list once the
    stream is open misses no change in between. Changes that pile up while the client is slow are coalesced per
    call (the registry drops the oldest beyond its backlog); each event carries the call's state at sending time.
    """

    media_type = "text/event-stream"

    def __init__(self, registry: CallRegistry, streams: EventStreams) -> None:
        self.status_code = status.HTTP_200_OK
        self.background = None
        # No body attribute: init_headers then adds no Content-Length, and the response is sent chunked.
        # X-Accel-Buffering: a buffering proxy (nginx) would otherwise hold events back.
        self.init_headers({**_NO_STORE, "X-Accel-Buffering": "no"})
        self._registry = registry
        self._streams = streams
        self._disconnected = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._streams.closed:
            await Response("the server is shutting down", status.HTTP_503_SERVICE_UNAVAILABLE)(scope, receive, send)
            return
        queue = self._registry.subscribe()
        waker = self._streams.register()
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            await self._body(send, f"retry: {RECONNECT_MS}\n\n".encode())
            with anyio.move_on_after(self._streams.max_age_s):
                async with anyio.create_task_group() as group:
                    group.start_soon(self._until_disconnected, receive, group.cancel_scope)
                    group.start_soon(self._until_closed, waker, group.cancel_scope)
                    await self._pump(send, queue)
                    group.cancel_scope.cancel()
            if not self._disconnected:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the client went away while we were sending (ASGI 2.4 servers say so this way)
        finally:
            self._registry.unsubscribe(queue)
            self._streams.release(waker)

    @staticmethod
    async def _body(send: Send, chunk: bytes) -> None:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})

    async def _until_disconnected(self, receive: Receive, scope: anyio.CancelScope) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self._disconnected = True
        scope.cancel()

    @staticmethod
    async def _until_closed(waker: anyio.Event, scope: anyio.CancelScope) -> None:
        await waker.wait()
        scope.cancel()

    async def _pump(self, send: Send, queue: asyncio.Queue[str]) -> None:
        while True:
            first: str | None = None
            with anyio.move_on_after(self._streams.heartbeat_s):
                first = await queue.get()
            if first is None:
                await self._body(send, b": heartbeat\n\n")
                continue
            changed = [first]
            while not queue.empty():
                changed.append(queue.get_nowait())
            for call_sid in dict.fromkeys(changed):
                info = self._registry.get(call_sid)
                if info is not None:  # None: dropped from the registry since (an old finished call)
                    await self._body(send, format_event(summarise(info)))


class StreamClosingServer(uvicorn.Server):
    """uvicorn's server, which ends the app's event streams first when it shuts down.

    Without this a server with a desk open would wait forever for the stream to finish (or until the second
    Ctrl+C). The app is found through the config (``config.app``), built by `telephony.app.create_app`.
    """

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        app = self.config.app
        if isinstance(app, FastAPI):
            streams = event_streams_of(app)
            if len(streams):
                log.info("closing %d desk event streams", len(streams))
            streams.close()
        await super().shutdown(sockets)


# --- routes ---------------------------------------------------------------------------------------------------


def _no_store(response: Response) -> None:
    response.headers.update(_NO_STORE)


router = APIRouter(
    prefix="/api",
    tags=["calls"],
    dependencies=[Depends(require_role(Role.AGENT)), Depends(_no_store)],
    responses={401: {"description": "no valid token or desk session (or no token configured)"}},
)


def _registry(request: Request) -> CallRegistry:
    return request.app.state.voice.registry


@router.get("/calls", response_model=list[CallSummary])
async def list_calls(request: Request) -> list[CallSummary]:
    """Every call this process knows, live ones first, then the most recently started."""
    now = time.time()
    calls = sorted(_registry(request).all(), key=lambda info: (info.state is not CallState.LIVE, -info.started_at))
    return [summarise(info, now) for info in calls]


@router.get("/calls/{call_sid}", response_model=CallRecord, responses={404: {"description": "no such call"}})
async def get_call(call_sid: str, request: Request) -> CallRecord:
    """One call in full: turns, decisions with reasons, latencies, handoff, protocol errors, failure."""
    info = _registry(request).get(call_sid)
    if info is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail=f"no call {call_sid[:_MAX_SID_CHARS]!r}: unknown here, or older than the last "
            f"{MAX_FINISHED_CALLS} finished calls",
        )
    return call_record(info)


@router.get(
    "/events",
    responses={200: {"content": {"text/event-stream": {}}, "description": "one `call` event per change"}},
)
async def call_events(request: Request) -> Response:
    """Server-Sent Events: the summary of each call that changes (``event: call``), as it changes."""
    return EventStreamResponse(_registry(request), event_streams_of(request.app))
