"""End-of-turn detection: speech probabilities in, "the caller started speaking" and "the caller's turn ended" out.

`TurnDetector` sees one probability per VAD window (32 ms) and nothing else: no audio, no model, no clock. The same
sequence always gives the same events, so it is tested with made-up sequences. Times are milliseconds from the start
of the stream (or the last `reset`), counted in windows.

A window is *voiced* with hysteresis: it becomes voiced at `speech_start_threshold` and stays voiced until the
probability falls below the lower `speech_end_threshold`, so a probability wobbling around one threshold does not
flip the state window by window. Speech starts after `min_speech_ms` of voiced windows (shorter bursts are clicks,
breaths or line noise); a turn ends after `end_of_turn_silence_ms` without a voiced window, or is cut at
`max_turn_ms`.

For lower latency the detector can also report a pause as it begins (`PauseStarted`, after `pause_report_ms`), so
that the turn so far can be transcribed while the caller is silent, and `SpeechResumed` when the caller goes on.
`set_pause_silence` then lets the caller of the detector (the end-of-turn policy, `voice.end_of_turn`) shorten or
lengthen the silence that ends that one pause; every turn that ends by silence says which silence it was. When that
choice comes only after the caller went on, `end_at_resumed_pause` still ends the turn at the pause if the pause
was long enough: the same audio then gives the same turns however fast the choice was made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, slots=True)
class TurnOptions:
    """When speech starts and when a caller's turn is over."""

    speech_start_threshold: float = 0.5
    """Probability at or above which a window becomes voiced; Silero's own default."""
    speech_end_threshold: float = 0.35
    """Probability below which a voiced stretch stops being voiced (hysteresis); Silero uses start - 0.15 too."""
    min_speech_ms: int = 200
    """Voiced time needed before speech counts as started; shorter bursts are clicks, pops or line noise."""
    end_of_turn_silence_ms: int = 800
    """Unvoiced time that ends a turn. Callers reading out digits pause about 0.6 s between groups; the VAD measures
    such a pause as 576-640 ms (longest after a soft "f" or "th"), so 800 ms leaves five windows (160 ms) of margin:
    pauses up to about 0.75 s stay inside the turn. Every extra 100 ms delays every reply by as much; when the agent
    has just asked for a number, the session may use a longer value."""
    max_turn_ms: int = 30_000
    """Longest turn; a longer one is cut there so that ASR gets bounded input (Whisper sees 30 s at most)."""
    pause_report_ms: int | None = None
    """Silence after which a `PauseStarted` is reported (for speculative ASR); None reports no pauses. Shorter
    catches the end of a turn sooner but also more gaps between words, each costing a transcription."""

    def __post_init__(self) -> None:
        """Reject option sets that cannot work.

        Raises:
            ValueError: a threshold outside [0, 1], thresholds in the wrong order, or a non-positive duration.
        """
        for name in ("speech_start_threshold", "speech_end_threshold"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"TurnOptions.{name}: expected a probability in [0, 1], got {value}")
        if self.speech_end_threshold > self.speech_start_threshold:
            raise ValueError(
                f"TurnOptions.speech_end_threshold ({self.speech_end_threshold}) must not exceed "
                f"speech_start_threshold ({self.speech_start_threshold})"
            )
        for name in ("min_speech_ms", "end_of_turn_silence_ms", "max_turn_ms", "pause_report_ms"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"TurnOptions.{name}: expected a positive number of milliseconds, got {value}")
        if self.max_turn_ms <= self.min_speech_ms:
            raise ValueError(
                f"TurnOptions.max_turn_ms ({self.max_turn_ms}) must exceed min_speech_ms ({self.min_speech_ms})"
            )


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The caller has been speaking for `min_speech_ms`: stop the agent's playback (barge-in)."""

    at_ms: int
    """When the speech began (it is reported `min_speech_ms` later)."""


@dataclass(frozen=True, slots=True)
class TurnEnded:
    """The caller finished an utterance: transcribe `start_ms`..`end_ms`."""

    start_ms: int
    """Start of the first voiced window of the turn."""
    end_ms: int
    """End of the last voiced window of the turn, or the cut point when `cut` is set."""
    cut: bool = False
    """True when the turn reached `max_turn_ms` and was cut rather than ended by silence."""
    silence_ms: int | None = field(default=None, compare=False)
    """The silence that ended the turn (`end_of_turn_silence_ms`, or what `set_pause_silence` set); None when the
    turn was cut or flushed. Not compared: it explains the event, the turn is the same."""


@dataclass(frozen=True, slots=True)
class PauseStarted:
    """The caller has been silent for `TurnOptions.pause_report_ms` inside a turn: the turn may be over.

    `start_ms`..`end_ms` is the turn so far; if it ends in this pause, its `TurnEnded` has the same span.
    """

    start_ms: int
    """Start of the turn."""
    end_ms: int
    """End of the last voiced window before the pause."""


@dataclass(frozen=True, slots=True)
class SpeechResumed:
    """The caller spoke again after a reported pause: the turn goes on, and whatever was made of the pause is stale."""

    at_ms: int
    """Start of the first voiced window after the pause."""


TurnEvent = SpeechStarted | TurnEnded | PauseStarted | SpeechResumed


class TurnDetector:
    """Turns a stream of speech probabilities into `SpeechStarted` and `TurnEnded` events, for one call.

    `SpeechStarted` comes once per stretch of speech, before that stretch's `TurnEnded`. A turn cut at `max_turn_ms`
    while the caller is still speaking goes on as a new turn from the cut point without a second `SpeechStarted`
    (the caller never stopped, so there is nothing new to barge in on).
    """

    def __init__(self, options: TurnOptions | None = None, window_ms: float = 32.0) -> None:
        """Start with no speech heard.

        Args:
            options: thresholds and durations; None for the defaults.
            window_ms: audio duration behind each probability (`StreamingVad.window_ms`).

        Raises:
            ValueError: `window_ms` is not positive.
        """
        if window_ms <= 0:
            raise ValueError(f"window_ms: expected a positive duration, got {window_ms}")
        self.options = options if options is not None else TurnOptions()
        self.window_ms = window_ms
        self.reset()

    def reset(self) -> None:
        """Forget everything: time restarts at 0 and no speech is in progress."""
        self._windows = 0
        self._voiced = False
        # Index of the first window of the current voiced run (before speech is confirmed) or of the turn.
        self._run_start = 0
        self._in_speech = False
        self._turn_start = 0
        # Window index just after the last voiced window of the turn.
        self._last_voiced_end = 0
        # The current pause: reported yet, and the silence that ends it (None: end_of_turn_silence_ms).
        self._pause_reported = False
        self._pause_silence_ms: int | None = None
        # The last reported pause of the turn that the caller spoke after: (its first silent window, the first voiced
        # window after it). Kept until the turn ends or another pause is reported.
        self._resumed_pause: tuple[int, int] | None = None

    @property
    def in_speech(self) -> bool:
        """True between a `SpeechStarted` and the `TurnEnded` that closes its turn."""
        return self._in_speech

    @property
    def turn_start_ms(self) -> int:
        """Start of the current turn's first voiced window (meaningful while `in_speech`)."""
        return self._ms(self._turn_start)

    @property
    def now_ms(self) -> int:
        """End of the last window seen, in milliseconds from the start of the stream."""
        return self._ms(self._windows)

    @property
    def pause_ms(self) -> int:
        """Silence so far in the current turn's pause; 0 while the caller speaks or outside a turn."""
        if not self._in_speech or self._voiced:
            return 0
        return self._ms(self._windows - self._last_voiced_end)

    def set_pause_silence(self, silence_ms: int, turn_end_ms: int) -> list[TurnEvent]:
        """Change the silence that ends the current pause (only this pause: it resets when speech resumes).

        Args:
            silence_ms: the silence that ends the turn in this pause.
            turn_end_ms: the `PauseStarted.end_ms` the choice was made for; when the caller has spoken since, the
                choice is stale and ignored.

        Returns:
            A `TurnEnded` when the pause has already lasted `silence_ms`; otherwise nothing (the turn then ends
            when it has, or goes on if the caller speaks).

        Raises:
            ValueError: `silence_ms` is not positive.
        """
        if silence_ms <= 0:
            raise ValueError(f"silence_ms: expected a positive number of milliseconds, got {silence_ms}")
        if not self._in_speech or self._voiced or self._ms(self._last_voiced_end) != turn_end_ms:
            return []
        self._pause_silence_ms = silence_ms
        if self.pause_ms >= silence_ms:
            return [self._end_by_silence()]
        return []

    def end_at_resumed_pause(self, silence_ms: int, turn_end_ms: int) -> list[TurnEvent]:
        """End the turn at a pause the caller has already spoken after, if it lasted `silence_ms`.

        For a silence chosen only after the caller went on (the choice took longer than the pause): had it been known
        in time, the turn would have ended there. The turn so far ends at the pause and the speech since then starts
        the next turn.

        Args:
            silence_ms: the silence chosen for that pause.
            turn_end_ms: its `PauseStarted.end_ms`; when another pause has been reported since, nothing happens.

        Returns:
            The `TurnEnded` of the turn up to the pause, or nothing when the pause was shorter than `silence_ms`.

        Raises:
            ValueError: `silence_ms` is not positive.
        """
        if silence_ms <= 0:
            raise ValueError(f"silence_ms: expected a positive number of milliseconds, got {silence_ms}")
        if not self._in_speech or self._resumed_pause is None:
            return []
        pause_end, resumed = self._resumed_pause
        if self._ms(pause_end) != turn_end_ms or self._ms(resumed - pause_end) < silence_ms:
            return []
        self._resumed_pause = None
        event = TurnEnded(self._ms(self._turn_start), self._ms(pause_end), silence_ms=silence_ms)
        self._turn_start = resumed
        return [event]

    def _end_by_silence(self) -> TurnEnded:
        silence_ms = self._pause_silence_ms or self.options.end_of_turn_silence_ms
        self._in_speech = False
        self._pause_reported = False
        self._pause_silence_ms = None
        self._resumed_pause = None
        return TurnEnded(self._ms(self._turn_start), self._ms(self._last_voiced_end), silence_ms=silence_ms)

    def _ms(self, windows: int) -> int:
        # Times are kept as window counts and converted once, so they never drift over a long call.
        return round(windows * self.window_ms)

    def process(self, speech_probabilities: Sequence[float] | np.ndarray) -> list[TurnEvent]:
        """Advance by one window per probability.

        Args:
            speech_probabilities: speech probabilities, one per consecutive window, as `StreamingVad.process` returns.

        Returns:
            The events these windows caused, in order; usually none.
        """
        events: list[TurnEvent] = []
        for probability in np.asarray(speech_probabilities, dtype=np.float64).ravel():
            event = self._step(float(probability))
            if event is not None:
                events.append(event)
        return events

    def flush(self) -> list[TurnEvent]:
        """End the turn in progress now, for when the stream stops (hang-up, transfer).

        Returns:
            A `TurnEnded` for the turn in progress, or nothing when the caller was not speaking.
        """
        if not self._in_speech:
            return []
        event = TurnEnded(self._ms(self._turn_start), self._ms(self._last_voiced_end))
        self._in_speech = False
        self._voiced = False
        self._pause_reported = False
        self._pause_silence_ms = None
        self._resumed_pause = None
        return [event]

    def _step(self, probability: float) -> TurnEvent | None:
        options = self.options
        index = self._windows
        self._windows += 1
        end = self._windows

        was_voiced = self._voiced
        if was_voiced:
            self._voiced = probability >= options.speech_end_threshold
        else:
            self._voiced = probability >= options.speech_start_threshold
        if self._voiced and not was_voiced:
            self._run_start = index

        if not self._in_speech:
            if self._voiced and self._ms(end - self._run_start) >= options.min_speech_ms:
                self._in_speech = True
                self._turn_start = self._run_start
                self._last_voiced_end = end
                return SpeechStarted(self._ms(self._run_start))
            return None

        if self._voiced:
            resumed = None
            if not was_voiced and self._pause_reported:
                resumed = SpeechResumed(self._ms(index))
                self._resumed_pause = (self._last_voiced_end, index)
            self._pause_reported = False
            self._pause_silence_ms = None
            self._last_voiced_end = end
            if self._ms(end - self._turn_start) >= options.max_turn_ms:
                # Still speaking at the limit: hand over what we have and go on with a new turn from here.
                event = TurnEnded(self._ms(self._turn_start), self._ms(end), cut=True)
                self._turn_start = end
                self._resumed_pause = None
                return event
            return resumed

        silence_ms = self._ms(end - self._last_voiced_end)
        if silence_ms >= (self._pause_silence_ms or options.end_of_turn_silence_ms):
            return self._end_by_silence()
        if self._ms(end - self._turn_start) >= options.max_turn_ms:
            # In a pause at the limit: the turn ends where the caller last spoke.
            self._in_speech = False
            self._pause_reported = False
            self._pause_silence_ms = None
            self._resumed_pause = None
            return TurnEnded(self._ms(self._turn_start), self._ms(self._last_voiced_end), cut=True)
        if options.pause_report_ms is not None and not self._pause_reported and silence_ms >= options.pause_report_ms:
            self._pause_reported = True
            self._resumed_pause = None
            return PauseStarted(self._ms(self._turn_start), self._ms(self._last_voiced_end))
        return None


def turn_samples(
    samples_16k: np.ndarray,
    turn: TurnEnded,
    *,
    buffer_start_ms: int = 0,
    pad_ms: int = 200,
    sample_rate_hz: int = 16_000,
) -> np.ndarray:
    """The audio of `turn`, padded, out of a buffer of the call's audio.

    The padding gives back what the VAD's windows clip: the soft first consonant before the probability rises and
    the fading last syllable after it falls.

    Args:
        samples_16k: mono samples of the stream, starting at `buffer_start_ms`.
        turn: the turn to cut out.
        buffer_start_ms: stream time of `samples_16k[0]` (for a buffer that drops old audio).
        pad_ms: audio added on each side of the turn, clipped to the buffer.
        sample_rate_hz: rate of `samples_16k`.

    Returns:
        A slice (a view) of `samples_16k`; empty when the turn lies outside the buffer.

    Raises:
        ValueError: `pad_ms` is negative.
    """
    if pad_ms < 0:
        raise ValueError(f"pad_ms: expected 0 or more, got {pad_ms}")
    start_ms = turn.start_ms - pad_ms - buffer_start_ms
    end_ms = turn.end_ms + pad_ms - buffer_start_ms
    start = min(max(0, start_ms * sample_rate_hz // 1000), len(samples_16k))
    end = min(max(0, end_ms * sample_rate_hz // 1000), len(samples_16k))
    return samples_16k[start : max(start, end)]
