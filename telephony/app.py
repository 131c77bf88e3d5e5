"""The FastAPI application: Twilio webhooks, the media-stream WebSocket and health.

Models are loaded once, in the lifespan, and shared by every call; ``GET /healthz`` answers 200 only after that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request, WebSocket
from fastapi.responses import JSONResponse, Response
from twilio.request_validator import RequestValidator

from telephony.admission import Admission, turn_away
from telephony.call_record import CallRecord, call_record
from telephony.calls import CallInfo, CallRegistry, CallState
from telephony.settings import Settings, load_settings
from telephony.storage.pseudonyms import CallerPseudonyms
from telephony.storage.retention import purge_daily
from telephony.storage.store import CallStore
from telephony.storage.writer import RecordWriter
from telephony.twilio import twiml
from telephony.twilio.deployment import TransferTarget, load_transfer_targets
from telephony.twilio.media_stream import StreamCounters, run_media_stream
from telephony.twilio.say import replies_spoken_by_agent
from telephony.twilio.transfer import CallRedirector, Transfers
from telephony.web import api, desk, metrics
from telephony.web.auth import Authenticator
from telephony.web.metrics import CallMetrics
from voice.asr import AsrOptions
from voice.asr_prompt import catalogue_prompt
from voice.end_of_turn import EndOfTurnOptions
from voice.pipeline import VoiceServices
from voice.prompts import Catalogue, load_catalogue
from voice.turns import TurnOptions

log = logging.getLogger(__name__)

TWIML_MEDIA_TYPE = "application/xml"
HANDOVER_WRITE_TIMEOUT_S = 2.0
"""Longest wait for the call record's write before a handed-over stream is closed."""


@dataclass(slots=True)
class AppState:
    """What the routes share."""

    settings: Settings
    catalogue: Catalogue
    targets: dict[str, TransferTarget]
    registry: CallRegistry = field(default_factory=CallRegistry)
    counters: StreamCounters = field(default_factory=StreamCounters)
    services: VoiceServices | None = None
    transfers: Transfers | None = None
    """The transfer TwiML and, in rest_redirect mode, the REST redirect; set by `create_app`."""
    store: CallStore | None = None
    """The call records' database; set by `create_app`, migrated in the lifespan."""
    pseudonyms: CallerPseudonyms | None = None
    """Keyed hashes of caller numbers (to find one caller's records); set in the lifespan."""
    writer: RecordWriter | None = None
    """Writes every change of a call to the store; set in the lifespan."""
    admission: Admission | None = None
    """Whether a new call is taken (VOICE_AGENT_MAX_CALLS); set by `create_app`."""

    async def call_record(self, call_sid: str) -> CallRecord | None:
        """A call's record: a live call's from memory, any other from the database, where another instance may
        have added to it (the stream and the transfer webhooks can land on different instances)."""
        info = self.registry.get(call_sid)
        if info is not None and info.state is CallState.LIVE:
            return call_record(info)
        if self.store is None or not call_sid:
            return call_record(info) if info is not None else None
        if self.writer is not None:
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
        elif self.store is not None and call_sid:
            await asyncio.to_thread(self.store.note_transfer, call_sid, **changes)


def asr_options(settings: Settings, catalogue: Catalogue) -> AsrOptions:
    """How the server runs the recogniser (benchmarks/fairness.py measures with the same options)."""
    # One model copy per pool worker, so that two utterances ending together are transcribed side by side. The greeting
    # as Whisper prompt (voice/asr_prompt.py) made the engine decide as on the perfect transcript more often for every
    # caller group in benchmarks/fairness.py; measured for English only (no real Dutch recordings to check it with).
    return AsrOptions(
        language=catalogue.language,
        cpu_threads=settings.asr_threads,
        num_workers=settings.model_workers,
        initial_prompt=catalogue_prompt(catalogue) if catalogue.language == "en" else None,
    )


def load_voice_services(settings: Settings, catalogue: Catalogue) -> VoiceServices:
    """Load the models (once per process) and warm the phrase cache with the fixed replies.

    Raises:
        voice.models.ModelNotFound: a model is neither configured nor bundled; the message says what to install.
    """
    # Imported here: the heavy libraries load only in the server, not for `voice-agent chat`.
    from voice.asr import SpeechRecognizer
    from voice.dialogue import DialogueEngine
    from voice.models import piper_voice_files, whisper_model_dir
    from voice.tts import PhraseCache
    from voice.tts_piper import PiperSynthesizer
    from voice.workers import ModelWorkers

    recognizer = SpeechRecognizer(whisper_model_dir(settings.whisper_model), asr_options(settings, catalogue))
    model, config = piper_voice_files(settings.piper_voice)
    synthesizer = PiperSynthesizer(model, config)
    fixed = list(replies_spoken_by_agent(catalogue.replies).values())
    fixed += [intent.reply for intent in catalogue.intents.values()]
    speech = PhraseCache(synthesizer, max_entries=max(128, 2 * len(fixed)))
    # The fixed replies must never wait for synthesis; after a fault (technical_problem) there may be none.
    speech.preload(fixed)
    return VoiceServices(
        engine=DialogueEngine(catalogue),
        recognizer=recognizer,
        speech=speech,
        workers=ModelWorkers(settings.model_workers),
        turn_options=turn_options(settings),
        asr_timeout_s=settings.asr_timeout_s,
        tts_timeout_s=settings.tts_timeout_s,
        end_of_turn=end_of_turn_options(settings),
        stream_first_sentence=settings.stream_first_sentence,
    )


def turn_options(settings: Settings) -> TurnOptions:
    """End-of-turn detection as configured; the lower (hysteresis) threshold never exceeds the start threshold."""
    default = TurnOptions()
    return TurnOptions(
        speech_start_threshold=settings.speech_start_threshold,
        speech_end_threshold=min(settings.speech_start_threshold, default.speech_end_threshold),
        end_of_turn_silence_ms=settings.end_of_turn_silence_ms,
        pause_report_ms=settings.speculative_asr_after_ms if settings.speculative_asr else None,
    )


def end_of_turn_options(settings: Settings) -> EndOfTurnOptions:
    """Adaptive end of turn as configured; its default silence is the configured end-of-turn silence."""
    return EndOfTurnOptions(
        enabled=settings.adaptive_end_of_turn,
        default_silence_ms=settings.end_of_turn_silence_ms,
        complete_silence_ms=settings.end_of_turn_complete_ms,
        trailing_silence_ms=settings.end_of_turn_trailing_ms,
    )


def _request_url(request: Request, settings: Settings) -> str:
    """The URL Twilio signed: the configured public URL when set (behind a TLS proxy), else the request's own."""
    if settings.public_url:
        query = f"?{request.url.query}" if request.url.query else ""
        return settings.public_url + request.url.path + query
    return str(request.url)


def _public_base(request: Request, settings: Settings) -> str:
    return settings.public_url or str(request.base_url).rstrip("/")


def _public_base_of_stream(websocket: WebSocket, settings: Settings) -> str:
    """The HTTP base URL for TwiML sent from a media stream: the public URL, else the stream's own (wss -> https)."""
    if settings.public_url:
        return settings.public_url
    url = websocket.base_url
    return str(url.replace(scheme="https" if url.scheme == "wss" else "http")).rstrip("/")


async def _form_if_signed(request: Request, settings: Settings) -> dict[str, str] | None:
    """The webhook's form parameters, or None when a configured auth token's signature check fails."""
    form = {key: str(value) for key, value in (await request.form()).items()}
    token = settings.twilio_auth_token
    if token is None:
        return form
    signature = request.headers.get("X-Twilio-Signature", "")
    if not RequestValidator(token.get_secret_value()).validate(_request_url(request, settings), form, signature):
        log.warning("webhook with a missing or invalid X-Twilio-Signature refused", extra={"path": request.url.path})
        return None
    return form


async def signed_form(request: Request) -> dict[str, str]:
    """A Twilio webhook's form parameters (a FastAPI dependency); 403 when the signature check fails."""
    form = await _form_if_signed(request, request.app.state.voice.settings)
    if form is None:
        raise HTTPException(status_code=403, detail="invalid signature")
    return form


SignedForm = Annotated[dict[str, str], Depends(signed_form)]


def create_app(
    settings: Settings | None = None,
    services: VoiceServices | None = None,
    redirector: CallRedirector | None = None,
) -> FastAPI:
    """Build the application; configuration and catalogue are validated here, models load in the lifespan.

    Args:
        settings: the configuration; default: read from the environment.
        services: already loaded models to use (and leave running) instead of loading them in the lifespan;
            tests and the in-process replay share one set this way.
        redirector: in rest_redirect mode, the REST client to use instead of one for Twilio's API built from the
            settings; tests point one at a fake Twilio on 127.0.0.1.

    Raises:
        voice.prompts.PromptError, telephony.twilio.deployment.DeploymentError: naming the file and the entry at fault.
        telephony.settings.SettingsError: rest_redirect mode without TWILIO_ACCOUNT_SID or TWILIO_AUTH_TOKEN.
        telephony.storage.store.StorageError: VOICE_AGENT_DATABASE_URL is unusable.
    """
    settings = settings or load_settings()
    catalogue = load_catalogue(settings.prompts_dir, settings.language)
    targets = dict(load_transfer_targets(settings.deployment_file, catalogue.departments))
    transfers = Transfers.from_settings(settings, targets, catalogue, redirector)
    store = CallStore.from_settings(settings)
    state = AppState(settings=settings, catalogue=catalogue, targets=targets, transfers=transfers, store=store)
    admission = state.admission = Admission(state.registry, settings.max_calls)
    call_metrics = CallMetrics(state.registry, state.counters)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The database first: an unreachable one should stop the start-up before the models take their 25 s.
        await asyncio.to_thread(store.migrate)
        state.pseudonyms = CallerPseudonyms.from_settings(settings)
        writer = state.writer = RecordWriter(store, state.registry, state.pseudonyms)
        writer.start()
        retention = asyncio.create_task(purge_daily(store, settings.retention_days), name="retention")
        log.info("call records in %s, kept %d days", store.url, settings.retention_days)
        owned = services is None
        loaded: VoiceServices | None = None
        try:
            loaded = await asyncio.to_thread(load_voice_services, settings, catalogue) if owned else services
            # Timed for /metrics through wrappers of this app's own: shared services stay untouched.
            state.services = call_metrics.instrument(loaded)
            log.info("models loaded; ready for calls")
            yield
        finally:
            if owned and loaded is not None:
                loaded.workers.shutdown()
            state.services = None
            retention.cancel()
            await asyncio.gather(retention, return_exceptions=True)
            await writer.stop()
            store.close()

    app = FastAPI(title="voice-agent", lifespan=lifespan)
    app.state.voice = state
    # The call API and the agent desk; closed (401) unless VOICE_AGENT_AGENT_TOKEN or _ADMIN_TOKEN is set.
    app.state.auth = Authenticator.from_settings(settings)
    app.state.event_streams = api.EventStreams()
    app.include_router(api.router)
    app.include_router(desk.router)
    # GET /metrics: open unless VOICE_AGENT_METRICS_TOKEN is set (counts and timings only, no personal data).
    app.state.metrics = call_metrics
    app.include_router(metrics.router)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        if state.services is None:
            return JSONResponse({"status": "loading"}, status_code=503)
        # The loop's task count lets a soak test see tasks that outlive their call (benchmarks/soak.py).
        return JSONResponse(
            {"status": "ok", "live_calls": state.registry.live_count(), "asyncio_tasks": len(asyncio.all_tasks())}
        )

    @app.post("/twilio/voice")
    async def incoming_call(request: Request, form: SignedForm) -> Response:
        call_sid = form.get("CallSid", "")
        caller = form.get("From")
        if not admission.admit(call_sid):
            # Never accepted and left waiting: a short message, then a person (the default department).
            call_metrics.turned_away(turn_away(state.registry, catalogue, call_sid, caller, admission.max_calls))
            body = transfers.over_capacity(call_sid or None, _public_base(request, settings))
            return Response(body, media_type=TWIML_MEDIA_TYPE)
        log.info("incoming call", extra={"call": call_sid or "-"})
        parameters = {twiml.CALLER_PARAMETER: caller} if caller else None
        body = twiml.connect_stream(_public_base(request, settings), parameters)
        return Response(body, media_type=TWIML_MEDIA_TYPE)

    @app.post("/twilio/after-stream")
    async def after_stream(request: Request, form: SignedForm) -> Response:
        call = await state.call_record(form.get("CallSid", ""))
        if call is None or call.outcome is None:
            call_metrics.undecided_stream_dialled()
        body = transfers.after_stream(call, _public_base(request, settings))
        return Response(body, media_type=TWIML_MEDIA_TYPE)

    # --- the transfer's webhooks (telephony/twilio/transfer.py builds their TwiML) ------------------------------------

    @app.post(twiml.WHISPER_PATH, dependencies=[Depends(signed_form)])
    async def whisper(request: Request) -> Response:
        # Requested for the new leg to the person who answers; `call` names the caller's call.
        call = await state.call_record(request.query_params.get("call", ""))
        return Response(transfers.whisper(call), media_type=TWIML_MEDIA_TYPE)

    @app.post(twiml.QUEUE_WAIT_PATH, dependencies=[Depends(signed_form)])
    async def queue_wait() -> Response:
        return Response(transfers.queue_wait(), media_type=TWIML_MEDIA_TYPE)

    @app.post(twiml.DIAL_STATUS_PATH)
    async def dial_status(request: Request, form: SignedForm) -> Response:
        # <Dial action> posts DialCallStatus; <Enqueue action> posts QueueResult.
        status = form.get("DialCallStatus") or form.get("QueueResult") or ""
        call_sid = form.get("CallSid", "-")
        log.info("transfer ended", extra={"call": call_sid, "status": status or "-"})
        await state.note(call_sid, transfer_status=status or None)
        return Response(transfers.after_dial(status, _public_base(request, settings)), media_type=TWIML_MEDIA_TYPE)

    @app.post(twiml.DIAL_CHOICE_PATH)
    async def dial_choice(request: Request, form: SignedForm) -> Response:
        digits = form.get("Digits", "")
        body = transfers.choice(digits, _public_base(request, settings))
        call_sid = form.get("CallSid", "-")
        if transfers.callback_chosen(digits):
            log.info("call-back requested", extra={"call": call_sid})
            await state.note(call_sid, callback_requested=True)
        return Response(body, media_type=TWIML_MEDIA_TYPE)

    @app.post(twiml.MESSAGE_RECORDED_PATH)
    async def message_recorded(request: Request, form: SignedForm) -> Response:
        call_sid = form.get("CallSid", "-")
        log.info("message recorded", extra={"call": call_sid})
        await state.note(call_sid, message_recording_sid=form.get("RecordingSid") or None)
        return Response(transfers.message_recorded(), media_type=TWIML_MEDIA_TYPE)

    @app.websocket("/twilio/media")
    async def media(websocket: WebSocket) -> None:
        if state.services is None:
            await websocket.close(code=1013)  # try again later: models are still loading
            return
        base = _public_base_of_stream(websocket, settings)

        async def before_closing(call: CallInfo) -> bool:
            # Twilio's next request (/twilio/after-stream) may reach another instance, which reads the outcome
            # from the database: write it first (briefly; a slow database must not keep the caller waiting).
            if state.writer is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(state.writer.flush()), HANDOVER_WRITE_TIMEOUT_S)
            return await transfers.redirect(call, public_base_url=base)

        call = await run_media_stream(
            websocket, state.services, state.registry, state.counters, redirect=before_closing
        )
        if call is not None:
            call_metrics.call_ended(call)

    return app
