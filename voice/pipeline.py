"""One call's voice pipeline: caller audio and keys in; decisions and the agent's audio out.

    caller PCM at the transport's rate -> 16 kHz history for ASR (a stream resampler; none at 16 kHz)
    caller PCM at the input rate (when the VAD scores that rate; else the 16 kHz audio) -> streaming VAD
        -> turn detector
        SpeechStarted while the agent is still audible -> barge-in: interrupt playback, stop speaking, tell the engine
        while the caller speaks -> partial ASR of the turn so far when the worker pool is idle (voice/partials.py)
        PauseStarted -> speculative ASR of the turn so far once its audio is in, and Smart Turn's score of how it ends
            (worker pool); a partial covering the turn may pick a complete request's reply, spoken when the
            complete-request silence has passed and confirmed or cleared by the pause's transcript
            -> end-of-turn policy (words, sound, silence): the pause's silence
        SpeechResumed -> the speculative transcript is stale, unless the pause's silence is still being chosen: if
            the chosen silence is no longer than the pause was, the turn ends at the pause after all (the same audio
            gives the same turns however fast the choice was made)
        TurnEnded -> the speculative transcript, or ASR (worker pool) -> dialogue engine
            -> TTS sentence by sentence (worker pool; an uncached reply's first sentence is sent before the rest is
               synthesised) -> PCM at the rate the output declares -> `AgentOutput.play`, one mark per sentence

Audio is mono float32 PCM in [-1.0, 1.0] both ways; the transport converts its wire encoding at its edge and
declares its rates: the input rate with each `feed_audio` call, the output rate as `AgentOutput.sample_rate_hz`.
The pipeline knows no transport: it talks to the wire through `AgentOutput` (play audio followed by a mark,
interrupt, hand the call over) and learns what the caller has heard from `marked`. Durations come from sample
counts. Turns are answered one at a time, in order, by a single task per call; the event loop only resamples,
scores 32 ms VAD windows (~0.1 ms) and queues.

Every spoken turn's record carries its latency budget (`voice.latency`): when the VAD heard the silence, when the
end of the turn was decided and by which rule, when a transcript of the whole turn existed and when the first audio
was sent, each from the arrival of the caller's last voiced frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from voice.asr import SAMPLE_RATE_HZ as ASR_SAMPLE_RATE_HZ
from voice.asr import SpeechRecognizer
from voice.dialogue import DialogueEngine, DialogueState
from voice.end_of_turn import (
    EndOfTurn,
    EndOfTurnChoice,
    EndOfTurnOptions,
    EndOfTurnPolicy,
    EndOfTurnRule,
    TurnEndModel,
)
from voice.events import HAND_OVER_NOW_RULE, TECHNICAL_FAILURE_RULE, Action, Decision, Dtmf, Transcript
from voice.latency import CallerClock, LatencyBudget, TurnTiming
from voice.partials import PartialOptions, PartialTranscriber
from voice.prompts import Catalogue
from voice.redaction import RedactionBuffer, redact
from voice.resample import StreamResampler, resample
from voice.second_opinion import SecondOpinion
from voice.speculation import SpeculativeTranscriber, TurnSpan
from voice.tts import PhraseCache
from voice.turns import (
    PauseStarted,
    SpeechResumed,
    SpeechStarted,
    TurnDetector,
    TurnEnded,
    TurnEvent,
    TurnOptions,
    turn_samples,
)
from voice.vad import SAMPLE_RATES_HZ as VAD_SAMPLE_RATES_HZ
from voice.vad import WINDOW_MS as VAD_WINDOW_MS
from voice.vad import StreamingVad
from voice.workers import ModelWorkers

log = logging.getLogger(__name__)

# Audio kept for cutting out utterances: the longest turn plus padding, so memory stays bounded on long calls.
_HISTORY_MS = 35_000
# Audio kept on each side of a detected turn. After exact digital silence (a muted line) Silero marks the start of
# speech up to ~0.55 s late, which clipped "Agent" off "Agent, please" with 0.2 s; Whisper ignores extra silence.
_TURN_PAD_MS = 600
# A pause's transcription starts once the 16 kHz history holds this much audio past the turn's last voiced window:
# the history lags the VAD by the resampler's delay (60-115 ms from the telephone rate), so a pause reported early
# may otherwise be transcribed without its last word.
_PAUSE_AUDIO_AFTER_MS = 32
# Caller turns whose records a later turn's redaction may still correct (RedactionBuffer remembers 6).
_REDACTION_MEMORY_TURNS = 8
# How long to wait for the transport to confirm that the last words before a handover were played, beyond their
# length.
_HANDOVER_GRACE_S = 5.0


class AgentOutput(Protocol):
    """What the pipeline needs from the wire."""

    @property
    def sample_rate_hz(self) -> int:
        """The rate, in Hz, of the audio `play` takes: the rate the transport plays, so that it need not resample."""

    async def play(self, audio: np.ndarray, mark: str) -> None:
        """Queue audio for playback, followed by a mark named `mark` that `CallPipeline.marked` reports back.

        Args:
            audio: mono float32 PCM in [-1.0, 1.0] at `sample_rate_hz`; the transport encodes and frames it.
            mark: the name to report once playback has reached the end of `audio` (or was interrupted).
        """

    async def interrupt(self) -> None:
        """Drop all audio not yet played (barge-in); the pending marks are still reported."""

    async def hand_over(self, decision: Decision) -> None:
        """End the automated part of the call: transfer to a person or hang up, as `decision` says."""

    def decided(self, record: TurnRecord) -> None:
        """A decision was taken (before its reply is spoken): for call records and the agent desk."""


@dataclass(slots=True)
class VoiceServices:
    """The heavy, shared parts: loaded once per process, used by every call."""

    engine: DialogueEngine
    recognizer: SpeechRecognizer
    speech: PhraseCache
    workers: ModelWorkers
    turn_options: TurnOptions = field(default_factory=TurnOptions)
    """End-of-turn detection; with `pause_report_ms` set, pauses are transcribed speculatively."""
    end_of_turn: EndOfTurnOptions = field(default_factory=EndOfTurnOptions)
    """Adaptive end of turn, which reads the pause's speculative transcript (so it needs `pause_report_ms`)."""
    turn_end_model: TurnEndModel | None = None
    """Smart Turn (`voice.turn_model.SmartTurn`), heard beside the words by the adaptive end of turn; None: the words
    and the silence decide."""
    partials: PartialOptions = field(default_factory=PartialOptions)
    """Partial transcripts while the caller speaks, and replies started from them (voice/partials.py); they take
    effect only with speculative ASR and the adaptive end of turn, and without `turn_end_model`."""
    stream_first_sentence: bool = True
    """Send an uncached reply's first sentence as soon as it is synthesised, rather than after the whole reply."""
    asr_timeout_s: float = 10.0
    """Longest a transcription may take before the call is handed to a person."""
    second_opinion: SecondOpinion | None = None
    """A larger recogniser asked again about turns the engine does not understand (voice/second_opinion.py); None:
    never."""
    tts_timeout_s: float = 10.0
    """Longest a synthesis may take before the call is handed to a person."""


@dataclass(slots=True)
class TurnRecord:
    """One exchange of the call, for the call record and the QA report."""

    caller: Transcript | Dtmf | None
    """What the caller said or pressed (None for the greeting)."""
    decision: Decision
    """What the engine decided."""
    processing_ms: float | None = None
    """From detecting the end of the caller's turn to sending the first agent audio (ASR + engine + TTS)."""
    heard: bool = False
    """The whole reply was played to the caller (its last mark came back)."""
    interrupted: bool = False
    """The caller spoke over the reply and it was cleared."""
    end_of_turn: EndOfTurn | None = None
    """Why the caller's spoken turn was taken as over (rule, silence, speculative transcript); None otherwise."""
    latency: LatencyBudget | None = None
    """Where the spoken turn's response time went, from the caller's last voiced frame; None for other records."""


class _AudioHistory:
    """The last seconds of the call's 16 kHz audio, addressable by stream time."""

    def __init__(self, keep_ms: int) -> None:
        self._keep = keep_ms * ASR_SAMPLE_RATE_HZ // 1000
        self._chunks: list[np.ndarray] = []
        self._size = 0
        self.start_ms = 0

    def append(self, samples: np.ndarray) -> None:
        self._chunks.append(samples)
        self._size += samples.size
        if self._size > 2 * self._keep:
            # Compact rarely (every ~35 s of audio) rather than copying on every frame.
            joined = np.concatenate(self._chunks)[-self._keep :]
            dropped = self._size - joined.size
            self.start_ms += dropped * 1000 // ASR_SAMPLE_RATE_HZ
            self._chunks, self._size = [joined], joined.size

    @property
    def end_ms(self) -> float:
        """Stream time of the end of the audio held."""
        return self.start_ms + self._size * 1000 / ASR_SAMPLE_RATE_HZ

    def samples(self) -> np.ndarray:
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        return self._chunks[0] if self._chunks else np.zeros(0, dtype=np.float32)


@dataclass(frozen=True, slots=True)
class _EndedTurn:
    """A spoken turn that ended, queued for the call's turn task."""

    turn: TurnEnded
    detected: float
    """`time.perf_counter()` when the end was detected."""
    end_of_turn: EndOfTurn
    """Why it was taken as over."""
    speculative: asyncio.Future[Transcript] | None
    """Its speculative transcript (possibly still being made, or failed), or None: transcribe it."""
    timing: TurnTiming | None = None
    """Its instants so far, for the latency budget; None when its audio was no longer known."""


@dataclass(slots=True)
class _Pause:
    """A reported pause of the current turn and the silence chosen for it."""

    span: TurnSpan
    """The turn so far, up to the pause."""
    choice: EndOfTurnChoice
    """The silence in force: the longest while the transcript is being made, then the policy's choice."""
    finished: asyncio.Future[float | None] | None
    """Smart Turn's score of the turn so far (None inside when it failed); None when the model is off or has not
    been asked (only unclear words are scored, unless `EndOfTurnOptions.smart_turn_every_pause`)."""
    decided: bool = False
    """The policy has chosen (`choice` is its choice)."""
    resumed: bool = False
    """The caller spoke again before the policy chose: the choice may still end the turn at this pause."""


@dataclass(slots=True)
class _EarlyReply:
    """A reply picked from a partial transcript, spoken once the complete-request silence has passed and before the
    pause's own transcript is ready; that transcript's decision confirms it or replaces it."""

    span: TurnSpan
    """The turn up to the pause it was picked for."""
    decision: Decision
    """The engine's preview of the partial transcript (never kept in the engine's state)."""
    silence_ms: int
    """The complete-request silence after which it is spoken."""
    speaking: _Speaking | None = None
    """Its playback, once started; its record is a placeholder until the final decision adopts it."""
    first_audio: float | None = None
    """`time.perf_counter()` when its first audio was sent."""
    sent: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when its first audio was sent, or when it stopped without sending any."""
    turn_ended: bool = False
    """Its turn ended at its pause: only the final decision can settle it now."""


EARLY_REPLY_CONFIRMED = "answered from a partial transcript before the end of the turn"
"""Reason on a decision whose reply was already playing, started from a partial transcript, when the final transcript
made the same decision (so its first audio may precede the end of the turn)."""


class _SynthesisError(Exception):
    """Speech synthesis of a reply failed (the cause is chained)."""


@dataclass(slots=True)
class _Speaking:
    """The reply being played: its marks still unconfirmed and whether it may be interrupted."""

    record: TurnRecord
    pending_marks: set[str]
    interruptible: bool
    done: asyncio.Event
    producing: bool = True
    """Sentences are still being synthesised: the reply is not over when the marks sent so far come back."""


class CallPipeline:
    """Per-call state and tasks. Create one per call; `start`, feed it, then `close`."""

    def __init__(self, services: VoiceServices, output: AgentOutput, call_id: str = "call") -> None:
        self._services = services
        self._output = output
        self._call_id = call_id
        self._engine = services.engine
        self._state: DialogueState | None = None
        # One per (input rate, output rate): each holds its own filter state; equal rates pass audio through untouched.
        self._resamplers: dict[tuple[int, int], StreamResampler] = {}
        # Made for the first audio's rate: it scores that rate itself when it can (no resampler delays it).
        self._vad: StreamingVad | None = None
        self._turns = TurnDetector(services.turn_options, window_ms=VAD_WINDOW_MS)
        self._history = _AudioHistory(_HISTORY_MS)
        # When the caller's audio arrived and was scored, for each turn's latency budget.
        self._clock = CallerClock()
        # The last speculative transcript that became ready, and when: the turn that claims it was transcribed then.
        self._transcript_ready: tuple[TurnSpan, float] | None = None
        # Personal data is redacted the moment a transcript exists: the engine, the records, the desk and the logs
        # only ever see the redacted text. One buffer per call, so a card number read over several turns is caught.
        self._redactor = RedactionBuffer(services.engine.catalogue.language)
        self._redacted_turns: dict[int, TurnRecord] = {}
        self._inbox: asyncio.Queue[_EndedTurn | Dtmf] = asyncio.Queue()
        language = services.engine.catalogue.language
        self._end_of_turn = EndOfTurnPolicy(services.end_of_turn, language)
        # The current turn's last reported pause and the silence chosen for it.
        self._pause: _Pause | None = None
        # A reported pause whose transcription waits for its audio to reach the history.
        self._pause_audio_due: TurnSpan | None = None
        self._speculation: SpeculativeTranscriber | None = None
        if services.turn_options.pause_report_ms is not None:
            self._speculation = SpeculativeTranscriber(self._transcribe, on_ready=self._pause_transcribed)
        self._partials: PartialTranscriber | None = None
        if (
            services.partials.enabled
            and self._speculation is not None
            and services.end_of_turn.enabled
            and services.turn_end_model is None
        ):
            self._partials = PartialTranscriber(
                self._transcribe, services.partials, can_start=lambda: services.workers.idle
            )
        # The reply picked from a partial for the current pause (or spoken, awaiting its turn's final decision).
        self._early: _EarlyReply | None = None
        # Why early replies were cleared since the last decision: added to the next decision's reasons.
        self._early_notes: list[str] = []
        # The turn task is answering something (its engine state is about to change).
        self._answering = False
        self._worker: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._speaking: _Speaking | None = None
        self._mark_counter = 0
        self._handed_over = False
        # A final decision (transfer or goodbye) is being spoken or handed over: `hand_over_now` leaves it be.
        self._final = False
        # The mark that ends `hand_over_now`'s apology, and the event set when it comes back.
        self._apology: tuple[str, asyncio.Event] | None = None
        self.records: list[TurnRecord] = []
        """Every exchange so far, greeting first."""
        self.failure: str | None = None
        """Why the pipeline gave up on the automated conversation, if it did (ASR/TTS error or timeout)."""

    @property
    def finished(self) -> bool:
        """The call was handed over (transfer or goodbye); no more input is answered."""
        return self._handed_over

    @property
    def catalogue(self) -> Catalogue:
        """The call's catalogue, for its whole length (a reload applies to the next call)."""
        return self._engine.catalogue

    # --- input from the wire (called on the event loop; cheap) --------------------------------------------------

    async def start(self) -> None:
        """Greet the caller and start answering turns (nothing, if the call was already handed over)."""
        if self._handed_over:
            return
        self._state, greeting = self._engine.start()
        self._worker = asyncio.create_task(self._answer_turns(), name=f"turns-{self._call_id}")
        await self._speak(TurnRecord(caller=None, decision=greeting), started=None)

    def feed_audio(self, pcm: np.ndarray, sample_rate_hz: int) -> None:
        """Take the caller's audio, as it arrives.

        Args:
            pcm: mono float PCM (float32 or float64) in [-1.0, 1.0], any length (normally one transport frame);
                the transport converts its wire encoding (for example int16 with `voice.pcm.pcm16_to_float32`).
            sample_rate_hz: the rate of `pcm`, in Hz. The VAD scores audio at the first audio's rate when it can
                (16 kHz or half that), else at 16 kHz; ASR takes 16 kHz; audio at those rates is used as it is.

        Raises:
            TypeError: `pcm` is not a floating-point array.
            ValueError: `pcm` is not 1-D, or `sample_rate_hz` is not a positive integer.
        """
        if self._handed_over or len(pcm) == 0:
            return
        now = time.perf_counter()
        # The 16 kHz history lags the VAD by the resampler's delay (60-115 ms from the telephone rate): audio cut out
        # for ASR when the VAD has just heard something may not all be there yet. A pause is reported 200 ms into the
        # silence, by when the turn's last voiced window is.
        samples_16k = self._resampled(pcm, sample_rate_hz, ASR_SAMPLE_RATE_HZ)
        self._clock.fed(pcm, sample_rate_hz, now)
        if samples_16k.size:
            self._history.append(samples_16k)
            if self._pause_audio_due is not None:
                self._transcribe_pause_when_heard()
        if self._vad is None:
            vad_rate = sample_rate_hz if sample_rate_hz in VAD_SAMPLE_RATES_HZ else ASR_SAMPLE_RATE_HZ
            self._vad = StreamingVad(vad_rate)
        vad_rate = self._vad.sample_rate_hz
        if vad_rate == sample_rate_hz:
            for_vad = pcm
        elif vad_rate == ASR_SAMPLE_RATE_HZ:
            for_vad = samples_16k
        else:
            for_vad = self._resampled(pcm, sample_rate_hz, vad_rate)
        probabilities = self._vad.process(for_vad)
        if probabilities.size == 0:
            return
        self._clock.scored(probabilities.size, self._vad.window_ms, now)
        self._on_turn_events(self._turns.process(probabilities))
        if self._partials is not None:
            self._partials_heard()

    def _resampled(self, pcm: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
        resampler = self._resamplers.get((from_hz, to_hz))
        if resampler is None:
            resampler = self._resamplers[from_hz, to_hz] = StreamResampler(from_hz, to_hz)
        return resampler.process(pcm)

    def _on_turn_events(self, events: list[TurnEvent]) -> None:
        for event in events:
            match event:
                case SpeechStarted():
                    self._barge_in()
                case PauseStarted(start_ms=start_ms, end_ms=end_ms):
                    self._pause = None
                    self._pause_audio_due = None
                    if self._speculation is not None:
                        span = TurnSpan(start_ms, end_ms)
                        if self._services.end_of_turn.enabled:
                            # Hold the turn open (up to the longest silence) until the transcript says how long.
                            waiting = self._end_of_turn.awaiting_transcript()
                            self._pause = _Pause(span, waiting, None)
                            self._on_turn_events(self._turns.set_pause_silence(waiting.silence_ms, end_ms))
                        self._pause_audio_due = span
                        self._transcribe_pause_when_heard()
                        self._arm_early(span)
                case SpeechResumed():
                    self._withdraw_early("the caller went on speaking")
                    pause = self._pause
                    if pause is not None and not pause.decided:
                        # Keep the pause's transcript: a choice made later may still end the turn at the pause.
                        pause.resumed = True
                    else:
                        self._pause = None
                        self._pause_audio_due = None
                        if self._speculation is not None:
                            self._speculation.discard()
                case TurnEnded():
                    self._turn_ended(event)

    def _transcribe_pause_when_heard(self) -> None:
        """Start the reported pause's transcription (and Smart Turn's score) once the history holds its audio."""
        span = self._pause_audio_due
        if span is None or self._speculation is None:
            return
        if self._history.end_ms < span.end_ms + _PAUSE_AUDIO_AFTER_MS:
            return  # fed audio will call again
        self._pause_audio_due = None
        self._speculation.request(span, self._turn_audio(span.start_ms, span.end_ms))
        pause = self._pause
        if pause is not None and pause.span == span and self._services.end_of_turn.smart_turn_every_pause:
            pause.finished = self._score_turn_end(span)

    def _turn_audio(self, start_ms: int, end_ms: int, after_ms: int = _TURN_PAD_MS) -> np.ndarray:
        """The turn's audio, `_TURN_PAD_MS` before it and `after_ms` after it (as far as the history holds)."""
        turn = TurnEnded(start_ms - _TURN_PAD_MS, end_ms + after_ms)
        return turn_samples(self._history.samples(), turn, buffer_start_ms=self._history.start_ms, pad_ms=0)

    async def _transcribe(self, samples_16k: np.ndarray, start_ms: int) -> Transcript:
        services = self._services
        return await services.workers.run(
            services.recognizer.transcribe, samples_16k, start_ms, timeout_s=services.asr_timeout_s
        )

    def _score_turn_end(self, span: TurnSpan) -> asyncio.Future[float | None] | None:
        """Start Smart Turn on the turn so far (worker pool); None when no model is configured."""
        model = self._services.turn_end_model
        if model is None:
            return None
        # Smart Turn hears the turn up to its last voiced window: silence after an unfinished phrase makes it sound
        # finished (docs/benchmarks.md).
        samples_16k = self._turn_audio(span.start_ms, span.end_ms, after_ms=0)

        async def score() -> float | None:
            try:
                return await self._services.workers.run(
                    model.probability, samples_16k, timeout_s=self._services.asr_timeout_s
                )
            except Exception as error:  # the words and the silence still decide
                log.warning("end-of-turn model failed: %r", error, extra={"call": self._call_id})
                return None

        task = asyncio.get_running_loop().create_task(score())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def _pause_transcribed(self, span: TurnSpan, transcript: Transcript | None) -> None:
        """The turn so far is transcribed while the caller is silent: choose how long this pause may last."""
        if transcript is not None:
            self._transcript_ready = (span, time.perf_counter())
        pause = self._pause
        if self._handed_over or pause is None or pause.span != span:
            return
        if transcript is None:
            self._choose(pause, self._end_of_turn.fixed("the pause's speculative transcription failed"))
            return
        preview = self._preview(transcript) if self._state is not None and transcript.text else None
        tail = self._clock.voiced_tail_ms(span.start_ms, span.end_ms)
        finished = pause.finished
        if finished is None or finished.done():
            score = finished.result() if finished is not None else None
            choice = self._end_of_turn.choose(transcript, preview, score, tail)
            if finished is not None or choice.rule is not EndOfTurnRule.UNCLEAR:
                self._choose(pause, choice)
                return
            # Unclear words: how they sounded decides, if Smart Turn is on (asked only now: see EndOfTurnOptions).
            finished = pause.finished = self._score_turn_end(span)
            if finished is None:
                self._choose(pause, choice)
                return

        async def when_scored() -> None:
            # Waited for, not skipped: whether the score is ready in time must not change the decision.
            score = await finished
            self._choose(pause, self._end_of_turn.choose(transcript, preview, score, tail))

        task = asyncio.get_running_loop().create_task(when_scored())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _choose(self, pause: _Pause, choice: EndOfTurnChoice) -> None:
        """Apply the policy's choice to its pause, even when the caller has spoken since (see `_Pause.resumed`)."""
        if self._handed_over or self._pause is not pause:
            return  # another pause was reported since, or the turn ended
        pause.choice, pause.decided = choice, True
        early = self._early
        if early is not None and early.span == pause.span and choice.silence_ms > early.silence_ms:
            self._withdraw_early(f"the pause's own transcript chose rule {choice.rule.value}, not a complete request")
        if not pause.resumed:
            self._on_turn_events(self._turns.set_pause_silence(choice.silence_ms, pause.span.end_ms))
            return
        events = self._turns.end_at_resumed_pause(choice.silence_ms, pause.span.end_ms)
        if not events:
            # The caller went on within the chosen silence: the turn goes on, and the pause's transcript is stale.
            self._pause = None
            if self._speculation is not None:
                self._speculation.discard()
            return
        log.info(
            "turn ended at a pause the caller had spoken after (its silence was chosen late)",
            extra={"call": self._call_id},
        )
        self._on_turn_events(events)

    def _partials_heard(self) -> None:
        """After each batch of VAD windows: a partial while the caller speaks, the early reply once its silence is
        over."""
        turns, partials = self._turns, self._partials
        if partials is None or not turns.in_speech:
            return
        if turns.pause_ms == 0:
            span = TurnSpan(turns.turn_start_ms, turns.now_ms)
            partials.heard(span, lambda: self._turn_audio(span.start_ms, span.end_ms))
            return
        early, pause = self._early, self._pause
        if (
            early is not None
            and early.speaking is None
            and turns.pause_ms >= early.silence_ms
            and pause is not None
            and pause.span == early.span
            and not pause.decided
            and self._may_answer_early()
        ):
            self._start_early(early, partials)

    def _may_answer_early(self) -> bool:
        """Nothing else is being answered or said: an early reply changes nothing the engine knows."""
        return (
            not self._answering
            and self._inbox.empty()
            and self._speaking is None
            and not self._final
            and not self._handed_over
            and self._state is not None
        )

    def _arm_early(self, span: TurnSpan) -> None:
        """A pause began: pick a reply from a partial covering the turn so far, if the rules allow one.

        Only a complete request (the end-of-turn rule that ends the turn soonest) answered with a reply: a transfer
        or a goodbye cannot be taken back, so those always wait for the final transcript.
        """
        if self._early is not None and self._early.speaking is not None:
            return  # a spoken early reply still awaits its turn's decision
        self._early = None
        partials = self._partials
        if partials is None or not self._may_answer_early():
            return
        partial = partials.covering(span)
        if partial is None or not partial.text:
            return
        preview = self._preview(partial)
        choice = self._end_of_turn.choose(
            partial, preview, None, self._clock.voiced_tail_ms(span.start_ms, span.end_ms)
        )
        if choice.rule is EndOfTurnRule.COMPLETE_REQUEST and preview.action is Action.REPLY:
            self._early = _EarlyReply(span, preview, choice.silence_ms)

    def _start_early(self, early: _EarlyReply, partials: PartialTranscriber) -> None:
        record = TurnRecord(caller=None, decision=early.decision)  # a placeholder, not in `records`
        speaking = _Speaking(record, pending_marks=set(), interruptible=True, done=asyncio.Event())
        early.speaking = self._speaking = speaking
        partials.stats.early_replies += 1
        log.info("early reply from a partial transcript", extra={"call": self._call_id})
        task = asyncio.get_running_loop().create_task(self._play_early(early))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _play_early(self, early: _EarlyReply) -> None:
        speaking = early.speaking
        assert speaking is not None

        def sent(now: float) -> None:
            if early.first_audio is None:
                early.first_audio = now
                early.sent.set()

        try:
            sent_samples = await self._play_sentences(
                speaking, early.decision.reply, "early", lambda: not speaking.record.interrupted, sent
            )
        except _SynthesisError as error:  # the final decision's reply is then spoken the usual way
            log.warning("early reply failed: %r", error, extra={"call": self._call_id})
            speaking.record.interrupted = True
            sent_samples = 0
        finally:
            early.sent.set()
        self._played(speaking, sent_samples)

    def _withdraw_early(self, why: str) -> None:
        """The early reply for the current turn no longer applies: forget it, and clear it if it is being spoken."""
        early = self._early
        if early is None or early.turn_ended:
            return
        self._early = None
        if early.speaking is not None:
            self._clear_early(early, why)

    def _clear_early(self, early: _EarlyReply, why: str) -> asyncio.Task[None] | None:
        """Stop an early reply's playback (`clear`) and note why for the next decision; the `clear` being sent, if
        one was needed."""
        assert early.speaking is not None and self._partials is not None
        self._partials.stats.corrected += 1
        self._early_notes.append(
            f"a reply started from a partial transcript ({early.decision.rule}) was cleared: {why}"
        )
        speaking = early.speaking
        if speaking.record.interrupted:
            return None  # already cleared (the caller spoke over it)
        speaking.record.interrupted = True
        if self._speaking is speaking:
            self._speaking = None
        task = asyncio.get_running_loop().create_task(self._output.interrupt())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def _drop_early(self, span: TurnSpan, why: str) -> None:
        """The turn `span` gets no decision: clear its early reply, if one is being spoken."""
        early = self._early
        if early is not None and early.span == span and early.speaking is not None:
            self._early = None
            self._clear_early(early, why)

    async def _settle_early(
        self, span: TurnSpan | None, decision: Decision, record: TurnRecord, started: float, timing: TurnTiming | None
    ) -> bool:
        """Confirm the early reply of this turn with its final decision (True: it is `record`'s reply, already
        playing), or clear it; False when there was none or it was cleared."""
        early = self._early
        if span is None or early is None or early.span != span or early.speaking is None:
            return False
        self._early = None
        await early.sent.wait()
        speaking = early.speaking
        same = decision.action is Action.REPLY and decision.reply == early.decision.reply
        if not same or speaking.record.interrupted or early.first_audio is None:
            why = "the final transcript decided otherwise" if same is False else "it was spoken over or failed"
            clearing = self._clear_early(early, why)
            if clearing is not None:
                await clearing  # before the right reply is sent, so that `clear` cannot drop it
            return False
        assert self._partials is not None
        self._partials.stats.confirmed += 1
        record.decision = dataclasses.replace(decision, reasons=(*decision.reasons, EARLY_REPLY_CONFIRMED))
        record.heard = speaking.record.heard
        # Its first audio went out when the early reply started, possibly before the end of the turn was detected.
        record.processing_ms = max(0.0, (early.first_audio - started) * 1000)
        if timing is not None:
            timing.first_audio = early.first_audio
            record.latency = timing.budget()
        speaking.record = record
        return True

    def _preview(self, transcript: Transcript) -> Decision:
        """What the engine would decide on `transcript` now (pure: the state is not kept); it only ever sees
        redacted text."""
        heard = dataclasses.replace(transcript, text=redact(transcript.text, self._engine.catalogue.language).text)
        _state, preview = self._engine.step(self._state, heard)
        return preview

    def _turn_ended(self, turn: TurnEnded) -> None:
        span = TurnSpan(turn.start_ms, turn.end_ms)
        pause, self._pause = self._pause, None
        self._pause_audio_due = None
        early = self._early
        if early is not None and not early.turn_ended:
            if early.span == span and early.speaking is not None:
                early.turn_ended = True
            else:
                self._withdraw_early("the turn ended elsewhere")
        if turn.silence_ms is None:
            end = EndOfTurn(EndOfTurnRule.CUT, None, "the turn reached its longest length, or the stream ended")
        elif pause is not None and pause.span == span and pause.choice.silence_ms == turn.silence_ms:
            end = EndOfTurn(pause.choice.rule, turn.silence_ms, pause.choice.reason)
        else:
            why = "adaptive end of turn is off" if not self._services.end_of_turn.enabled else "no pause transcribed"
            end = EndOfTurn(EndOfTurnRule.FIXED, turn.silence_ms, why)
        # Claimed now, before the next turn's pause can replace it; the turn task awaits it in order.
        speculative = self._speculation.claim(span) if self._speculation is not None else None
        detected = time.perf_counter()
        timing = self._turn_timing(turn, end, detected, speculative)
        self._inbox.put_nowait(_EndedTurn(turn, detected, end, speculative, timing))

    def _turn_timing(
        self, turn: TurnEnded, end: EndOfTurn, detected: float, speculative: asyncio.Future[Transcript] | None
    ) -> TurnTiming | None:
        """The instants of a turn that just ended, as far as they are known; the rest are filled in as they come."""
        last_voiced = self._clock.last_voiced(turn.start_ms, turn.end_ms)
        if last_voiced is None:
            return None
        silence = None if turn.silence_ms is None else self._clock.scored_at(turn.end_ms + VAD_WINDOW_MS)
        timing = TurnTiming(last_voiced[0], last_voiced[1], silence, detected, end.rule.value)
        if speculative is not None:
            ready = self._transcript_ready
            if not speculative.done():
                speculative.add_done_callback(lambda done: _note_transcript(timing, done))
            elif ready is not None and ready[0] == TurnSpan(turn.start_ms, turn.end_ms):
                timing.transcript_ready = ready[1]
            else:
                timing.transcript_ready = detected
        return timing

    def feed_dtmf(self, digit: str) -> None:
        """Take a key press from the caller."""
        if self._handed_over:
            return
        self._barge_in()
        self._inbox.put_nowait(Dtmf(digit))

    def marked(self, name: str) -> None:
        """The transport reports that playback reached mark `name` (or that it was interrupted)."""
        if self._apology is not None and name == self._apology[0]:
            self._apology[1].set()
            return
        speaking = self._speaking
        if speaking is None or name not in speaking.pending_marks:
            return
        speaking.pending_marks.discard(name)
        if not speaking.pending_marks and not speaking.producing:
            speaking.record.heard = not speaking.record.interrupted
            speaking.done.set()
            self._speaking = None

    async def close(self) -> None:
        """Stop the call's tasks (the caller hung up or the stream ended)."""
        self._handed_over = True
        if self._speculation is not None:
            self._speculation.close()
        if self._partials is not None:
            self._partials.close()
        await self._cancel_tasks()
        # The call's audio (~2.5 MB for 40 s) goes now: the pipeline and its session refer to each other, so the
        # objects themselves wait for Python's cyclic garbage collector, which may not run for many calls.
        self._history = _AudioHistory(_HISTORY_MS)

    async def _cancel_tasks(self) -> None:
        """Cancel the call's turn task and background sends, and wait until they have stopped."""
        tasks = [*self._background, *([self._worker] if self._worker is not None else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # --- the call's single worker task ---------------------------------------------------------------------------

    def _barge_in(self) -> None:
        speaking = self._speaking
        if speaking is None or not speaking.interruptible or speaking.record.interrupted:
            return
        early = self._early
        if early is not None and early.speaking is speaking:
            # Not yet a decision the engine knows of: clear it, and its turn's decision settles the rest.
            self._early = None
            self._clear_early(early, "the caller spoke over it")
            return
        speaking.record.interrupted = True
        self._state = self._engine.interrupted(self._state)
        log.info("barge-in", extra={"call": self._call_id, "reply": speaking.record.decision.rule})
        # Marks still pending come back after `clear`; until then nothing more of this reply is sent.
        task = asyncio.get_running_loop().create_task(self._output.interrupt())
        # Keep a reference until done: the loop holds tasks only weakly.
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _answer_turns(self) -> None:
        while not self._handed_over:
            item = await self._inbox.get()
            self._answering = True
            try:
                await self._answer(item)
            finally:
                self._answering = False

    async def _answer(self, item: _EndedTurn | Dtmf) -> None:
        """Answer one spoken turn or key press."""
        if isinstance(item, Dtmf):
            await self._decide(item, started=time.perf_counter())
            return
        turn = item.turn
        span = TurnSpan(turn.start_ms, turn.end_ms)
        end = dataclasses.replace(item.end_of_turn, speculative_asr=item.speculative is not None)
        try:
            if item.speculative is not None:
                transcript = await item.speculative
            else:
                transcript = await self._transcribe(self._turn_audio(turn.start_ms, turn.end_ms), turn.start_ms)
        except Exception as error:  # any ASR failure must end in a person, never in silence
            self._drop_early(span, "speech recognition failed")
            await self._fail(f"speech recognition failed: {error!r}")
            return
        if item.timing is not None and item.timing.transcript_ready is None:
            item.timing.transcript_ready = time.perf_counter()
        if not transcript.text:
            # Noise, breathing or a cough: nothing to answer.
            self._drop_early(span, "the final transcript holds no words")
            return
        transcript, second_opinion = await self._second_opinion(turn, transcript)
        redacted, index = self._redact(transcript)
        await self._decide(
            redacted,
            started=item.detected,
            redaction_index=index,
            end_of_turn=end,
            second_opinion=second_opinion,
            timing=item.timing,
            span=span,
        )

    async def _second_opinion(self, turn: TurnEnded, first: Transcript) -> tuple[Transcript, str | None]:
        """The transcript to answer, after asking the larger recogniser when the engine would not understand `first`
        (voice/second_opinion.py); and the reason to record, None when none was asked."""
        second_opinion = self._services.second_opinion
        if second_opinion is None or self._state is None:
            return first, None
        first_preview = self._preview(first)
        why = second_opinion.why_ask(first, first_preview)
        if why is None:
            return first, None
        services = self._services
        try:
            second = await services.workers.run(
                second_opinion.recognizer.transcribe,
                self._turn_audio(turn.start_ms, turn.end_ms),
                turn.start_ms,
                timeout_s=services.asr_timeout_s,
            )
        except Exception as error:  # the first transcript is still there: answer it rather than fail the call
            log.warning("second opinion failed", extra={"call": self._call_id, "error": repr(error)})
            return first, f"second opinion ({second_opinion.name}) because {why} failed; the first transcript stands"
        verdict = second_opinion.choose(why, first, first_preview, second, self._preview(second))
        return verdict.transcript, verdict.reason

    def _redact(self, transcript: Transcript) -> tuple[Transcript, int]:
        """The transcript with personal data replaced by markers, and its turn number in the redaction buffer.

        Earlier turns' records are corrected when this turn completes something they began (a card number read in
        parts).
        """
        result = self._redactor.redact_turn(transcript.text)
        for index, redaction in result.revised:
            earlier = self._redacted_turns.get(index)
            if earlier is not None and isinstance(earlier.caller, Transcript):
                earlier.caller = dataclasses.replace(earlier.caller, text=redaction.text)
        return dataclasses.replace(transcript, text=result.redaction.text), result.index

    async def _decide(
        self,
        turn: Transcript | Dtmf,
        started: float,
        redaction_index: int | None = None,
        end_of_turn: EndOfTurn | None = None,
        second_opinion: str | None = None,
        timing: TurnTiming | None = None,
        span: TurnSpan | None = None,
    ) -> None:
        self._state, decision = self._engine.step(self._state, turn)
        if second_opinion is not None:
            decision = dataclasses.replace(decision, reasons=(*decision.reasons, second_opinion))
        if end_of_turn is not None:
            # Every decision says why: here also why the caller's turn was taken as over.
            decision = dataclasses.replace(decision, reasons=(*decision.reasons, end_of_turn.describe()))
        record = TurnRecord(caller=turn, decision=decision, end_of_turn=end_of_turn)
        if timing is not None:
            record.latency = timing.budget()
        if redaction_index is not None:
            self._redacted_turns[redaction_index] = record
            # The buffer revises only its last few turns; older records need not be reachable.
            self._redacted_turns.pop(redaction_index - _REDACTION_MEMORY_TURNS, None)
        early_spoken = await self._settle_early(span, decision, record, started, timing)
        if self._early_notes:
            record.decision = dataclasses.replace(
                record.decision, reasons=(*record.decision.reasons, *self._early_notes)
            )
            self._early_notes = []
        if early_spoken:
            # Its reply is already playing: record it, and let the early playback finish it.
            self.records.append(record)
            self._output.decided(record)
            return
        await self._speak(record, started=started, timing=timing)

    async def _speak(self, record: TurnRecord, started: float | None, timing: TurnTiming | None = None) -> None:
        self.records.append(record)
        self._output.decided(record)
        decision = record.decision
        final = decision.action is not Action.REPLY
        self._final = self._final or final
        speaking = _Speaking(record, pending_marks=set(), interruptible=not final, done=asyncio.Event())
        self._speaking = speaking

        def sent(now: float) -> None:
            if started is not None and record.processing_ms is None:
                record.processing_ms = (now - started) * 1000
                if timing is not None:
                    timing.first_audio = now
                    record.latency = timing.budget()

        try:
            sent_samples = await self._play_sentences(
                speaking,
                decision.reply,
                str(len(self.records)),
                # The caller barged in, or the call was handed over: nothing more of this reply.
                lambda: not record.interrupted and not (self._handed_over and not final),
                sent,
            )
        except _SynthesisError as error:  # any TTS failure must end in a person, never in silence
            self._speaking = None
            await self._fail(f"speech synthesis failed: {error.__cause__!r}")
            return
        self._played(speaking, sent_samples)
        if final:
            # Wait until the caller has heard where they are going, then end the stream.
            sent_s = sent_samples / self._output.sample_rate_hz
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(speaking.done.wait(), timeout=sent_s + _HANDOVER_GRACE_S)
            self._handed_over = True
            await self._output.hand_over(decision)

    async def _play_sentences(
        self,
        speaking: _Speaking,
        text: str,
        mark_prefix: str,
        may_go_on: Callable[[], bool],
        sent: Callable[[float], None],
    ) -> int:
        """Synthesise `text` and send it sentence by sentence, each with a mark, while `may_go_on()`.

        `sent` is told the time before each sentence is handed to the transport. Returns the samples sent.

        Raises:
            _SynthesisError: synthesis failed (nothing more is sent).
        """
        sent_samples = 0
        sentences = self._reply_audio(text)
        try:
            index = 0
            while may_go_on():
                try:
                    sentence = await anext(sentences)
                except StopAsyncIteration:
                    break
                except Exception as error:
                    raise _SynthesisError() from error
                if not may_go_on():
                    break  # stopped while this sentence was being synthesised
                audio = self._at_output_rate(sentence)
                self._mark_counter += 1
                mark = f"{mark_prefix}.{index}.{self._mark_counter}"
                index += 1
                speaking.pending_marks.add(mark)
                sent(time.perf_counter())
                await self._output.play(audio, mark)
                sent_samples += audio.size
        finally:
            # Stops a synthesis still under way (barge-in) and leaves that reply uncached.
            await sentences.aclose()
            speaking.producing = False
        return sent_samples

    def _played(self, speaking: _Speaking, sent_samples: int) -> None:
        """All of a reply was sent: if its marks are all back already, it is over."""
        if not speaking.pending_marks:
            # Every sentence was played (or none sent) while the later ones were still being made.
            speaking.record.heard = sent_samples > 0 and not speaking.record.interrupted
            speaking.done.set()
            if self._speaking is speaking:
                self._speaking = None

    def _at_output_rate(self, audio: np.ndarray) -> np.ndarray:
        """Synthesised audio (one sentence or more) resampled to the rate the output plays."""
        return resample(audio, self._services.speech.sample_rate_hz, self._output.sample_rate_hz)

    async def _reply_audio(self, text: str) -> AsyncIterator[np.ndarray]:
        """The reply's audio, sentence by sentence: from the cache, or streamed from the synthesizer as it is made."""
        services = self._services
        speech = services.speech
        if services.stream_first_sentence and text not in speech:
            async for audio in services.workers.iterate(speech.stream, text, timeout_s=services.tts_timeout_s):
                yield audio
            return
        for audio in await services.workers.run(speech.get_or_synthesize, text, timeout_s=services.tts_timeout_s):
            yield audio

    async def hand_over_now(self, why: str, *, at_limit: bool = False) -> None:
        """Hand the call to a person now, whatever it is doing: the technical-problem sentence (or, at a limit of
        the call, the call-limit one), then a transfer.

        For the call's owner, when it cannot keep the call (the server is stopping). Whatever is being played is
        cleared and the turn being answered is dropped; the sentence comes from memory, and the stream is handed
        over once it has been played (or after its length and a grace period). A call already handed over, or
        already speaking its transfer or goodbye, is left to finish that.

        Args:
            why: the reason, recorded in the decision's reasons and the transfer reason.
            at_limit: the call reached a bound (its length, its exchanges) rather than a fault: the caller is not
                told of a problem that did not happen.
        """
        if self._handed_over or self._final:
            return
        self._handed_over = True  # from here on no input is answered
        log.warning("handing the call over now: %s", why, extra={"call": self._call_id})
        await self._cancel_tasks()
        speaking, self._speaking = self._speaking, None
        if speaking is not None:
            # Drop what the caller has not heard yet (the greeting, spoken by `start`, stops at its next sentence).
            await self._output.interrupt()
        replies = self._engine.catalogue.replies
        reply = replies.call_limit if at_limit else replies.technical_problem
        decision = self._apology_decision(HAND_OVER_NOW_RULE, why, "the automated agent had to stop", reply)
        await self._apologise_and_hand_over(decision, "handover")

    async def _apologise_and_hand_over(self, decision: Decision, mark_prefix: str) -> None:
        """Play the apology from memory, wait until the transport says it was heard (at most its length and a grace
        period: closing the stream earlier would cut it off), then hand the call over as `decision` says."""
        self._apology = (f"{mark_prefix}.{self._mark_counter + 1}", asyncio.Event())
        try:
            played_s = await self._play_apology(decision, self._apology[0])
            if played_s is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._apology[1].wait(), timeout=played_s + _HANDOVER_GRACE_S)
        finally:
            self._handed_over = True
            await self._output.hand_over(decision)

    def _apology_decision(self, rule: str, why: str, transfer_reason: str, reply: str | None = None) -> Decision:
        """A transfer with `reply` (default: the catalogue's technical-problem sentence), to the current topic's
        department."""
        catalogue = self._engine.catalogue
        department = (self._state.topic_department if self._state else None) or catalogue.policy.default_department
        return Decision(
            reply=reply or catalogue.replies.technical_problem,
            action=Action.TRANSFER,
            rule=rule,
            department=department,
            transfer_reason=f"{transfer_reason} ({why})",
            reasons=(f"rule {rule}", why),
        )

    async def _play_apology(self, decision: Decision, mark: str) -> float | None:
        """Record the decision and play its reply from memory with `mark`; its length in seconds, None if unplayed."""
        record = TurnRecord(caller=None, decision=decision)
        self.records.append(record)
        self._output.decided(record)
        speech = self._services.speech
        # Only from memory: synthesis may be what failed. The fixed replies are preloaded at start-up.
        if decision.reply not in speech:
            return None
        sentences = speech.get_or_synthesize(decision.reply)
        # One piece of audio with one mark; the empty start keeps a reply without sentences playable.
        audio = self._at_output_rate(np.concatenate([np.zeros(0, dtype=np.float32), *sentences]))
        self._mark_counter += 1
        await self._output.play(audio, mark)
        return audio.size / self._output.sample_rate_hz

    async def _fail(self, why: str) -> None:
        """Tell the caller about the problem and hand them to a person: a fault must never leave them in silence."""
        log.error("voice pipeline failure: %s", why, extra={"call": self._call_id})
        self.failure = why
        self._final = True
        decision = self._apology_decision(TECHNICAL_FAILURE_RULE, why, "technical problem in the automated agent")
        await self._apologise_and_hand_over(decision, "failure")


def _note_transcript(timing: TurnTiming, done: asyncio.Future[Transcript]) -> None:
    """A turn's transcript, claimed while still being made, is ready (or failed: then it is made again later)."""
    if not done.cancelled() and done.exception() is None:
        timing.transcript_ready = time.perf_counter()
