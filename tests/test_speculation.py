"""Speculative ASR bookkeeping: at most one transcription in flight per call, kept only for the span it was made for.

The recogniser is a fake here (an async function the test releases): what is under test is which transcript is
kept, discarded or waited for, not the model. The pipeline tests run the same path with the real VAD.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from voice.events import Transcript
from voice.speculation import SpeculativeTranscriber, TurnSpan

AUDIO = np.zeros(1600, dtype=np.float32)


class HeldRecognizer:
    """Transcribes instantly, or holds each transcription until the test releases it."""

    def __init__(self, hold: bool = False) -> None:
        self.hold = hold
        self.calls: list[int] = []
        self.release = asyncio.Event()

    async def __call__(self, samples: np.ndarray, start_ms: int) -> Transcript:
        self.calls.append(start_ms)
        if self.hold:
            await self.release.wait()
        return Transcript(f"words from {start_ms}", 0.9, start_ms, start_ms + 100)


def test_a_transcript_made_for_the_pause_that_ended_the_turn_is_kept() -> None:
    async def scenario():
        recognizer = HeldRecognizer()
        ready: list[tuple[TurnSpan, Transcript | None]] = []
        speculation = SpeculativeTranscriber(recognizer, on_ready=lambda span, t: ready.append((span, t)))
        span = TurnSpan(100, 900)
        speculation.request(span, AUDIO)
        await asyncio.sleep(0.01)
        claimed = speculation.claim(span)
        return recognizer, ready, speculation, await claimed

    recognizer, ready, speculation, transcript = asyncio.run(scenario())

    assert transcript == Transcript("words from 100", 0.9, 100, 200)
    assert ready == [(TurnSpan(100, 900), transcript)]
    assert recognizer.calls == [100]
    assert (speculation.stats.started, speculation.stats.kept, speculation.stats.discarded) == (1, 1, 0)


def test_a_transcript_is_discarded_when_the_caller_speaks_again() -> None:
    async def scenario():
        speculation = SpeculativeTranscriber(HeldRecognizer())
        speculation.request(TurnSpan(100, 900), AUDIO)
        await asyncio.sleep(0.01)
        speculation.discard()  # SpeechResumed
        # The turn then ends later, with another span: nothing made for it.
        return speculation, speculation.claim(TurnSpan(100, 2000))

    speculation, claimed = asyncio.run(scenario())

    assert claimed is None
    assert (speculation.stats.kept, speculation.stats.discarded) == (0, 1)


def test_a_transcript_for_an_earlier_span_is_never_handed_to_a_later_turn() -> None:
    async def scenario():
        speculation = SpeculativeTranscriber(HeldRecognizer())
        speculation.request(TurnSpan(100, 900), AUDIO)
        await asyncio.sleep(0.01)
        return speculation.claim(TurnSpan(100, 1500))

    assert asyncio.run(scenario()) is None


def test_at_most_one_transcription_in_flight_and_only_the_newest_request_waits() -> None:
    async def scenario():
        recognizer = HeldRecognizer(hold=True)
        speculation = SpeculativeTranscriber(recognizer)
        speculation.request(TurnSpan(0, 500), AUDIO)
        await asyncio.sleep(0.01)
        speculation.request(TurnSpan(0, 1500), AUDIO)  # the caller paused again while the first still runs
        speculation.request(TurnSpan(0, 2500), AUDIO)  # and again: replaces the waiting request
        await asyncio.sleep(0.01)
        in_flight_while_held = len(recognizer.calls)
        recognizer.release.set()
        claimed = None
        for _ in range(100):
            await asyncio.sleep(0.01)
            if len(recognizer.calls) == 2:
                claimed = speculation.claim(TurnSpan(0, 2500))
                break
        return recognizer, speculation, in_flight_while_held, await claimed

    recognizer, speculation, in_flight_while_held, transcript = asyncio.run(scenario())

    assert in_flight_while_held == 1
    # The stale first transcription ran to its end (a thread cannot be stopped); the replaced request never ran.
    assert recognizer.calls == [0, 0] and speculation.stats.started == 2
    assert transcript is not None and speculation.stats.kept == 1
    assert speculation.stats.discarded == 2  # the replaced request and the stale first result


def test_the_turn_waits_for_its_transcription_still_in_flight() -> None:
    async def scenario():
        recognizer = HeldRecognizer(hold=True)
        speculation = SpeculativeTranscriber(recognizer)
        span = TurnSpan(40, 1200)
        speculation.request(span, AUDIO)
        await asyncio.sleep(0.01)
        claimed = speculation.claim(span)
        # A new turn's pause after the claim does not take the claimed transcript away.
        speculation.request(TurnSpan(3000, 3500), AUDIO)
        recognizer.release.set()
        return await asyncio.wait_for(claimed, 5)

    assert asyncio.run(scenario()) == Transcript("words from 40", 0.9, 40, 140)


def test_a_failed_transcription_is_reported_and_fails_the_turn() -> None:
    async def failing(samples: np.ndarray, start_ms: int) -> Transcript:
        raise RuntimeError("model fault")

    async def scenario():
        ready: list[tuple[TurnSpan, Transcript | None]] = []
        speculation = SpeculativeTranscriber(failing, on_ready=lambda span, t: ready.append((span, t)))
        span = TurnSpan(0, 700)
        speculation.request(span, AUDIO)
        await asyncio.sleep(0.01)
        claimed = speculation.claim(span)
        with pytest.raises(RuntimeError, match="model fault"):
            await claimed
        return ready, speculation

    ready, speculation = asyncio.run(scenario())

    # The end-of-turn policy hears of it (and falls back to the default silence); the turn fails as it would have
    # without speculation: the same audio would fail again.
    assert ready == [(TurnSpan(0, 700), None)]
    assert speculation.stats.failed == 1 and speculation.stats.kept == 0


def test_a_transcription_that_fails_in_flight_fails_the_turn_that_claimed_it() -> None:
    async def scenario():
        release = asyncio.Event()

        async def failing_later(samples: np.ndarray, start_ms: int) -> Transcript:
            await release.wait()
            raise TimeoutError

        speculation = SpeculativeTranscriber(failing_later)
        span = TurnSpan(0, 700)
        speculation.request(span, AUDIO)
        await asyncio.sleep(0.01)
        claimed = speculation.claim(span)
        release.set()
        with pytest.raises(TimeoutError):
            await claimed
        return speculation

    assert asyncio.run(scenario()).stats.failed == 1
