"""The FastAPI application: the factory and its lifespan.

`create_app` validates the configuration and the catalogue and builds the `AppState` the routes share; the lifespan
opens the database, starts the record writer and loads the models (off the event loop), and only then makes the
`Running` state that ``GET /healthz`` reports ready. The routes are in telephony/twilio/webhooks.py (Twilio),
telephony/browser/router.py (a call from the browser), telephony/web/ (the call API, the desk, metrics, health).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from telephony.admission import Admission
from telephony.browser import router as browser
from telephony.calls import CallRegistry
from telephony.connection_cap import ConnectionsPerAddress
from telephony.session import StreamCounters
from telephony.settings import Settings, load_settings
from telephony.state import AppState, CallRecords, Running
from telephony.storage.accounts import DeskAccounts
from telephony.storage.audit import AuditTrail
from telephony.storage.callbacks import CallbackQueue
from telephony.storage.instances import keep_alive, new_owner_id, recover_orphaned
from telephony.storage.pseudonyms import CallerPseudonyms
from telephony.storage.retention import purge_daily
from telephony.storage.store import CallStore
from telephony.storage.vault import NumberVault
from telephony.storage.writer import RecordWriter
from telephony.stream_tickets import StreamTickets
from telephony.twilio import webhooks
from telephony.twilio.deployment import load_transfer_targets
from telephony.twilio.recordings import RecordingFetcher
from telephony.twilio.signature import UNSIGNED_WARNING, TwilioSignatures
from telephony.twilio.transfer import CallRedirector, Transfers
from telephony.voice_services import load_voice_services
from telephony.web import api, audit, callbacks, desk, health, metrics
from telephony.web.auth import Authenticator
from telephony.web.desk_labels import desk_labels
from telephony.web.metrics import CallMetrics
from voice.pipeline import VoiceServices
from voice.prompts import Catalogue, load_catalogue
from voice.vad import load_vad_model

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None,
    services: VoiceServices | None = None,
    redirector: CallRedirector | None = None,
    recordings: RecordingFetcher | None = None,
) -> FastAPI:
    """Build the application; configuration and catalogue are validated here, models load in the lifespan.

    Args:
        settings: the configuration; default: read from the environment.
        services: already loaded models to use (and leave running) instead of loading them in the lifespan;
            tests and the in-process replay share one set this way.
        redirector: in rest_redirect mode, the REST client to use instead of one for Twilio's API built from the
            settings; tests point one at a fake Twilio on 127.0.0.1.
        recordings: the voicemail fetcher to use instead of one for Twilio's API built from the settings (tests).

    Raises:
        voice.prompts.PromptError, telephony.twilio.deployment.DeploymentError: naming the file and the entry at fault.
        telephony.settings.SettingsError: a setting is invalid, or settings do not fit together (from the environment),
            or no TWILIO_AUTH_TOKEN is set and unsigned requests are not explicitly allowed.
        telephony.storage.store.StorageError: VOICE_AGENT_DATABASE_URL is unusable.
    """
    settings = settings or load_settings()
    catalogue = load_catalogue(settings.prompts_dir, settings.language)
    desk_labels(settings.prompts_dir, settings.language)  # a broken desk catalogue stops the start, not a page
    targets = dict(load_transfer_targets(settings.deployment_file, catalogue.departments))
    registry, counters = CallRegistry(), StreamCounters()
    store = CallStore.from_settings(settings)
    state = AppState(
        settings=settings,
        catalogue=catalogue,
        targets=targets,
        registry=registry,
        counters=counters,
        transfers=Transfers.from_settings(settings, targets, catalogue, redirector),
        store=store,
        admission=Admission(registry, settings.max_calls, StreamTickets(_ticket_key(settings))),
        metrics=CallMetrics(registry, counters),
        callbacks=CallbackQueue(store, NumberVault.from_settings(settings)),
        accounts=DeskAccounts(store),
        audit=AuditTrail(store),
        recordings=recordings or RecordingFetcher.from_settings(settings),
        signatures=TwilioSignatures(settings),
        stream_addresses=ConnectionsPerAddress(settings.max_streams_per_address),
    )
    if state.signatures.unsigned:
        log.warning(UNSIGNED_WARNING)

    docs = settings.api_docs  # off by default: the schema lists the admin routes, the pages load a CDN's scripts
    app = FastAPI(
        title="voice-agent",
        lifespan=functools.partial(_lifespan, state=state, services=services),
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.voice = state
    # The call API, the call-back queue, the audit trail and the agent desk; closed (401) until a token is set or a
    # desk account is added.
    app.state.auth = Authenticator.from_settings(settings, state.accounts)
    app.state.event_streams = api.EventStreams()
    app.include_router(api.router)
    app.include_router(callbacks.router)
    app.include_router(audit.router)
    app.include_router(desk.router)
    # GET /metrics: open unless VOICE_AGENT_METRICS_TOKEN is set (counts and timings only, no personal data).
    app.include_router(metrics.router)
    app.include_router(health.router)
    app.include_router(webhooks.router)
    # WS /browser/call: a call from the desk's call page (GET /desk/call), for desk users only.
    app.include_router(browser.router)
    return app


def _ticket_key(settings: Settings) -> bytes | None:
    """What stream tickets are signed with: the Twilio auth token, which every instance shares (so that a stream
    may reach another instance than its webhook did); without one, a key of this process."""
    token = settings.twilio_auth_token
    return token.get_secret_value().encode() if token else None


def _load_models(settings: Settings, catalogue: Catalogue, services: VoiceServices | None) -> VoiceServices:
    """The models every call needs, loaded (blocking: run it in a thread); `services` when already loaded."""
    # The VAD session is the process's, not part of the services: load it here too, or the first call would.
    load_vad_model()
    return services or load_voice_services(settings, catalogue)


@asynccontextmanager
async def _lifespan(app: FastAPI, state: AppState, services: VoiceServices | None) -> AsyncIterator[None]:
    """Open the database and start writing records, load the models, serve; then stop in reverse order."""
    settings, store = state.settings, state.store
    # The database first: an unreachable one should stop the start-up before the models take their 25 s.
    await asyncio.to_thread(store.migrate)
    # Records a killed predecessor left live are finished now; with several instances, only those of the dead ones.
    owner_id = new_owner_id()
    await asyncio.to_thread(recover_orphaned, store, owner_id, settings.instance_heartbeat_s)
    heartbeat = asyncio.create_task(keep_alive(store, owner_id, settings.instance_heartbeat_s), name="heartbeat")
    pseudonyms = CallerPseudonyms.from_settings(settings)
    writer = RecordWriter(store, state.registry, pseudonyms, owner_id)
    writer.start()
    retention = asyncio.create_task(
        purge_daily(store, settings.retention_days, audit=state.audit, audit_days=settings.audit_retention_days),
        name="retention",
    )
    log.info("call records in %s, kept %d days", store.url, settings.retention_days)
    try:
        loaded = await asyncio.to_thread(_load_models, settings, state.catalogue, services)
        app.state.running = Running(
            # Timed for /metrics through wrappers of this app's own: shared services stay untouched.
            services=state.metrics.instrument(loaded),
            writer=writer,
            pseudonyms=pseudonyms,
            records=CallRecords(state.registry, store, writer),
        )
        log.info("models loaded; ready for calls")
        try:
            yield
        finally:
            del app.state.running
            if services is None:  # loaded here, so stopped here
                loaded.workers.shutdown()
    finally:
        retention.cancel()
        heartbeat.cancel()
        await asyncio.gather(retention, heartbeat, return_exceptions=True)
        await writer.stop()
        if not state.registry.live_count():
            # Stopped cleanly: nothing of ours is left live. A call still live stays ours until the others (or the
            # next start) see that our heartbeat has stopped.
            with contextlib.suppress(Exception):
                await asyncio.to_thread(store.retire, owner_id)
        store.close()
