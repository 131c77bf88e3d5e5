"""Where a reply's time goes: the latency budget of each spoken turn, from the caller's last voiced frame.

A caller waits from the moment they stop speaking to the moment they hear the agent. The pipeline's own stages start
later than that: the VAD hears the silence some windows after the last loud frame, the end of the turn is decided
after a silence, and the recogniser, engine and synthesiser come after that (or overlap it, with speculative ASR).
So every instant is recorded on the wall clock and given relative to one anchor, the arrival of the caller's last
voiced frame:

    last voiced frame (0) -> the VAD declared silence -> end of turn decided (by a rule) -> first agent audio sent
                          -> a transcript of the whole turn existed (before or after the end of turn) ------^

**The anchor.** `CallerClock` notes when each piece of the caller's audio arrived (the pipeline is fed in real
time: `feed_audio` is called as the transport receives frames) and which 20 ms frames were loud: an RMS of at least
`VOICED_FLOOR_DBFS`. The caller's last voiced frame is the last loud frame inside the turn that the VAD found
(before the end of its last voiced window). Not the VAD's own last voiced window: Silero's probability stays up for
60-180 ms after the last loud frame, and that lag is part of what the caller waits for, so anchoring on it would hide
it. Not energy alone either: a cough or line noise after the turn is outside the VAD's turn and does not move the
anchor. The floor is the QA replay's (`qa.fixtures.VOICED_RMS_DBFS`), so the server's figure and the replay's agree;
on a line louder than the floor everywhere, the anchor falls back to the end of the VAD's turn (`anchor` "vad").
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

VOICED_FLOOR_DBFS = -40.0
"""A frame of caller audio counts as voiced at this RMS level or above: 20 dB above the -60 dBFS noise of a quiet
line, below the quietest syllables of telephone speech."""
FRAME_MS = 20
"""Length of the frames whose loudness is judged (a chunk fed at once is cut into frames this long)."""
_FLOOR_POWER = 10 ** (VOICED_FLOOR_DBFS / 10)
# Entries kept: a turn lasts at most 30 s, and the anchor is looked up when it ends.
_KEEP_FRAMES = 40_000 // FRAME_MS


@dataclass(frozen=True, slots=True)
class LatencyBudget:
    """One spoken turn's stages, in milliseconds from the arrival of the caller's last voiced frame."""

    end_of_turn_rule: str
    """The rule by which the end of the turn was decided (`voice.end_of_turn.EndOfTurnRule` values)."""
    end_of_turn_ms: float
    """The end of the turn was decided: the turn was queued to be answered."""
    silence_detected_ms: float | None
    """The VAD declared silence: it scored the first unvoiced window after the turn's last voiced one. None when
    the turn did not end in silence (it was cut at its longest length)."""
    transcript_ready_ms: float | None
    """A transcript of the whole turn existed (made in the pause, or after the end of the turn). None when the turn
    was answered without one (it failed)."""
    first_audio_ms: float | None = None
    """The first audio of the reply was handed to the transport. None while it is being made, or when the caller
    spoke over it before any was sent."""
    anchor: str = "energy"
    """What the caller's last voiced frame is: "energy" (the last frame at or above `VOICED_FLOOR_DBFS` inside the
    VAD's turn) or "vad" (none was: the end of the VAD's last voiced window)."""

    def stages(self) -> dict[str, float | None]:
        """The stages by name, in the order they usually happen."""
        return {
            "silence_detected_ms": self.silence_detected_ms,
            "end_of_turn_ms": self.end_of_turn_ms,
            "transcript_ready_ms": self.transcript_ready_ms,
            "first_audio_ms": self.first_audio_ms,
        }

    def to_json(self) -> dict[str, Any]:
        """The budget as a JSON object, times rounded to 0.1 ms."""
        stages = {name: None if value is None else round(value, 1) for name, value in self.stages().items()}
        return {**stages, "end_of_turn_rule": self.end_of_turn_rule, "anchor": self.anchor}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LatencyBudget:
        """The budget `to_json` wrote.

        Raises:
            KeyError: a field is missing.
        """
        return cls(
            end_of_turn_rule=data["end_of_turn_rule"],
            end_of_turn_ms=data["end_of_turn_ms"],
            silence_detected_ms=data["silence_detected_ms"],
            transcript_ready_ms=data["transcript_ready_ms"],
            first_audio_ms=data["first_audio_ms"],
            anchor=data.get("anchor", "energy"),
        )

    def describe(self) -> str:
        """One line for logs and reports: each stage as "+N ms" from the caller's last voiced frame."""

        def ms(value: float | None) -> str:
            return "-" if value is None else f"+{value:.0f} ms"

        return (
            f"from the caller's last voiced frame: silence heard {ms(self.silence_detected_ms)}, end of turn "
            f"{ms(self.end_of_turn_ms)} ({self.end_of_turn_rule}), transcript {ms(self.transcript_ready_ms)}, "
            f"first audio {ms(self.first_audio_ms)}"
        )


@dataclass(slots=True)
class TurnTiming:
    """The wall-clock instants (`time.perf_counter()`) of one spoken turn, filled in as they happen."""

    last_voiced: float
    anchor: str
    silence_detected: float | None
    end_of_turn: float
    end_of_turn_rule: str
    transcript_ready: float | None = None
    first_audio: float | None = None

    def budget(self) -> LatencyBudget:
        """The instants so far, relative to the caller's last voiced frame."""

        def since(instant: float | None) -> float | None:
            return None if instant is None else (instant - self.last_voiced) * 1000

        return LatencyBudget(
            end_of_turn_rule=self.end_of_turn_rule,
            end_of_turn_ms=(self.end_of_turn - self.last_voiced) * 1000,
            silence_detected_ms=since(self.silence_detected),
            transcript_ready_ms=since(self.transcript_ready),
            first_audio_ms=since(self.first_audio),
            anchor=self.anchor,
        )


class CallerClock:
    """When one call's caller audio arrived, by stream time, which of its frames were loud, and when the VAD had
    scored it. Stream time is milliseconds of caller audio from the start of the call, the VAD's clock too."""

    def __init__(self) -> None:
        self._fed_ms = 0.0
        # (start_ms, end_ms, arrival, loud) per frame, oldest first.
        self._frames: deque[tuple[float, float, float, bool]] = deque(maxlen=_KEEP_FRAMES)
        self._scored_ms = 0.0
        # (stream ms scored up to, wall time), one per feed that completed VAD windows.
        self._scored: deque[tuple[float, float]] = deque(maxlen=_KEEP_FRAMES)

    def fed(self, pcm: np.ndarray, sample_rate_hz: int, now: float) -> None:
        """Caller audio arrived at `now`: note each frame's position, arrival and loudness."""
        step = max(1, sample_rate_hz * FRAME_MS // 1000)
        samples = np.asarray(pcm, dtype=np.float32)
        for offset in range(0, samples.size, step):
            frame = samples[offset : offset + step]
            start_ms = self._fed_ms
            self._fed_ms += frame.size * 1000 / sample_rate_hz
            loud = bool(np.mean(np.square(frame, dtype=np.float64)) >= _FLOOR_POWER)
            self._frames.append((start_ms, self._fed_ms, now, loud))

    def scored(self, windows: int, window_ms: float, now: float) -> None:
        """The VAD scored `windows` more windows of `window_ms` at `now`."""
        self._scored_ms += windows * window_ms
        self._scored.append((self._scored_ms, now))

    def scored_at(self, stream_ms: float) -> float | None:
        """When the VAD had scored the audio up to `stream_ms`; None if it has not yet, or too long ago to say."""
        found = None
        for scored_ms, at in reversed(self._scored):
            if scored_ms + 1e-6 < stream_ms:
                break
            found = at
        return found

    def _frames_within(self, start_ms: float, end_ms: float) -> Iterator[tuple[float, float, float, bool]]:
        """The known frames that overlap `start_ms`..`end_ms`, newest first."""
        for frame in reversed(self._frames):
            frame_start, frame_end = frame[0], frame[1]
            if frame_end <= start_ms:
                return
            if frame_start < end_ms:
                yield frame

    def voiced_tail_ms(self, start_ms: float, end_ms: float) -> float | None:
        """How long the VAD's turn `start_ms`..`end_ms` went on after its last loud frame ended, in stream time; None
        when no frame of it was loud or its audio is no longer known."""
        for _start, frame_end, _arrival, loud in self._frames_within(start_ms, end_ms):
            if loud:
                return max(0.0, end_ms - frame_end)
        return None

    def last_voiced(self, start_ms: float, end_ms: float) -> tuple[float, str] | None:
        """The arrival of the caller's last voiced frame in the turn `start_ms`..`end_ms` (the VAD's), and which kind
        of anchor it is ("energy" or "vad"); None when the turn's audio is no longer known."""
        fallback = None
        for _start, _end, arrival, loud in self._frames_within(start_ms, end_ms):
            if loud:
                return arrival, "energy"
            if fallback is None:
                fallback = arrival
        if fallback is not None:
            return fallback, "vad"
        return None
