"""``GET /metrics``: the app's Prometheus metrics, in the text exposition format.

Each app has its own `CollectorRegistry`, never prometheus_client's global one, so several apps in one process (the
tests, the in-process replay) keep separate counts. Telephony observes voice from the outside: speech recognition
and synthesis are timed by wrapping the shared models (`CallMetrics.instrument`), response latency is read from
the call's turn records when its stream ends, so `voice/` knows nothing about Prometheus.

Response latency is what the caller waits: from the arrival of their last voiced frame to the first audio of the
reply (each spoken turn's latency budget, `voice.latency`), the same measure as the QA replay's (which times it on
the caller's side of the socket). The part after the end of the turn was decided is reported apart, as turn
processing: it leaves out the silence the end of turn waits for, so it is not what a caller waits.

Metrics hold counts and timings only, no personal data. They are open unless ``VOICE_AGENT_METRICS_TOKEN`` is set,
in which case a scrape needs it as a bearer token.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import time
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from telephony.calls import CallInfo, CallRegistry
from telephony.session import StreamCounters
from voice.events import Action, Decision
from voice.pipeline import VoiceServices

# Response latency: the target is a median of 0.45 s and a 95th percentile of 0.7 s from the last voiced frame.
_LATENCY_BUCKETS_S = (0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0)
# Whisper tiny.en takes ~0.3-0.5 s per utterance on two cores; a cached phrase takes microseconds.
_MODEL_BUCKETS_S = (0.005, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0)
NO_DECISION_REASON = "no_decision"
"""The transfer reason of a stream that ended without a decision (a fault): Twilio then dials a person."""


class _LiveCollector(Collector):
    """Values read at scrape time from the call registry and the stream counters."""

    def __init__(self, calls: CallRegistry, counters: StreamCounters) -> None:
        self._calls = calls
        self._counters = counters

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "voice_agent_active_calls", "Calls whose media stream (or browser call) is live.", self._calls.live_count()
        )
        yield CounterMetricFamily(
            "voice_agent_streams", "Media streams and browser calls accepted.", self._counters.streams
        )
        yield CounterMetricFamily(
            "voice_agent_protocol_errors",
            "Malformed media-stream or browser-call messages ignored (bad JSON, binary or huge frames, bad fields).",
            self._counters.protocol_errors,
        )
        yield CounterMetricFamily(
            "voice_agent_protocol_closes",
            "Streams and browser calls closed for breaking the protocol (media before start, a second start, ...).",
            self._counters.protocol_closes,
        )


class CallMetrics:
    """The metrics of one app, in their own registry."""

    def __init__(self, calls: CallRegistry, counters: StreamCounters) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_LiveCollector(calls, counters))
        self.response_latency = Histogram(
            "voice_agent_response_latency_seconds",
            "Spoken turns: from the arrival of the caller's last voiced frame to the first audio of the reply sent "
            "(VAD, end-of-turn silence, speech recognition, engine, TTS).",
            buckets=_LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.turn_processing = Histogram(
            "voice_agent_turn_processing_seconds",
            "From the end of a spoken turn being decided (or a key press taken) to the first audio of the reply sent: "
            "the part of the response after the end of turn (waiting for the transcript, engine, TTS).",
            buckets=_MODEL_BUCKETS_S,
            registry=self.registry,
        )
        self.asr = Histogram(
            "voice_agent_asr_seconds", "Time of one transcription.", buckets=_MODEL_BUCKETS_S, registry=self.registry
        )
        self.tts = Histogram(
            "voice_agent_tts_seconds",
            "Time to get one reply's audio; source is cached (the phrase cache) or synthesised.",
            ["source"],
            buckets=_MODEL_BUCKETS_S,
            registry=self.registry,
        )
        self.transfers = Counter(
            "voice_agent_transfers",
            "Calls sent to a person, by the rule that decided (technical_failure: an ASR or TTS fault; "
            "handed_over_now: still live at the end of a drain before a stop; "
            f"over_capacity: turned away by admission control; {NO_DECISION_REASON}: the stream ended undecided).",
            ["reason"],
            registry=self.registry,
        )
        self.calls_rejected = Counter(
            "voice_agent_calls_rejected",
            "Calls turned away by admission control (VOICE_AGENT_MAX_CALLS) and dialled straight to a person.",
            registry=self.registry,
        )

    def instrument(self, services: VoiceServices) -> VoiceServices:
        """The same services, with speech recognition and synthesis timed into this app's histograms."""
        return dataclasses.replace(
            services,
            recognizer=_TimedRecognizer(services.recognizer, self.asr),
            speech=self.timed_speech(services.speech),
        )

    def timed_speech(self, speech: Any) -> Any:
        """The phrase cache with its lookups timed into this app's histogram (same interface, by delegation)."""
        return _TimedSpeech(speech, self.tts)

    def call_ended(self, call: CallInfo) -> None:
        """Count a call whose media stream has ended: its reply latencies and, if it was transferred, why."""
        for record in call.records:
            if record.latency is not None and record.latency.first_audio_ms is not None:
                self.response_latency.observe(record.latency.first_audio_ms / 1000)
            if record.processing_ms is not None:
                self.turn_processing.observe(record.processing_ms / 1000)
        if call.outcome is not None and call.outcome.action is Action.TRANSFER:
            self.transfers.labels(reason=call.outcome.rule).inc()

    def turned_away(self, decision: Decision) -> None:
        """Count a call that admission control sent straight to a person."""
        self.calls_rejected.inc()
        self.transfers.labels(reason=decision.rule).inc()

    def undecided_stream_dialled(self) -> None:
        """Count a stream that ended without a decision and is dialled to a person by ``/twilio/after-stream``."""
        self.transfers.labels(reason=NO_DECISION_REASON).inc()

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The metrics and their content type, in the format the scraper's Accept header asks for (Prometheus'
        text format 0.0.4 by default, OpenMetrics when asked)."""
        encode, content_type = choose_encoder(accept or "")
        return encode(self.registry), content_type


class _TimedRecognizer:
    """A speech recogniser whose successful transcriptions are timed (it runs in the worker pool's threads)."""

    def __init__(self, recognizer: Any, histogram: Histogram) -> None:
        self._recognizer = recognizer
        self._histogram = histogram

    def transcribe(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        transcript = self._recognizer.transcribe(*args, **kwargs)
        self._histogram.observe(time.perf_counter() - started)
        return transcript

    def __getattr__(self, name: str) -> Any:
        return getattr(self._recognizer, name)


class _TimedSpeech:
    """A phrase cache whose successful lookups are timed, labelled by whether the phrase had to be synthesised."""

    def __init__(self, speech: Any, histogram: Histogram) -> None:
        self._speech = speech
        self._histogram = histogram

    def get_or_synthesize(self, text: str) -> Any:
        source = "cached" if text in self._speech else "synthesised"
        started = time.perf_counter()
        audio = self._speech.get_or_synthesize(text)
        self._histogram.labels(source=source).observe(time.perf_counter() - started)
        return audio

    def __contains__(self, text: object) -> bool:
        return text in self._speech

    def __getattr__(self, name: str) -> Any:
        return getattr(self._speech, name)


_bearer = HTTPBearer(scheme_name="MetricsToken", auto_error=False, description="VOICE_AGENT_METRICS_TOKEN, when set")


async def _metrics_access(request: Request, bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]):
    """Open without a configured metrics token; with one, the same token as a bearer (compared in constant time)."""
    token = request.app.state.voice.settings.metrics_token
    if token is None:
        return
    presented = bearer.credentials if bearer is not None else ""
    # Digests of equal size: the comparison's time says nothing about the token's length or content.
    expected = hashlib.sha256(token.get_secret_value().encode()).digest()
    if not hmac.compare_digest(hashlib.sha256(presented.encode()).digest(), expected):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="set Authorization: Bearer <VOICE_AGENT_METRICS_TOKEN>",
            headers={"WWW-Authenticate": 'Bearer realm="voice-agent-metrics"'},
        )


router = APIRouter()


@router.get("/metrics", dependencies=[Depends(_metrics_access)])
async def metrics(request: Request) -> Response:
    # On the event loop, like every reader of the call registry.
    body, content_type = request.app.state.voice.metrics.exposition(request.headers.get("accept"))
    return Response(body, headers={"Content-Type": content_type})
