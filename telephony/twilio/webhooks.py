"""Twilio's webhooks and the media-stream WebSocket, as one router.

``POST /twilio/voice`` answers an incoming call with a bidirectional stream (or, beyond VOICE_AGENT_MAX_CALLS, a
person) and gives the stream a one-time secret (`telephony.admission`); ``/twilio/media`` serves the stream;
``/twilio/after-stream`` and the transfer's webhooks answer with the TwiML that `telephony.twilio.transfer` builds.
Every webhook and every media stream's upgrade must carry Twilio's X-Twilio-Signature
(`telephony.twilio.signature`), unless a development set-up explicitly allows unsigned requests. A signed webhook
that changes a record acts once: a repeat (Twilio's retry, or a replay) is answered but changes nothing.

URLs in TwiML come from the configured public URL, else from the request's own URL only when Twilio's signature
covers it; an unsigned request's Host header is never trusted (the server's listening address is used instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, WebSocket
from fastapi.responses import Response
from starlette.requests import HTTPConnection

from telephony.admission import STREAM_SECRET_PARAMETER, turn_away
from telephony.call_limits import CallLimits
from telephony.call_record import call_record
from telephony.calls import CallInfo
from telephony.drain import DRAIN_REASON
from telephony.session import CLOSE_PROTOCOL_ERROR
from telephony.settings import Settings
from telephony.state import AppState, Running, RunningDep, RunningOrNoneDep, StateDep
from telephony.transfer_timeline import TransferEvent, TransferState
from telephony.twilio import twiml
from telephony.twilio.callback_requests import take_callback_request
from telephony.twilio.media_stream import StartCheck, run_media_stream
from telephony.twilio.messages import Start
from telephony.twilio.sids import is_call_sid, is_stream_sid

log = logging.getLogger(__name__)

TWIML_MEDIA_TYPE = "application/xml"
HANDOVER_WRITE_TIMEOUT_S = 2.0
"""Longest wait for the call record's write before a handed-over stream is closed."""
TRY_AGAIN_LATER = 1013
"""WebSocket close code for a media stream that arrives while the models are still loading, or during a drain."""


# --- public URLs ------------------------------------------------------------------------------------------------


def public_base(connection: HTTPConnection, settings: Settings, unsigned: bool) -> str:
    """The HTTP base URL for TwiML: the public URL; else the request's own when its signature covers it, or the
    address the server listens on when nothing was signed (a forged Host header must never reach TwiML)."""
    if settings.public_url:
        return settings.public_url
    if unsigned:
        host, port = connection.scope.get("server") or ("127.0.0.1", 80)
        return f"http://{host}:{port}"
    url = connection.base_url
    if connection.scope["type"] == "websocket":
        url = url.replace(scheme="https" if url.scheme == "wss" else "http")
    return str(url).rstrip("/")


def _base(connection: HTTPConnection, state: AppState) -> str:
    return public_base(connection, state.settings, state.signatures.unsigned)


# --- the signature check ------------------------------------------------------------------------------------------


async def signed_form(request: Request, state: StateDep) -> dict[str, str]:
    """A Twilio webhook's form parameters (a FastAPI dependency); 403 when the signature check fails."""
    form = {key: str(value) for key, value in (await request.form()).items()}
    if not state.signatures.valid(request, form):
        log.warning("webhook with a missing or invalid X-Twilio-Signature refused", extra={"path": request.url.path})
        raise HTTPException(status_code=403, detail="invalid signature")
    call_sid = form.get("CallSid")
    if call_sid is not None and not is_call_sid(call_sid):
        raise HTTPException(status_code=400, detail="CallSid is not a call SID (CA and 32 hex digits)")
    return form


SignedForm = Annotated[dict[str, str], Depends(signed_form)]


def _first_time(request: Request, state: AppState) -> bool:
    """Whether this signed webhook is new (a repeat is answered as before but changes no record)."""
    if state.recent_requests.repeated(request):
        log.info("repeated webhook: no change", extra={"path": request.url.path})
        return False
    return True


async def _recorded(state: AppState, call_sid: str) -> bool:
    """Whether the database keeps a record of the call (an unreachable database counts as no: the caller is still
    answered, and the stream's ticket still guards the record)."""
    try:
        return await asyncio.to_thread(state.store.exists, call_sid)
    except Exception:
        log.exception("could not look the call up in the database", extra={"call": call_sid})
        return False


def _twiml(body: str) -> Response:
    return Response(body, media_type=TWIML_MEDIA_TYPE)


router = APIRouter()


@router.post("/twilio/voice")
async def incoming_call(request: Request, form: SignedForm, state: StateDep) -> Response:
    call_sid = form.get("CallSid")
    if call_sid is None:
        raise HTTPException(status_code=400, detail="no CallSid")
    caller = form.get("From")
    base = _base(request, state)
    known = state.registry.get(call_sid) is not None or await _recorded(state, call_sid)
    if known and not state.admission.pending(call_sid):
        # Twilio never offers a call twice: this would take over (or rewrite) another call's record.
        log.warning("incoming call for a call SID already recorded refused", extra={"call": call_sid})
        raise HTTPException(status_code=409, detail="this call is already recorded")
    draining = DRAIN_REASON if state.drain.draining else None
    secret = state.admission.admit(call_sid) if draining is None else None
    if secret is None:
        # Never accepted and left waiting: a short message, then a person (the default department).
        decision = turn_away(state.registry, state.catalogue, call_sid, caller, state.admission.max_calls, draining)
        state.metrics.turned_away(decision)
        info = state.registry.get(call_sid)
        if info is not None:
            info.add_transfer_event(TransferEvent(state.transfers.department_step(state.transfers.default_department)))
            state.registry.publish(call_sid)
        return _twiml(state.transfers.over_capacity(call_sid, base))
    log.info("incoming call", extra={"call": call_sid})
    parameters = {STREAM_SECRET_PARAMETER: secret}
    if caller:
        parameters[twiml.CALLER_PARAMETER] = caller
    return _twiml(twiml.connect_stream(base, parameters))


@router.post(twiml.AFTER_STREAM_PATH)
async def after_stream(request: Request, form: SignedForm, state: StateDep, running: RunningDep) -> Response:
    call_sid = form.get("CallSid", "")
    call = await running.records.get(call_sid)
    if call is None or call.outcome is None:
        state.metrics.undecided_stream_dialled()
    body = state.transfers.after_stream(call, _base(request, state))
    step = state.transfers.first_step(call)
    if step is not None:
        await running.records.transfer_step(call_sid, step)
    return _twiml(body)


# --- the transfer's webhooks (telephony/twilio/transfer.py builds their TwiML) ------------------------------------


@router.post(twiml.WHISPER_PATH, dependencies=[Depends(signed_form)])
async def whisper(request: Request, state: StateDep, running: RunningDep) -> Response:
    # Requested for the new leg once the person answers; `call` names the caller's call.
    call_sid = request.query_params.get("call", "")
    call = await running.records.get(call_sid) if is_call_sid(call_sid) else None
    if call is not None:
        await running.records.transfer_step(call_sid, TransferState.ANSWERED)
    return _twiml(state.transfers.whisper(call))


@router.post(twiml.QUEUE_WAIT_PATH)
async def queue_wait(form: SignedForm, state: StateDep, running: RunningOrNoneDep) -> Response:
    # Asked again after every wait message: a step only when the caller's place in the queue changed. A caller
    # waiting in the queue while this server restarts still hears the wait message.
    if running is not None:
        position = form.get("QueuePosition")
        detail = f"position {position}" if position else None
        await running.records.transfer_step(form.get("CallSid", ""), TransferState.QUEUED, detail)
    return _twiml(state.transfers.queue_wait())


@router.post(twiml.DIAL_STATUS_PATH)
async def dial_status(request: Request, form: SignedForm, state: StateDep, running: RunningDep) -> Response:
    # <Dial action> posts DialCallStatus; <Enqueue action> posts QueueResult.
    status = form.get("DialCallStatus") or form.get("QueueResult") or ""
    call_sid = form.get("CallSid", "-")
    log.info("transfer ended", extra={"call": call_sid, "status": status or "-"})
    if _first_time(request, state):
        await running.records.note(call_sid, transfer_status=status or None)
        await running.records.transfer_step(call_sid, state.transfers.dial_step(status), status or None)
    return _twiml(state.transfers.after_dial(status, _base(request, state)))


@router.post(twiml.DIAL_CHOICE_PATH)
async def dial_choice(request: Request, form: SignedForm, state: StateDep, running: RunningDep) -> Response:
    digits = form.get("Digits", "")
    body = state.transfers.choice(digits, _base(request, state))
    call_sid = form.get("CallSid", "-")
    if state.transfers.callback_chosen(digits) and _first_time(request, state):
        log.info("call-back requested", extra={"call": call_sid})
        await running.records.note(call_sid, callback_requested=True)
        await take_callback_request(state, running, form)
        await running.records.transfer_step(call_sid, TransferState.CALLBACK_REQUESTED)
    return _twiml(body)


@router.post(twiml.MESSAGE_RECORDED_PATH)
async def message_recorded(request: Request, form: SignedForm, state: StateDep, running: RunningDep) -> Response:
    call_sid = form.get("CallSid", "-")
    log.info("message recorded", extra={"call": call_sid})
    if _first_time(request, state):
        await running.records.note(call_sid, message_recording_sid=form.get("RecordingSid") or None)
        await take_callback_request(state, running, form, recording_sid=form.get("RecordingSid") or None)
        await running.records.transfer_step(call_sid, TransferState.MESSAGE_LEFT)
    return _twiml(state.transfers.message_recorded())


# --- the media stream ---------------------------------------------------------------------------------------------


def _start_check(state: AppState) -> StartCheck:
    """Whether a ``start`` may open its call: well-formed SIDs, that call's ticket, and no record of the call yet
    (live or finished, here or, when another instance admitted it, in the database)."""

    async def check(event: Start) -> str | None:
        call_sid, stream_sid = event.start.call_sid, event.stream_sid
        if not is_call_sid(call_sid) or not is_stream_sid(stream_sid) or event.start.stream_sid not in ("", stream_sid):
            return "malformed call or stream SID"
        if not state.admission.pending(call_sid) and await _recorded(state, call_sid):
            return "the call already has a record"
        # After the last await: the claim and the opening of the call happen in one step of the loop.
        ticket = event.start.custom_parameters.get(STREAM_SECRET_PARAMETER, "")
        if not state.admission.claim(call_sid, ticket):
            return "no valid ticket for this call (never admitted, expired, or the call is open already)"
        return None

    return check


@router.websocket(twiml.MEDIA_PATH)
async def media(websocket: WebSocket, state: StateDep, running: RunningOrNoneDep) -> None:
    if not state.signatures.valid(websocket):
        # Closing before accepting refuses the upgrade (HTTP 403): nothing is read from an unsigned stream.
        log.warning("media stream with a missing or invalid X-Twilio-Signature refused")
        await websocket.close(code=CLOSE_PROTOCOL_ERROR)
        return
    if running is None or state.drain.draining:
        # The models are still loading, or the server is about to stop: Twilio asks /twilio/after-stream, which
        # dials a person.
        await websocket.close(code=TRY_AGAIN_LATER)
        return
    address = websocket.client.host if websocket.client else "-"
    if not state.stream_addresses.open(address):
        log.warning("media stream refused: too many open from one address")
        await websocket.close(code=TRY_AGAIN_LATER)
        return
    try:
        await _serve_stream(websocket, state, running)
    finally:
        state.stream_addresses.close(address)


async def _serve_stream(websocket: WebSocket, state: AppState, running: Running) -> None:
    base = _base(websocket, state)

    async def before_closing(call: CallInfo) -> bool:
        # Twilio's next request (/twilio/after-stream) may reach another instance, which reads the outcome from the
        # database: write it first (briefly; a slow database must not keep the caller waiting).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(running.writer.flush()), HANDOVER_WRITE_TIMEOUT_S)
        redirected = await state.transfers.redirect(call, public_base_url=base)
        if redirected:
            # Twilio runs the transfer's TwiML now; without the redirect, /twilio/after-stream records this step.
            step = state.transfers.first_step(call_record(call))
            if step is not None:
                await running.records.transfer_step(call.call_sid, step)
        return redirected

    call = await run_media_stream(
        websocket,
        running.services,
        state.registry,
        state.counters,
        check_start=_start_check(state),
        limits=CallLimits.from_settings(state.settings),
        redirect=before_closing,
        drain=state.drain,
    )
    if call is not None:
        state.metrics.call_ended(call)
