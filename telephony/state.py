"""What the routes share: `AppState`, built whole with the app, and `Running`, which the lifespan makes.

`AppState` holds what exists as soon as the configuration is read (``app.state.voice``). `Running` holds what the
lifespan starts: the loaded models, the record writer and the caller pseudonyms (``app.state.running``, present only
from ready to shutdown). Routes reach both through the FastAPI dependencies below; a route that needs `Running` answers
503 until it exists, and `/healthz` and the media stream say "loading" themselves.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, status
from starlette.requests import HTTPConnection

from telephony.admission import Admission
from telephony.call_record import CallRecord, call_record, transfer_event_view
from telephony.calls import CallRegistry, CallState
from telephony.connection_cap import ConnectionsPerAddress
from telephony.drain import Drain
from telephony.session import StreamCounters
from telephony.settings import Settings
from telephony.storage.accounts import DeskAccounts
from telephony.storage.audit import AuditTrail
from telephony.storage.callbacks import CallbackQueue
from telephony.storage.pseudonyms import CallerPseudonyms
from telephony.storage.store import CallStore
from telephony.storage.writer import RecordWriter
from telephony.transfer_timeline import TransferEvent, TransferState
from telephony.twilio.deployment import TransferTarget
from telephony.twilio.recordings import RecordingFetcher
from telephony.twilio.signature import RecentRequests, TwilioSignatures
from telephony.twilio.transfer import Transfers
from telephony.web.metrics import CallMetrics
from voice.pipeline import VoiceServices
from voice.prompts import Catalogue


@dataclass(frozen=True, slots=True)
class AppState:
    """What exists once the configuration is read: validated, but nothing loaded, opened or started."""

    settings: Settings
    catalogue: Catalogue
    targets: dict[str, TransferTarget]
    """Where each department takes transfers."""
    registry: CallRegistry
    """Live and recent calls in this process."""
    counters: StreamCounters
    transfers: Transfers
    """The transfer TwiML and, in rest_redirect mode, the REST redirect."""
    store: CallStore
    """The call records' database (migrated by the lifespan)."""
    admission: Admission
    """Whether a new call is taken (VOICE_AGENT_MAX_CALLS)."""
    metrics: CallMetrics
    callbacks: CallbackQueue
    """Callers waiting for a call-back, their numbers encrypted (in the store's database)."""
    accounts: DeskAccounts
    """The named desk accounts."""
    audit: AuditTrail
    """Who did what to callers' data and to access."""
    recordings: RecordingFetcher | None
    """Voicemails from Twilio's API; None without TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN."""
    signatures: TwilioSignatures
    """Whether a webhook or media stream comes from Twilio."""
    stream_addresses: ConnectionsPerAddress
    """Open media streams by client address (VOICE_AGENT_MAX_STREAMS_PER_ADDRESS)."""
    recent_requests: RecentRequests = field(default_factory=RecentRequests)
    """Recent state-changing webhooks, so that a repeat changes nothing."""
    drain: Drain = field(default_factory=Drain)
    """Whether the server is draining before a stop, and the live calls' pipelines."""


@dataclass(frozen=True, slots=True)
class CallRecords:
    """A call's record wherever it is: a live call's in memory, any other in the database."""

    registry: CallRegistry
    store: CallStore
    writer: RecordWriter

    async def get(self, call_sid: str) -> CallRecord | None:
        """A call's record: a live call's from memory, any other from the database, where another instance may
        have added to it (the stream and the transfer webhooks can land on different instances)."""
        info = self.registry.get(call_sid)
        if info is not None and info.state is CallState.LIVE:
            return call_record(info)
        if not call_sid:
            return call_record(info) if info is not None else None
        await self.writer.flush()  # this instance's latest changes first
        stored = await asyncio.to_thread(self.store.get, call_sid)
        if stored is None and info is not None:
            return call_record(info)
        return stored

    async def note(self, call_sid: str, **changes: object) -> None:
        """Record what a transfer webhook reported, on the live record here or on the stored one."""
        info = self.registry.get(call_sid)
        if info is not None:
            for name, value in changes.items():
                setattr(info, name, value)
            self.registry.publish(call_sid)
        elif call_sid:
            await asyncio.to_thread(self.store.note_transfer, call_sid, **changes)

    async def transfer_step(self, call_sid: str, state: TransferState, detail: str | None = None) -> None:
        """Record a step of the call's transfer; the desk hears of it at once (a live event) when the call is here."""
        if not call_sid:
            return
        event = TransferEvent(state, detail)
        info = self.registry.get(call_sid)
        if info is not None:
            if info.add_transfer_event(event):
                self.registry.publish(call_sid)
        else:
            await asyncio.to_thread(self.store.add_transfer_event, call_sid, transfer_event_view(event))


@dataclass(frozen=True, slots=True)
class Running:
    """What the lifespan starts: exists from ready (models loaded) until shutdown."""

    services: VoiceServices
    """The loaded models, timed for /metrics."""
    writer: RecordWriter
    """Writes every change of a call to the store."""
    pseudonyms: CallerPseudonyms
    """Keyed hashes of caller numbers (to find one caller's records)."""
    records: CallRecords


async def app_state(connection: HTTPConnection) -> AppState:
    """The app's `AppState` (a FastAPI dependency)."""
    return connection.app.state.voice


async def running_or_none(connection: HTTPConnection) -> Running | None:
    """The app's `Running`, or None while the models load (a FastAPI dependency)."""
    return getattr(connection.app.state, "running", None)


async def running(connection: HTTPConnection) -> Running:
    """The app's `Running` (a FastAPI dependency); 503 while the models load."""
    ready = await running_or_none(connection)
    if ready is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="loading")
    return ready


# The dependencies are coroutines that never wait, so FastAPI runs them on the event loop, one right after the other,
# rather than each in a worker thread: a catalogue reload swaps `AppState` and `Running` together between two steps
# of the loop, and a route that takes both then gets both from the same side of the swap.
StateDep = Annotated[AppState, Depends(app_state)]
RunningDep = Annotated[Running, Depends(running)]
RunningOrNoneDep = Annotated[Running | None, Depends(running_or_none)]
