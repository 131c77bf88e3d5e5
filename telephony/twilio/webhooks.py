"""Twilio's webhooks and the media-stream WebSocket, as one router.

``POST /twilio/voice`` answers an incoming call with a bidirectional stream (or, beyond VOICE_AGENT_MAX_CALLS, a
person); ``/twilio/media`` serves the stream; ``/twilio/after-stream`` and the transfer's webhooks answer with the
TwiML that `telephony.twilio.transfer` builds. With a Twilio auth token configured, every webhook must carry a valid
X-Twilio-Signature (`signed_form`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, WebSocket
from fastapi.responses import Response
from twilio.request_validator import RequestValidator

from telephony.admission import turn_away
from telephony.call_record import call_record
from telephony.calls import CallInfo
from telephony.drain import DRAIN_REASON
from telephony.settings import Settings
from telephony.state import RunningDep, RunningOrNoneDep, StateDep
from telephony.transfer_timeline import TransferEvent, TransferState
from telephony.twilio import twiml
from telephony.twilio.media_stream import run_media_stream

log = logging.getLogger(__name__)

TWIML_MEDIA_TYPE = "application/xml"
HANDOVER_WRITE_TIMEOUT_S = 2.0
"""Longest wait for the call record's write before a handed-over stream is closed."""
TRY_AGAIN_LATER = 1013
"""WebSocket close code for a media stream that arrives while the models are still loading, or during a drain."""


# --- public URLs ------------------------------------------------------------------------------------------------


def request_url(request: Request, settings: Settings) -> str:
    """The URL Twilio signed: the configured public URL when set (behind a TLS proxy), else the request's own."""
    if settings.public_url:
        query = f"?{request.url.query}" if request.url.query else ""
        return settings.public_url + request.url.path + query
    return str(request.url)


def public_base(request: Request, settings: Settings) -> str:
    """The HTTP base URL for TwiML: the public URL, else the request's own."""
    return settings.public_url or str(request.base_url).rstrip("/")


def public_base_of_stream(websocket: WebSocket, settings: Settings) -> str:
    """The HTTP base URL for TwiML sent from a media stream: the public URL, else the stream's own (wss -> https)."""
    if settings.public_url:
        return settings.public_url
    url = websocket.base_url
    return str(url.replace(scheme="https" if url.scheme == "wss" else "http")).rstrip("/")


# --- the signature check ------------------------------------------------------------------------------------------


async def _form_if_signed(request: Request, settings: Settings) -> dict[str, str] | None:
    """The webhook's form parameters, or None when a configured auth token's signature check fails."""
    form = {key: str(value) for key, value in (await request.form()).items()}
    token = settings.twilio_auth_token
    if token is None:
        return form
    signature = request.headers.get("X-Twilio-Signature", "")
    if not RequestValidator(token.get_secret_value()).validate(request_url(request, settings), form, signature):
        log.warning("webhook with a missing or invalid X-Twilio-Signature refused", extra={"path": request.url.path})
        return None
    return form


async def signed_form(request: Request, state: StateDep) -> dict[str, str]:
    """A Twilio webhook's form parameters (a FastAPI dependency); 403 when the signature check fails."""
    form = await _form_if_signed(request, state.settings)
    if form is None:
        raise HTTPException(status_code=403, detail="invalid signature")
    return form


SignedForm = Annotated[dict[str, str], Depends(signed_form)]


def _twiml(body: str) -> Response:
    return Response(body, media_type=TWIML_MEDIA_TYPE)


router = APIRouter()


@router.post("/twilio/voice")
async def incoming_call(request: Request, form: SignedForm, state: StateDep) -> Response:
    call_sid = form.get("CallSid", "")
    caller = form.get("From")
    base = public_base(request, state.settings)
    draining = DRAIN_REASON if state.drain.draining else None
    if draining is not None or not state.admission.admit(call_sid):
        # Never accepted and left waiting: a short message, then a person (the default department).
        decision = turn_away(state.registry, state.catalogue, call_sid, caller, state.admission.max_calls, draining)
        state.metrics.turned_away(decision)
        info = state.registry.get(call_sid)
        if info is not None:
            info.add_transfer_event(TransferEvent(state.transfers.department_step(state.transfers.default_department)))
            state.registry.publish(call_sid)
        return _twiml(state.transfers.over_capacity(call_sid or None, base))
    log.info("incoming call", extra={"call": call_sid or "-"})
    parameters = {twiml.CALLER_PARAMETER: caller} if caller else None
    return _twiml(twiml.connect_stream(base, parameters))


@router.post(twiml.AFTER_STREAM_PATH)
async def after_stream(request: Request, form: SignedForm, state: StateDep, running: RunningDep) -> Response:
    call_sid = form.get("CallSid", "")
    call = await running.records.get(call_sid)
    if call is None or call.outcome is None:
        state.metrics.undecided_stream_dialled()
    body = state.transfers.after_stream(call, public_base(request, state.settings))
    step = state.transfers.first_step(call)
    if step is not None:
        await running.records.transfer_step(call_sid, step)
    return _twiml(body)


# --- the transfer's webhooks (telephony/twilio/transfer.py builds their TwiML) ------------------------------------


@router.post(twiml.WHISPER_PATH, dependencies=[Depends(signed_form)])
async def whisper(request: Request, state: StateDep, running: RunningDep) -> Response:
    # Requested for the new leg once the person answers; `call` names the caller's call.
    call_sid = request.query_params.get("call", "")
    call = await running.records.get(call_sid)
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
    await running.records.note(call_sid, transfer_status=status or None)
    await running.records.transfer_step(call_sid, state.transfers.dial_step(status), status or None)
    return _twiml(state.transfers.after_dial(status, public_base(request, state.settings)))


@router.post(twiml.DIAL_CHOICE_PATH)
async def dial_choice(request: Request, form: SignedForm, state: StateDep, running: RunningDep) -> Response:
    digits = form.get("Digits", "")
    body = state.transfers.choice(digits, public_base(request, state.settings))
    call_sid = form.get("CallSid", "-")
    if state.transfers.callback_chosen(digits):
        log.info("call-back requested", extra={"call": call_sid})
        await running.records.note(call_sid, callback_requested=True)
        await running.records.transfer_step(call_sid, TransferState.CALLBACK_REQUESTED)
    return _twiml(body)


@router.post(twiml.MESSAGE_RECORDED_PATH)
async def message_recorded(form: SignedForm, state: StateDep, running: RunningDep) -> Response:
    call_sid = form.get("CallSid", "-")
    log.info("message recorded", extra={"call": call_sid})
    await running.records.note(call_sid, message_recording_sid=form.get("RecordingSid") or None)
    await running.records.transfer_step(call_sid, TransferState.MESSAGE_LEFT)
    return _twiml(state.transfers.message_recorded())


# --- the media stream ---------------------------------------------------------------------------------------------


@router.websocket(twiml.MEDIA_PATH)
async def media(websocket: WebSocket, state: StateDep, running: RunningOrNoneDep) -> None:
    if running is None or state.drain.draining:
        # The models are still loading, or the server is about to stop: Twilio asks /twilio/after-stream, which
        # dials a person.
        await websocket.close(code=TRY_AGAIN_LATER)
        return
    base = public_base_of_stream(websocket, state.settings)

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
        websocket, running.services, state.registry, state.counters, redirect=before_closing, drain=state.drain
    )
    if call is not None:
        state.metrics.call_ended(call)
