"""Bounds on one call's stream, so that no caller (or anyone posing as one) holds a call slot without end.

`CallLimits` comes from the settings: how long a stream may take to send ``start``, how long a started one may send
no audio, the longest call, the most exchanges, and how fast keys are taken. `CallWatchdog` watches a live call and
hands it to a person, with why, when one of the first three is reached (the exchanges exactly, as each turn is
recorded; the clocks within `WATCH_INTERVAL_S`); `KeyRate` drops key presses beyond the rate.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from telephony.calls import CallInfo
from telephony.settings import Settings
from voice.pipeline import CallPipeline

WATCH_INTERVAL_S = 0.25
"""How often a live call's clocks (silence, length) are checked: enforced within this time of being reached."""


@dataclass(frozen=True, slots=True)
class CallLimits:
    """The bounds of one call's stream (docs/configuration.md)."""

    start_timeout_s: float = 10.0
    silence_timeout_s: float = 10.0
    max_call_s: float = 1800.0
    max_turns: int = 60
    max_keys_per_s: float = 5.0

    @classmethod
    def from_settings(cls, settings: Settings) -> CallLimits:
        return cls(
            start_timeout_s=settings.stream_start_timeout_s,
            silence_timeout_s=settings.stream_silence_timeout_s,
            max_call_s=settings.max_call_s,
            max_turns=settings.max_turns,
            max_keys_per_s=settings.max_keys_per_s,
        )


class KeyRate:
    """A token bucket: `max_keys_per_s` keys a second, with a burst of two seconds' worth."""

    def __init__(self, max_keys_per_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = max_keys_per_s
        self._capacity = max(1.0, 2.0 * max_keys_per_s)
        self._tokens = self._capacity
        self._clock = clock
        self._last = clock()
        self.dropped = 0

    def allow(self) -> bool:
        """Whether this key press is taken; False (and counted in `dropped`) beyond the rate."""
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        self.dropped += 1
        return False


def exchanges(info: CallInfo) -> int:
    """The caller's turns and key presses answered so far (the greeting is not one)."""
    return sum(1 for record in info.records if record.caller is not None)


@dataclass(frozen=True, slots=True)
class Exceeded:
    """A bound the call reached."""

    why: str
    at_limit: bool
    """A limit of the call (its length, its exchanges), not a fault: the caller is not told of a problem."""


class CallWatchdog:
    """Hands a live call to a person when it is silent too long, lasts too long or has too many exchanges."""

    def __init__(self, limits: CallLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self._limits = limits
        self._clock = clock
        self._started = clock()
        self._last_audio = self._started
        self._turns_used_up: asyncio.Task[None] | None = None

    def heard_audio(self) -> None:
        """The stream delivered caller audio (silence included) just now."""
        self._last_audio = self._clock()

    def exceeded(self, info: CallInfo) -> Exceeded | None:
        """Why the call must be handed over now, or None while it is within its limits."""
        limits, now = self._limits, self._clock()
        if now - self._last_audio >= limits.silence_timeout_s:
            # A stream that stops carrying audio is a fault of the line or the transport.
            return Exceeded(f"no audio arrived on the call's stream for {limits.silence_timeout_s:g} s", False)
        if now - self._started >= limits.max_call_s:
            return Exceeded(f"the call reached its longest allowed length ({limits.max_call_s:g} s)", True)
        return None

    def recorded(self, info: CallInfo, pipeline: CallPipeline) -> None:
        """A turn was just recorded (`voice.pipeline.AgentOutput.decided`): at the most allowed exchanges, start the
        hand-over to a person at once, with why.

        Started here rather than at the next check, because the hand-over's first step (no more input is answered)
        is queued before the pipeline can wait on anything, so no further exchange is recorded: the record never
        holds more than `CallLimits.max_turns` exchanges, however fast keys or turns arrive.
        """
        if self._turns_used_up is not None or exchanges(info) < self._limits.max_turns:
            return
        why = f"the call reached its most allowed exchanges ({self._limits.max_turns})"
        self._turns_used_up = asyncio.get_running_loop().create_task(
            pipeline.hand_over_now(why, at_limit=True), name=f"turn-limit-{info.call_sid}"
        )

    async def watch(self, info: CallInfo, pipeline: CallPipeline) -> None:
        """Check the limits until one is reached, then hand the call over (the technical-problem sentence for a
        silent stream, the call-limit one for its length, then a person) with why; returns once the call is finished
        (run it as a task, cancelled at the stream's end, which also stops a hand-over `recorded` started)."""
        try:
            while not pipeline.finished:
                if self._turns_used_up is not None:
                    await self._turns_used_up
                    return
                exceeded = self.exceeded(info)
                if exceeded is not None:
                    await pipeline.hand_over_now(exceeded.why, at_limit=exceeded.at_limit)
                    return
                await asyncio.sleep(WATCH_INTERVAL_S)
        finally:
            if self._turns_used_up is not None:
                self._turns_used_up.cancel()
