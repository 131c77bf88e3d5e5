"""Partial transcripts while the caller speaks, and replies started from them.

The bookkeeping (`PartialTranscriber`) is tested with a fake recogniser the test controls. The pipeline tests feed the
recorded fixture through the real VAD with a fake recogniser that answers a partial (made while the caller still
speaks) with one text and the pause's transcript (made after) with another, slowly, so that the early reply is
spoken before the final transcript exists: what is under test is what is played, cleared and recorded.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from telephony.twilio.framing import TWILIO_SAMPLE_RATE_HZ
from tests.test_pipeline import (
    FIXTURE,
    FRAME_S,
    FakeSynthesizer,
    RecordingOutput,
    caller_records,
    over_the_phone,
    services,
)
from tests.test_speculation import HeldRecognizer
from tests.test_turns import loud_spans_ms
from voice.end_of_turn import EndOfTurnRule
from voice.events import Transcript
from voice.partials import PartialOptions, PartialTranscriber
from voice.pipeline import EARLY_REPLY_CONFIRMED, CallPipeline
from voice.speculation import TurnSpan
from voice.wavfile import read_wav

AUDIO = np.zeros(1600, dtype=np.float32)


def test_partial_options_are_validated() -> None:
    with pytest.raises(ValueError, match="every_ms"):
        PartialOptions(every_ms=0)
    with pytest.raises(ValueError, match="cover_ms"):
        PartialOptions(cover_ms=-1)
    assert not PartialOptions().enabled  # the library leaves them off; the server's setting chooses


def test_a_partial_every_interval_of_speech_one_in_flight_and_none_when_the_pool_is_busy() -> None:
    async def scenario():
        recognizer = HeldRecognizer(hold=True)
        idle = [True]
        partials = PartialTranscriber(recognizer, PartialOptions(every_ms=500), can_start=lambda: idle[0])
        for end_ms in range(100, 1700, 32):  # the caller speaks: partials are due at 500 ms of speech and 1 s later
            partials.heard(TurnSpan(100, end_ms), lambda: AUDIO)
        started_while_held = partials.stats.started
        recognizer.release.set()
        await asyncio.sleep(0.01)
        partials.heard(TurnSpan(100, 1200), lambda: AUDIO)  # 500 ms past the first partial's end: due again
        await asyncio.sleep(0.01)
        idle[0] = False  # the worker pool is busy: the next due partial is skipped, not queued
        partials.heard(TurnSpan(100, 1800), lambda: AUDIO)
        return partials, started_while_held, list(recognizer.calls)

    partials, started_while_held, calls = asyncio.run(scenario())

    assert started_while_held == 1  # the later due points came while one was in flight
    assert partials.stats.started == 2 and partials.stats.skipped_busy == 1
    assert len(calls) == 2


def test_only_a_partial_of_this_turn_that_reaches_close_to_its_end_picks_a_reply() -> None:
    async def scenario():
        partials = PartialTranscriber(HeldRecognizer(), PartialOptions(every_ms=300, cover_ms=400), lambda: True)
        partials.heard(TurnSpan(100, 1000), lambda: AUDIO)
        await asyncio.sleep(0.01)
        found = {
            "pause soon after": partials.covering(TurnSpan(100, 1300)),
            "pause long after": partials.covering(TurnSpan(100, 1500)),
            "another turn": partials.covering(TurnSpan(2000, 2300)),
        }
        partials.heard(TurnSpan(2000, 2100), lambda: AUDIO)  # a new turn forgets the old one's partial
        found["old turn after a new one began"] = partials.covering(TurnSpan(100, 1300))
        return found

    found = asyncio.run(scenario())

    assert found["pause soon after"] == Transcript("words from 100", 0.9, 100, 200)
    assert found["pause long after"] is None
    assert found["another turn"] is None
    assert found["old turn after a new one began"] is None


class PartialThenFinal:
    """Answers transcriptions started while the caller speaks with `partial`, later ones with `final` after
    `final_delay_s` (a slow machine: the early reply is then spoken first)."""

    def __init__(self, partial: str, final: str, final_delay_s: float = 0.8) -> None:
        self.partial, self.final, self.final_delay_s = partial, final, final_delay_s
        self.speech_over = False
        self.calls: list[str] = []

    def transcribe(self, samples_16k: np.ndarray, start_ms: int = 0) -> Transcript:
        kind = "final" if self.speech_over else "partial"
        self.calls.append(kind)
        if kind == "final":
            time.sleep(self.final_delay_s)
        text = self.final if kind == "final" else self.partial
        return Transcript(text, 0.9, start_ms, start_ms + samples_16k.size // 16)


def run_first_group(pipeline: CallPipeline, recognizer: PartialThenFinal, silence_s: float) -> None:
    """Feed the fixture's first spoken group in real time, then silence; the recogniser learns when speech ended."""
    samples, rate = read_wav(FIXTURE)
    speech_end_ms = loud_spans_ms(samples)[0][1]
    speech = over_the_phone(samples[: speech_end_ms * rate // 1000], rate)
    silence = np.zeros(TWILIO_SAMPLE_RATE_HZ * 20 // 1000, dtype=np.float32)

    async def call() -> None:
        await pipeline.start()
        frames = [*speech, *[silence] * round(silence_s / FRAME_S)]
        start = time.perf_counter()
        for index, frame in enumerate(frames):
            if index == len(speech):
                recognizer.speech_over = True
            pipeline.feed_audio(frame, TWILIO_SAMPLE_RATE_HZ)
            await asyncio.sleep(max(0.0, start + (index + 1) * FRAME_S - time.perf_counter()))
        await asyncio.sleep(0.2)
        await pipeline.close()

    asyncio.run(call())


class PlayedAtOnce(RecordingOutput):
    """A transport whose audio is heard the moment it is sent: each mark comes straight back (as the greeting's
    must, or the pipeline would still be speaking it)."""

    pipeline: CallPipeline | None = None

    async def play(self, audio: np.ndarray, mark: str) -> None:
        await super().play(audio, mark)
        if self.pipeline is not None:
            asyncio.get_running_loop().call_soon(self.pipeline.marked, mark)


def partial_pipeline(
    engine, recognizer: PartialThenFinal, log: list[str], enabled: bool = True
) -> tuple[CallPipeline, RecordingOutput]:
    voice = services(
        engine,
        recognizer,
        FakeSynthesizer([]),
        partials=PartialOptions(enabled=enabled, every_ms=300, cover_ms=400),
    )
    output = PlayedAtOnce(log)
    output.pipeline = CallPipeline(voice, output)
    return output.pipeline, output


def played_marks(log: list[str]) -> list[str]:
    return [line.removeprefix("played ") for line in log if line.startswith("played ") or line == "clear"]


@pytest.mark.slow
def test_a_reply_started_from_a_partial_is_confirmed_by_the_final_transcript(engine_en) -> None:
    recognizer = PartialThenFinal("What are your opening hours?", "What are your opening hours?")
    log: list[str] = []
    pipeline, _output = partial_pipeline(engine_en, recognizer, log)

    run_first_group(pipeline, recognizer, silence_s=2.0)

    (record,) = caller_records(pipeline)
    assert "partial" in recognizer.calls and "final" in recognizer.calls
    assert record.decision.intent == "opening_hours"
    assert EARLY_REPLY_CONFIRMED in record.decision.reasons
    assert record.end_of_turn.rule is EndOfTurnRule.COMPLETE_REQUEST
    # The reply was played once, from the early start, and never cleared.
    marks = played_marks(log)
    caller_marks = [mark for mark in marks if not mark.startswith("1.")]  # "1." is the greeting
    assert caller_marks and all(mark.startswith("early.") for mark in caller_marks), marks
    assert "clear" not in marks
    # It went out before the end of the turn was decided: the final transcript took 0.8 s.
    assert record.latency.first_audio_ms < record.latency.end_of_turn_ms
    assert record.processing_ms == 0.0


@pytest.mark.slow
def test_a_reply_started_from_a_partial_is_cleared_and_replaced_when_the_final_transcript_disagrees(
    engine_en,
) -> None:
    recognizer = PartialThenFinal("What are your opening hours?", "Where is my order?")
    log: list[str] = []
    pipeline, _output = partial_pipeline(engine_en, recognizer, log)

    run_first_group(pipeline, recognizer, silence_s=2.0)

    (record,) = caller_records(pipeline)
    assert record.decision.intent == "order_status"  # the final transcript's decision is the one recorded
    assert EARLY_REPLY_CONFIRMED not in record.decision.reasons
    assert any("was cleared: the final transcript decided otherwise" in reason for reason in record.decision.reasons)
    marks = played_marks(log)
    first_early = next(i for i, mark in enumerate(marks) if mark.startswith("early."))
    clear = marks.index("clear")
    assert first_early < clear
    assert any(mark.startswith("2.") for mark in marks[clear:]), marks  # then the right reply


@pytest.mark.slow
def test_an_early_reply_is_cleared_when_the_pause_transcript_shows_the_caller_is_not_done(engine_en) -> None:
    recognizer = PartialThenFinal("What are your opening hours?", "What are your opening hours and")
    log: list[str] = []
    pipeline, _output = partial_pipeline(engine_en, recognizer, log)

    run_first_group(pipeline, recognizer, silence_s=2.5)

    (record,) = caller_records(pipeline)
    # The turn was held open as the words trail off, as without partials; the early reply was taken back.
    assert record.end_of_turn.rule is EndOfTurnRule.TRAILING_WORD and record.end_of_turn.silence_ms == 1200
    assert any("chose rule trailing_word" in reason for reason in record.decision.reasons)
    assert "clear" in played_marks(log)


@pytest.mark.slow
def test_the_same_audio_gives_the_same_turn_and_decision_with_and_without_partials(engine_en) -> None:
    outcomes = []
    for enabled in (False, True):
        recognizer = PartialThenFinal("What are your opening hours?", "What are your opening hours?")
        pipeline, _output = partial_pipeline(engine_en, recognizer, [], enabled=enabled)
        run_first_group(pipeline, recognizer, silence_s=2.0)
        (record,) = caller_records(pipeline)
        outcomes.append((record.caller.start_ms, record.caller.end_ms, record.end_of_turn.rule, record.decision.intent))
        # With partials the reply was started early (only the reasons say so).
        assert (EARLY_REPLY_CONFIRMED in record.decision.reasons) is enabled
    assert outcomes[0] == outcomes[1]
