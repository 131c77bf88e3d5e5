"""Speculative ASR: transcribe the turn so far while the caller pauses, so the transcript is ready when the turn ends.

When a pause begins (`voice.turns.PauseStarted`) the call asks for the turn so far to be transcribed. If the pause
becomes the end of the turn (the `TurnEnded` has the same span: no speech since), that transcript is the turn's
and no second transcription is needed; if the caller speaks again it is discarded.

Transcriptions run in the shared worker pool and cannot be stopped once started, so one call never has more than
one in flight: a request made while one runs waits, and a newer request replaces a waiting one. A stale
transcription therefore costs at most one pool slot for one ASR run per call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from voice.events import Transcript

log = logging.getLogger(__name__)

Transcribe = Callable[[np.ndarray, int], Awaitable[Transcript]]
"""Transcribes 16 kHz samples that start at a stream time in ms (through the worker pool)."""
OnReady = Callable[["TurnSpan", Transcript | None], None]
"""Told of each speculative transcript that is still current when it is ready, or None when it failed (on the
event loop)."""


@dataclass(frozen=True, slots=True)
class TurnSpan:
    """The part of the stream a transcript covers: a turn's first voiced window to its last, in ms."""

    start_ms: int
    end_ms: int


@dataclass(slots=True)
class SpeculationStats:
    """What speculative ASR did on one call, for benchmarks and logs."""

    started: int = 0
    """Transcriptions started."""
    kept: int = 0
    """Transcripts used as the turn's transcript."""
    discarded: int = 0
    """Requests or transcripts dropped because the caller spoke again (or the turn was cut)."""
    failed: int = 0
    """Transcriptions that raised; the turn is then transcribed again when it ends."""


class SpeculativeTranscriber:
    """One call's speculative transcriptions: at most one in flight, the newest request waiting behind it."""

    def __init__(self, transcribe: Transcribe, on_ready: OnReady | None = None) -> None:
        """Nothing runs until `request`.

        Args:
            transcribe: runs one transcription in the worker pool.
            on_ready: told of each transcript that is still current (not discarded) when it is ready, or of its
                failure.
        """
        self._transcribe = transcribe
        self._on_ready = on_ready
        self._running: tuple[TurnSpan, asyncio.Task[Transcript]] | None = None
        self._waiting: tuple[TurnSpan, np.ndarray] | None = None
        # The span whose transcript is wanted; None after a discard. A transcript for another span is stale.
        self._current: TurnSpan | None = None
        # The finished transcription of `_current`: its transcript, or the error it raised.
        self._result: tuple[TurnSpan, Transcript | Exception] | None = None
        # A transcription in flight that an ended turn has claimed: its result goes to the claimant, not here.
        self._claimed: TurnSpan | None = None
        self.stats = SpeculationStats()

    @property
    def in_flight(self) -> bool:
        """A transcription is running (its thread cannot be stopped)."""
        return self._running is not None

    def request(self, span: TurnSpan, samples_16k: np.ndarray) -> None:
        """Transcribe `samples_16k` (the turn so far, `span`) now, or as soon as the one in flight is done."""
        self.discard()
        self._current = span
        if self._running is None:
            self._start(span, samples_16k)
        else:
            self._waiting = (span, samples_16k)

    def discard(self) -> None:
        """The caller spoke again: whatever was made or asked for the pause is stale.

        A transcription in flight runs on in its thread; its result is dropped when it arrives.
        """
        self.stats.discarded += (self._waiting is not None) + (self._result is not None)
        self._current = None
        self._waiting = None
        self._result = None

    def claim(self, span: TurnSpan) -> asyncio.Future[Transcript] | None:
        """Take the transcript of the turn that just ended, `span`, if one was made or is being made for exactly it.

        Called the moment the turn ends, so that the next turn's pause cannot discard it. The future gives the
        transcript (waiting for one still in flight: it started earlier than a new one would), or raises what the
        transcription raised: the same audio would fail again, so the turn fails as if transcribed after it ended.
        Returns None when there is nothing for this span: the caller then transcribes the turn itself.
        """
        if self._current != span:
            # Made for a span the turn has since outgrown (the turn went on, or was cut).
            self.discard()
            return None
        result, running = self._result, self._running
        self._current = None
        self._result = None
        if result is not None and result[0] == span:
            ready: asyncio.Future[Transcript] = asyncio.get_running_loop().create_future()
            if isinstance(result[1], Exception):
                ready.set_exception(result[1])
            else:
                self.stats.kept += 1
                ready.set_result(result[1])
            return ready
        if running is not None and running[0] == span:
            self._claimed = span
            # A task rather than a bare coroutine: a call that ends before awaiting it leaves no warning behind.
            return asyncio.ensure_future(self._wait_for(running[1]))
        return None

    async def _wait_for(self, task: asyncio.Task[Transcript]) -> Transcript:
        transcript = await asyncio.shield(task)  # its error, if any, is the turn's (counted in `_finished`)
        self.stats.kept += 1
        return transcript

    def close(self) -> None:
        """Forget the waiting request (the call ended); a transcription in flight finishes in its thread."""
        self._waiting = None
        self._current = None
        self._on_ready = None

    def _start(self, span: TurnSpan, samples_16k: np.ndarray) -> None:
        self.stats.started += 1
        task = asyncio.get_running_loop().create_task(self._transcribe(samples_16k, span.start_ms))
        self._running = (span, task)
        task.add_done_callback(lambda done: self._finished(span, done))

    def _finished(self, span: TurnSpan, task: asyncio.Task[Transcript]) -> None:
        self._running = None
        claimed = span == self._claimed
        if claimed:
            self._claimed = None
        if task.cancelled():
            pass
        elif task.exception() is not None:
            self.stats.failed += 1
            log.warning("speculative transcription failed: %r", task.exception())
            if span == self._current and not claimed:
                self._result = (span, task.exception())
                if self._on_ready is not None:
                    self._on_ready(span, None)
        elif claimed:
            pass  # the ended turn that claimed it takes the result itself
        elif span == self._current:
            transcript = task.result()
            self._result = (span, transcript)
            if self._on_ready is not None:
                self._on_ready(span, transcript)
        else:
            self.stats.discarded += 1
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            self._start(*waiting)
