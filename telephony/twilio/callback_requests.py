"""A caller's call-back request or voicemail, taken from the transfer's webhooks into the desk's queue.

Twilio sends the caller's number (``From``) with every webhook of the call; the call's record (live here, or stored
by another instance) gives the topic and the reason it was to go to a person.
"""

from __future__ import annotations

import asyncio
import logging

from telephony.state import AppState, Running
from telephony.twilio.recordings import RECORDING_SID

log = logging.getLogger(__name__)


async def take_callback_request(
    state: AppState, running: Running, form: dict[str, str], recording_sid: str | None = None
) -> None:
    """Put the call in the call-back queue, its number encrypted; a failure is logged (the caller still hears the
    confirmation: Twilio's next TwiML must not wait on the database)."""
    call_sid = form.get("CallSid", "")
    if not call_sid:
        return
    if recording_sid is not None and not RECORDING_SID.match(recording_sid):
        log.warning("a voicemail with a malformed recording SID is ignored", extra={"call": call_sid})
        recording_sid = None
    live = state.registry.get(call_sid)
    number = form.get("From") or (live.caller_number if live is not None else None)
    record = await running.records.get(call_sid)
    handoff = record.handoff if record is not None else None
    try:
        await asyncio.to_thread(
            lambda: state.callbacks.request(
                call_sid,
                number,
                caller_key=running.pseudonyms.of(number),
                intent=handoff.intent if handoff else (record.intent if record else None),
                department=handoff.department if handoff else None,
                reason=handoff.reason if handoff else None,
                recording_sid=recording_sid,
            )
        )
    except Exception:
        log.exception("the call-back request could not be stored", extra={"call": call_sid})
