"""One call's voice pipeline, driven without a wire: speculative ASR at pauses, the adaptive end of turn, and the
first sentence of an uncached reply sent before the rest is synthesised.

Audio is the recorded fixture (real speech through the real VAD), fed at the telephone's pace, since the point is
what happens while the caller pauses. The recogniser and synthesiser are fakes where their behaviour, not the
model's, is under test; the last test runs the real models.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from tests.test_turns import loud_spans_ms
from voice.end_of_turn import EndOfTurnOptions, EndOfTurnRule
from voice.events import Decision, Transcript
from voice.framing import pcm_to_twilio_frames
from voice.pipeline import CallPipeline, TurnRecord, VoiceServices
from voice.tts import PhraseCache
from voice.turns import TurnOptions
from voice.wavfile import read_wav
from voice.workers import ModelWorkers

FIXTURE = Path(__file__).resolve().parents[1] / "audio_fixtures" / "number_with_pauses_16k.wav"
SILENCE = b"\xff" * 160
FRAME_S = 0.02

# Every test runs the Silero VAD model (each pipeline makes one), the last one every model.
pytestmark = pytest.mark.slow


def fixture_frames() -> list[bytes]:
    samples, rate = read_wav(FIXTURE)
    return pcm_to_twilio_frames(samples, rate)


def first_group_frames() -> list[bytes]:
    """The fixture's first spoken group, up to 300 ms into the first pause (the rest of the call is silence)."""
    samples, rate = read_wav(FIXTURE)
    first_group_end_ms = loud_spans_ms(samples)[0][1]
    return pcm_to_twilio_frames(samples[: (first_group_end_ms + 300) * rate // 1000], rate)


class FakeRecognizer:
    """Returns the next scripted text for each transcription and records how much audio each one got."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.texts = list(texts)
        self.samples: list[int] = []

    def transcribe(self, samples_16k: np.ndarray, start_ms: int = 0) -> Transcript:
        self.samples.append(samples_16k.size)
        text = self.texts[min(len(self.samples), len(self.texts)) - 1]
        return Transcript(text, 0.9, start_ms, start_ms + samples_16k.size // 16)


class FakeSynthesizer:
    """Two sentences per text, with a record of when each was made."""

    sample_rate_hz = 8000

    def __init__(
        self, log: list[str], first_played: threading.Event | None = None, hold: threading.Event | None = None
    ) -> None:
        self.log = log
        self.first_played = first_played
        self.hold = hold

    def synthesize(self, text: str) -> Iterator[np.ndarray]:
        self.log.append("synthesised sentence 1")
        yield np.full(1600, 0.1, dtype=np.float32)
        if self.hold is not None:
            self.hold.wait(5)
        if self.first_played is not None:
            # Hold the second sentence until the first was handed to the wire (or give up after 2 s).
            self.log.append("first sentence played before the second was made" if self.first_played.wait(2) else "-")
        self.log.append("synthesised sentence 2")
        yield np.full(1600, 0.2, dtype=np.float32)


class RecordingOutput:
    def __init__(self, log: list[str], first_played: threading.Event | None = None) -> None:
        self.log = log
        self.first_played = first_played
        self.records: list[TurnRecord] = []

    async def play(self, frames: Sequence[bytes], mark: str) -> None:
        self.log.append(f"played {mark}")
        if self.first_played is not None and not mark.startswith("1."):
            self.first_played.set()

    async def interrupt(self) -> None:
        self.log.append("clear")

    async def hand_over(self, decision: Decision) -> None:
        self.log.append(f"hand over: {decision.action.value}")

    def decided(self, record: TurnRecord) -> None:
        self.records.append(record)


def services(engine, recognizer, synthesizer=None, **changes) -> VoiceServices:
    speech = PhraseCache(synthesizer or FakeSynthesizer([]))
    speech.preload([engine.catalogue.replies.greeting])
    base = VoiceServices(
        engine=engine,
        recognizer=recognizer,
        speech=speech,
        workers=ModelWorkers(2),
        turn_options=TurnOptions(pause_report_ms=200),
    )
    return dataclasses.replace(base, **changes)


async def play_call(pipeline: CallPipeline, frames: list[bytes], silence_s: float) -> None:
    """Feed caller frames at the telephone's pace (20 ms each), then silence, as Twilio does."""
    await pipeline.start()
    everything = frames + [SILENCE] * round(silence_s / FRAME_S)
    start = time.perf_counter()
    for index, frame in enumerate(everything):
        pipeline.feed_audio(frame)
        delay = start + (index + 1) * FRAME_S - time.perf_counter()
        await asyncio.sleep(max(0.0, delay))
    await asyncio.sleep(0.2)
    await pipeline.close()


def caller_records(pipeline: CallPipeline) -> list[TurnRecord]:
    return [record for record in pipeline.records if record.caller is not None]


def test_a_complete_request_transcribed_in_the_pause_ends_the_turn_sooner_and_is_kept(engine_en) -> None:
    recognizer = FakeRecognizer(["What are your opening hours?"])
    voice = services(engine_en, recognizer)
    pipeline = CallPipeline(voice, RecordingOutput([]))

    asyncio.run(play_call(pipeline, first_group_frames(), silence_s=1.5))
    voice.workers.shutdown()

    (record,) = caller_records(pipeline)
    assert len(recognizer.samples) == 1  # transcribed once, in the pause: not again when the turn ended
    assert record.decision.intent == "opening_hours"
    end = record.end_of_turn
    assert end.rule is EndOfTurnRule.COMPLETE_REQUEST and end.silence_ms == 350 and end.speculative_asr
    # The decision says why the turn ended when it did.
    assert record.decision.reasons[-1] == end.describe()
    assert "after 350 ms of silence: rule complete_request" in record.decision.reasons[-1]


def test_a_speculative_transcript_is_discarded_when_the_caller_goes_on(engine_en) -> None:
    # Adaptive end of turn off: the turn ends at the fixed 800 ms, after all three groups of digits.
    recognizer = FakeRecognizer(["The first part.", "The first and second part.", "All three parts."])
    voice = services(engine_en, recognizer, end_of_turn=EndOfTurnOptions(enabled=False))
    pipeline = CallPipeline(voice, RecordingOutput([]))

    asyncio.run(play_call(pipeline, fixture_frames(), silence_s=1.5))
    voice.workers.shutdown()

    (record,) = caller_records(pipeline)
    # One transcription per pause; the first two were stale when the caller went on and were dropped.
    assert len(recognizer.samples) == 3
    assert recognizer.samples == sorted(recognizer.samples)  # each covers the turn so far
    assert record.caller.text == "All three parts."
    assert record.end_of_turn.rule is EndOfTurnRule.FIXED and record.end_of_turn.silence_ms == 800
    assert record.end_of_turn.speculative_asr


def test_digits_read_in_groups_keep_the_turn_open(engine_en) -> None:
    # The pause's transcript ends with a number: each pause may last 1200 ms; the caller is not cut off.
    recognizer = FakeRecognizer(
        ["Four one seven.", "Four one seven, five nine.", "Four one seven, five nine, three six."]
    )
    voice = services(engine_en, recognizer)
    pipeline = CallPipeline(voice, RecordingOutput([]))

    asyncio.run(play_call(pipeline, fixture_frames(), silence_s=2.0))
    voice.workers.shutdown()

    (record,) = caller_records(pipeline)
    assert record.end_of_turn.rule is EndOfTurnRule.TRAILING_NUMBER and record.end_of_turn.silence_ms == 1200


def test_the_first_sentence_of_an_uncached_reply_is_sent_before_the_rest_is_synthesised(engine_en) -> None:
    log: list[str] = []
    first_played = threading.Event()
    voice = services(engine_en, FakeRecognizer(["-"]), FakeSynthesizer(log, first_played))

    async def call() -> None:
        pipeline = CallPipeline(voice, RecordingOutput(log, first_played))
        await pipeline.start()
        log.clear()
        pipeline.feed_dtmf("7")  # opening hours: a reply not in the cache
        for _ in range(200):
            await asyncio.sleep(0.01)
            if "synthesised sentence 2" in log and any(line.startswith("played 2.1") for line in log):
                break
        await pipeline.close()

    asyncio.run(call())
    voice.workers.shutdown()

    # (The key press first clears the greeting, whose two sentences were marks 1 and 2.)
    assert log == [
        "clear",
        "synthesised sentence 1",
        "played 2.0.3",
        "first sentence played before the second was made",
        "synthesised sentence 2",
        "played 2.1.4",
    ]
    assert engine_en.catalogue.intents["opening_hours"].reply in voice.speech  # cached once complete


def test_without_streaming_the_whole_reply_is_synthesised_first(engine_en) -> None:
    log: list[str] = []
    voice = services(engine_en, FakeRecognizer(["-"]), FakeSynthesizer(log), stream_first_sentence=False)

    async def call() -> None:
        pipeline = CallPipeline(voice, RecordingOutput(log))
        await pipeline.start()
        log.clear()
        pipeline.feed_dtmf("7")
        for _ in range(200):
            await asyncio.sleep(0.01)
            if any(line.startswith("played 2.1") for line in log):
                break
        await pipeline.close()

    asyncio.run(call())
    voice.workers.shutdown()

    assert log == ["clear", "synthesised sentence 1", "synthesised sentence 2", "played 2.0.3", "played 2.1.4"]


def test_a_caller_who_barges_in_while_the_reply_is_synthesised_hears_no_more_of_it(engine_en) -> None:
    log: list[str] = []
    hold = threading.Event()
    voice = services(engine_en, FakeRecognizer(["-"]), FakeSynthesizer(log, hold=hold))

    async def wait_for(condition) -> None:
        for _ in range(300):
            if condition():
                return
            await asyncio.sleep(0.01)

    async def call() -> None:
        pipeline = CallPipeline(voice, RecordingOutput(log))
        await pipeline.start()
        pipeline.feed_dtmf("7")  # opening hours, streamed: the second sentence is held
        await wait_for(lambda: "played 2.0.3" in log)
        log.clear()
        pipeline.feed_dtmf("1")  # the caller presses a key while the second sentence is being made
        hold.set()
        await wait_for(lambda: any(line.startswith("played 3.") for line in log))
        await pipeline.close()

    asyncio.run(call())
    voice.workers.shutdown()

    assert "clear" in log
    assert not any(line.startswith("played 2.") for line in log)  # the rest of the old reply was never sent
    assert any(line.startswith("played 3.0") for line in log)  # the key press was answered
    assert engine_en.catalogue.intents["opening_hours"].reply not in voice.speech  # an unfinished reply is not cached


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_number_read_with_pauses_is_one_turn_with_every_latency_lever_on(voice_services) -> None:
    """The real models at the telephone's pace: speculative ASR in each pause, the adaptive end of turn."""
    assert voice_services.turn_options.pause_report_ms is not None and voice_services.end_of_turn.enabled
    pipeline = CallPipeline(voice_services, RecordingOutput([]))

    asyncio.run(play_call(pipeline, fixture_frames(), silence_s=3.0))

    (record,) = caller_records(pipeline)
    assert "[number]" in record.caller.text  # the digits, redacted: all three groups in one turn
    # Trailing digits, or (on a slow machine) the longest silence while waiting for the transcript: never sooner.
    assert record.end_of_turn.rule in (EndOfTurnRule.TRAILING_NUMBER, EndOfTurnRule.NO_TRANSCRIPT)
    assert record.end_of_turn.silence_ms == 1200
