"""The call-back queue: callers who asked to be called back or left a voicemail, for the desk.

    GET  /api/callbacks                       open requests, the longest waiting first (``?done=true``: done too)
    POST /api/callbacks/{call_sid}/reveal     the caller's number in clear, to call them back (audited)
    GET  /api/callbacks/{call_sid}/voicemail  the voicemail's audio, fetched from Twilio by the server (audited)
    POST /api/callbacks/{call_sid}/done       the call-back was made: the number is deleted (audited)

Agent role (`telephony.web.auth`); every action on a caller's number or voice names its desk account in the audit
trail (`telephony.web.audit`).
"""

from __future__ import annotations

import logging
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from pydantic import BaseModel

from telephony.state import StateDep
from telephony.storage.audit import AuditAction, AuditOutcome
from telephony.storage.callbacks import CallbackRequest
from telephony.storage.vault import VaultError
from telephony.twilio.recordings import RecordingError
from telephony.web.audit import record_audit
from telephony.web.auth import Principal, Role, require_principal

log = logging.getLogger(__name__)

_MAX_SID_CHARS = 64


def _no_store(response: Response) -> None:
    response.headers["Cache-Control"] = "no-store"


Agent = Annotated[Principal, Depends(require_principal(Role.AGENT))]

router = APIRouter(
    prefix="/api/callbacks",
    tags=["callbacks"],
    dependencies=[Depends(_no_store)],
    responses={401: {"description": "no valid token or desk session"}, 404: {"description": "no such request"}},
)


def _not_found(call_sid: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no call-back request for {call_sid[:_MAX_SID_CHARS]!r}")


@router.get("", response_model=list[CallbackRequest])
async def list_callbacks(
    state: StateDep, _who: Agent, done: Annotated[bool, Query(description="include the done ones")] = False
) -> list[CallbackRequest]:
    """The queue: who (masked), why, when, whether there is a voicemail and whether the number can be revealed."""
    return await anyio.to_thread.run_sync(lambda: state.callbacks.requests(include_done=done))


class RevealedNumber(BaseModel):
    call_sid: str
    number: str
    """The caller's number in clear (E.164 as Twilio sent it); shown, never stored by the desk."""


@router.post("/{call_sid}/reveal", response_model=RevealedNumber)
async def reveal_number(call_sid: str, request: Request, state: StateDep, who: Agent) -> RevealedNumber:
    """The caller's number, to call them back; the reveal is in the audit trail (written before the number is sent)."""
    try:
        number = await anyio.to_thread.run_sync(state.callbacks.number, call_sid)
    except VaultError as error:
        log.error("a call-back number cannot be decrypted: %s", error, extra={"call": call_sid[:_MAX_SID_CHARS]})
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, detail=str(error)) from None
    if number is None:
        await record_audit(request, who.actor, AuditAction.REVEAL_NUMBER, call_sid, AuditOutcome.NOT_FOUND)
        raise _not_found(call_sid)
    await record_audit(request, who.actor, AuditAction.REVEAL_NUMBER, call_sid)
    return RevealedNumber(call_sid=call_sid, number=number)


@router.get(
    "/{call_sid}/voicemail",
    response_class=Response,
    responses={
        200: {"content": {"audio/wav": {}}, "description": "the voicemail"},
        502: {"description": "Twilio refused or could not be reached"},
        503: {"description": "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set"},
    },
)
async def play_voicemail(call_sid: str, request: Request, state: StateDep, who: Agent) -> Response:
    """The caller's voicemail, fetched from Twilio with the account's credentials; the play is audited."""
    recording_sid = await anyio.to_thread.run_sync(state.callbacks.recording_sid, call_sid)
    if recording_sid is None:
        raise _not_found(call_sid)
    if state.recordings is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="voicemails are fetched from Twilio: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN",
        )
    try:
        recording = await state.recordings.fetch(recording_sid)
    except RecordingError as error:
        log.error("voicemail fetch failed: %s", error, extra={"call": call_sid[:_MAX_SID_CHARS]})
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, detail=str(error)) from None
    await record_audit(request, who.actor, AuditAction.PLAY_VOICEMAIL, call_sid)
    return Response(recording.audio, media_type=recording.media_type, headers={"Cache-Control": "no-store"})


@router.post("/{call_sid}/done", response_model=CallbackRequest)
async def callback_done(call_sid: str, request: Request, state: StateDep, who: Agent) -> CallbackRequest:
    """The caller was called back: the request leaves the queue and its number is deleted."""
    if not await anyio.to_thread.run_sync(lambda: state.callbacks.done(call_sid, who.actor)):
        raise _not_found(call_sid)
    await record_audit(request, who.actor, AuditAction.CALLBACK_DONE, call_sid)
    done = await anyio.to_thread.run_sync(state.callbacks.get, call_sid)
    if done is None:  # deleted in between (a purge, a forgotten caller)
        raise _not_found(call_sid)
    return done
