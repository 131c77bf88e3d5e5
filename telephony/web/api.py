"""The call API: live and stored calls as JSON, a live stream of changes for the agent desk, and data care.

    GET  /api/calls                    live calls and the most recent stored ones: state, times, intent, outcome
    GET  /api/calls/{call_sid}         one call in full: each turn with the caller's words and the decision with its
                                       reasons, latencies, the handoff, protocol errors and failure
    GET  /api/events                   Server-Sent Events: one ``call`` event (a call's summary) per change, and a
                                       comment heartbeat every ~15 s so proxies keep the connection open
    GET  /api/calls/{call_sid}/export  admin: the whole stored record for an auditor, with its retention
    DELETE /api/calls/{call_sid}       admin: delete one call's record
    POST /api/purge                    admin: delete the records older than N days (default: the retention period)
    POST /api/callers/forget           admin: delete every record of one caller (number in the body, never the URL)
                                       and their call-back request
    POST /api/catalogue/reload         admin: check prompts/ as lint-prompts does and use it for the next call
                                       (`telephony.catalogue_reload`); 422 with the problems, the old one stays

Reading needs the agent role (`telephony.web.auth`): a bearer token or the desk's session cookie; deleting and exporting
need the admin role, and each is in the audit trail with who did it (`telephony.web.audit`). Only masked data leaves
here (`telephony.call_record`); the call-back queue is in `telephony.web.callbacks`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import TYPE_CHECKING, Annotated, Any

import anyio
import uvicorn
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from telephony import catalogue_reload
from telephony.call_record import CallRecord, CallSummary, summarise
from telephony.calls import CallRegistry, CallState
from telephony.state import Running, RunningDep, StateDep
from telephony.storage.audit import AuditAction, AuditOutcome
from telephony.storage.export import export_document
from telephony.storage.retention import purge_older_than
from telephony.web.audit import record_audit
from telephony.web.auth import Principal, Role, require_principal, require_role

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


def _not_found(call_sid: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no call {call_sid[:_MAX_SID_CHARS]!r}")


LIST_LIMIT = 500
"""Stored calls listed at most (the most recently started)."""


@router.get("/calls", response_model=list[CallSummary])
async def list_calls(state: StateDep, running: RunningDep) -> list[CallSummary]:
    """Live calls (from memory) first, then the most recently started stored ones."""
    now = time.time()
    live = [summarise(info, now) for info in state.registry.all() if info.state is CallState.LIVE]
    await running.writer.flush()  # calls that just ended are listed as they ended
    stored = await anyio.to_thread.run_sync(state.store.summaries, LIST_LIMIT)
    shown = {summary.call_sid for summary in live}
    live.sort(key=lambda call: call.started_at, reverse=True)
    return live + [summary for summary in stored if summary.call_sid not in shown]


async def _record(running: Running, call_sid: str) -> CallRecord:
    record = await running.records.get(call_sid)
    if record is None:
        raise _not_found(call_sid)
    return record


@router.get("/calls/{call_sid}", response_model=CallRecord, responses={404: {"description": "no such call"}})
async def get_call(call_sid: str, running: RunningDep) -> CallRecord:
    """One call in full: turns, decisions with reasons, latencies, handoff, protocol errors, failure."""
    return await _record(running, call_sid)


# --- data care (admin) ------------------------------------------------------------------------------------------

_admin = [Depends(require_role(Role.ADMIN))]


def _admin_doing(action: AuditAction) -> Any:
    """The admin who does `action`, for the audit trail (`telephony.web.audit`); an agent's attempt is audited too."""

    async def refused(request: Request, principal: Principal) -> None:
        target = request.path_params.get("call_sid")
        await record_audit(request, principal.actor, action, target, AuditOutcome.REFUSED)

    return Depends(require_principal(Role.ADMIN, on_forbidden=refused))


ADMIN_ONLY = {403: {"description": "needs the admin role (VOICE_AGENT_ADMIN_TOKEN)"}}
"""The OpenAPI responses entry that marks a route as the admin role's."""


@router.get("/calls/{call_sid}/export", responses={404: {"description": "no such call"}, **ADMIN_ONLY})
async def export_call(
    call_sid: str,
    request: Request,
    who: Annotated[Principal, _admin_doing(AuditAction.EXPORT)],  # first: refused before anything else is asked
    state: StateDep,
    running: RunningDep,
) -> dict[str, Any]:
    """The whole stored record of one call for an auditor, with its retention (``voice-agent export`` does the same)."""
    record = await _record(running, call_sid)
    await record_audit(request, who.actor, AuditAction.EXPORT, call_sid)
    log.info("call record exported", extra={"call": call_sid[:_MAX_SID_CHARS]})
    return export_document(record, state.settings.retention_days)


class Deleted(BaseModel):
    deleted: int
    """How many call records were deleted."""


@router.delete("/calls/{call_sid}", response_model=Deleted, responses=ADMIN_ONLY)
async def delete_call(
    call_sid: str, request: Request, state: StateDep, who: Annotated[Principal, _admin_doing(AuditAction.DELETE_CALL)]
) -> Deleted:
    """Delete one call's record (a live call cannot be deleted until it ends)."""
    info = state.registry.get(call_sid)
    if info is not None and info.state is CallState.LIVE:
        raise HTTPException(status.HTTP_409_CONFLICT, detail="the call is still live; delete it once it has ended")
    state.registry.forget(call_sid)
    deleted = await anyio.to_thread.run_sync(state.store.delete_call, call_sid)
    if not deleted and info is None:
        await record_audit(request, who.actor, AuditAction.DELETE_CALL, call_sid, AuditOutcome.NOT_FOUND)
        raise _not_found(call_sid)
    await record_audit(request, who.actor, AuditAction.DELETE_CALL, call_sid)
    log.info("call record deleted", extra={"call": call_sid[:_MAX_SID_CHARS]})
    return Deleted(deleted=1)


class PurgeRequest(BaseModel):
    # A finite number of days: Infinity or NaN would reach the date arithmetic (and a 500) otherwise.
    older_than_days: float | None = Field(default=None, gt=0, le=36500, allow_inf_nan=False)
    """Delete what ended more than this many days ago; default: the configured retention period."""


@router.post("/purge", response_model=Deleted, responses=ADMIN_ONLY)
async def purge(
    request: Request,
    state: StateDep,
    who: Annotated[Principal, _admin_doing(AuditAction.PURGE)],
    body: PurgeRequest | None = None,
) -> Deleted:
    """Delete the records older than the retention period (or `older_than_days`), as the daily purge does."""
    days = (body.older_than_days if body else None) or state.settings.retention_days
    deleted = await anyio.to_thread.run_sync(purge_older_than, state.store, days)
    detail = {"deleted_calls": deleted, "older_than_days": days}
    await record_audit(request, who.actor, AuditAction.PURGE, detail=detail)
    return Deleted(deleted=deleted)


class ForgetCaller(BaseModel):
    number: str = Field(min_length=3, max_length=32)
    """The caller's number, best in E.164 (+31612345678); never put in the URL, where access logs would keep it."""
    region: str | None = Field(default=None, min_length=2, max_length=2)
    """Two-letter country for a number written without +country code (e.g. NL for 0612345678)."""


@router.post("/callers/forget", response_model=Deleted, responses=ADMIN_ONLY)
async def forget_caller(
    body: ForgetCaller,
    request: Request,
    who: Annotated[Principal, _admin_doing(AuditAction.FORGET_CALLER)],
    state: StateDep,
    running: RunningDep,
) -> Deleted:
    """Delete every stored call and call-back request of one caller, found by the keyed hash of their number."""
    key = running.pseudonyms.of(body.number, body.region)
    if key is None:
        raise HTTPException(422, detail="not a phone number")
    for info in state.registry.all():
        if info.state is not CallState.LIVE and running.pseudonyms.of(info.caller_number) == key:
            state.registry.forget(info.call_sid)
    deleted = await anyio.to_thread.run_sync(state.store.delete_caller, key)
    # Neither the number nor its pseudonym: the audit trail must not keep a link to a forgotten caller.
    await record_audit(request, who.actor, AuditAction.FORGET_CALLER, detail={"deleted_calls": deleted})
    log.info("caller's records deleted", extra={"deleted_calls": deleted})
    return Deleted(deleted=deleted)


class CatalogueReloaded(BaseModel):
    language: str
    intents: int
    """Intents in the catalogue now in use."""
    fixed_replies: int
    """Fixed replies whose audio is ready."""


class CatalogueProblems(BaseModel):
    detail: str
    problems: list[str]
    """What ``voice-agent lint-prompts`` would say: the loader's message or each tone problem."""


@router.post(
    "/catalogue/reload",
    dependencies=_admin,
    response_model=CatalogueReloaded,
    responses={
        422: {"model": CatalogueProblems, "description": "the catalogue failed a check; the one in use stays"},
        503: {"description": "the models are not loaded (starting or stopping)"},
        **ADMIN_ONLY,
    },
)
async def reload_catalogue(request: Request) -> Any:
    """Check the catalogue on disk as ``voice-agent lint-prompts`` does and, if it passes, use it for the next call.

    Returns once the new fixed replies are synthesised; calls in progress keep their catalogue.
    """
    try:
        reloaded = await catalogue_reload.reload_catalogue(request.app)
    except catalogue_reload.CatalogueRefusedError as refused:
        body = CatalogueProblems(detail="catalogue refused; the one in use stays", problems=refused.problems)
        return JSONResponse(body.model_dump(), status_code=422, headers=_NO_STORE)
    except catalogue_reload.NotReadyError as error:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(error)) from None
    return CatalogueReloaded(**dataclasses.asdict(reloaded))


@router.get(
    "/events",
    responses={200: {"content": {"text/event-stream": {}}, "description": "one `call` event per change"}},
)
async def call_events(request: Request, state: StateDep) -> Response:
    """Server-Sent Events: the summary of each call that changes (``event: call``), as it changes."""
    return EventStreamResponse(state.registry, event_streams_of(request.app))
