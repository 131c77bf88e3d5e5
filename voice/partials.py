"""Partial transcripts: the turn so far, transcribed while the caller is still speaking.

While the caller speaks, every `PartialOptions.every_ms` of stream time the turn so far is transcribed, so that when
the caller stops a transcript covering all but the last few hundred ms already exists. The pipeline
(voice/pipeline.py) may then pick the reply from it and start speaking it when the complete-request silence has
passed, before the pause's own transcript is ready; that transcript confirms the reply or corrects it (`clear`, then
the right reply), and the decision recorded is always the one made on it.

Partials are extra work, so they give way: one call never has more than one in flight (the one-in-flight discipline
of `voice.speculation.SpeculativeTranscriber`, here asked only when nothing is in flight, so that no partial is ever
discarded unfinished), and none starts unless the worker pool is idle (`can_start`): a transcription cannot be
stopped once started, and a pause's or a finished turn's transcript must not wait behind a partial.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from voice.events import Transcript
from voice.speculation import SpeculativeTranscriber, Transcribe, TurnSpan


@dataclass(frozen=True, slots=True)
class PartialOptions:
    """When the turn so far is transcribed while the caller speaks, and when such a transcript may pick a reply."""

    enabled: bool = False
    """Transcribe while the caller speaks, and answer from a partial transcript when it is safe; off by default in
    the library (the server's setting chooses)."""
    every_ms: int = 700
    """Stream time between the ends of two partials of one turn. Shorter leaves less speech uncovered when
    the caller stops, at the cost of more transcriptions."""
    cover_ms: int = 400
    """A partial may pick a reply only if it ends at most this long before the caller's last voiced window: the
    words it misses must be few, or the final transcript disagrees too often."""

    def __post_init__(self) -> None:
        """Reject option sets that cannot work.

        Raises:
            ValueError: a non-positive interval or a negative coverage gap.
        """
        if self.every_ms <= 0:
            raise ValueError(f"PartialOptions.every_ms: expected a positive number of ms, got {self.every_ms}")
        if self.cover_ms < 0:
            raise ValueError(f"PartialOptions.cover_ms: expected 0 or more ms, got {self.cover_ms}")


@dataclass(slots=True)
class PartialStats:
    """What partial transcription did on one call, for benchmarks and logs."""

    started: int = 0
    """Partial transcriptions started."""
    skipped_busy: int = 0
    """Partials due but not started because the worker pool was busy (back-off)."""
    early_replies: int = 0
    """Replies started from a partial transcript before the pause's transcript was ready."""
    confirmed: int = 0
    """Early replies the final transcript confirmed (same decision)."""
    corrected: int = 0
    """Early replies cleared because the final transcript decided otherwise or the caller went on."""


class PartialTranscriber:
    """One call's partial transcripts: at most one in flight, each of the current turn so far."""

    def __init__(self, transcribe: Transcribe, options: PartialOptions, can_start: Callable[[], bool]) -> None:
        """Nothing runs until `heard`.

        Args:
            transcribe: runs one transcription in the worker pool.
            options: how often, and how close to the end a partial must reach to be used.
            can_start: whether the worker pool has room for a partial now (False: skip it, back off).
        """
        self.options = options
        self._can_start = can_start
        self._speculation = SpeculativeTranscriber(transcribe, on_ready=self._ready)
        self._turn_start_ms: int | None = None
        # Stream time up to which the current turn has been asked for (or skipped).
        self._asked_to_ms = 0
        self._latest: tuple[TurnSpan, Transcript] | None = None
        self.stats = PartialStats()

    def heard(self, span: TurnSpan, samples_16k: Callable[[], np.ndarray]) -> None:
        """The caller is speaking; `span` is the turn so far. Transcribe it if a partial is due and there is room.

        Args:
            span: the turn's first voiced window to its latest.
            samples_16k: cuts out the audio to transcribe (called only when a partial starts).
        """
        if span.start_ms != self._turn_start_ms:
            # A new turn (or a turn cut at its longest length goes on): earlier partials are of other words.
            self._turn_start_ms = span.start_ms
            self._asked_to_ms = span.start_ms
            self._latest = None
        if span.end_ms - self._asked_to_ms < self.options.every_ms or self._speculation.in_flight:
            return
        self._asked_to_ms = span.end_ms
        if not self._can_start():
            self.stats.skipped_busy += 1
            return
        self.stats.started += 1
        self._speculation.request(span, samples_16k())

    def covering(self, span: TurnSpan) -> Transcript | None:
        """The latest finished partial of the turn `span` (up to a pause) if it misses at most `cover_ms` of it."""
        if self._latest is None:
            return None
        partial_span, transcript = self._latest
        if partial_span.start_ms != span.start_ms or partial_span.end_ms > span.end_ms:
            return None
        if span.end_ms - partial_span.end_ms > self.options.cover_ms:
            return None
        return transcript

    def close(self) -> None:
        """The call ended: a partial in flight finishes in its thread and is dropped."""
        self._speculation.close()
        self._latest = None

    def _ready(self, span: TurnSpan, transcript: Transcript | None) -> None:
        if transcript is not None and span.start_ms == self._turn_start_ms:
            self._latest = (span, transcript)
