"""One call's voice pipeline, driven without a wire: speculative ASR at pauses, the adaptive end of turn, the
first sentence of an uncached reply sent before the rest is synthesised, and audio in and out at the rates a
transport declares.

Audio is the recorded fixture (real speech through the real VAD), fed at the transport's pace, since the point is
what happens while the caller pauses: by default as a telephone line carries it (8 kHz mu-law, decoded to PCM as
the Twilio transport does), or at 16 kHz as it was recorded. The recogniser and synthesiser are fakes where their
behaviour, not the model's, is under test; the last tests run the real models.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from telephony.twilio.framing import TWILIO_SAMPLE_RATE_HZ, pcm_to_twilio_frames
from telephony.twilio.mulaw import mulaw_to_float32
from tests.test_turns import loud_spans_ms
from voice import pipeline as pipeline_module
from voice.end_of_turn import EndOfTurn, EndOfTurnOptions, EndOfTurnRule
from voice.events import Action, Decision, Transcript
from voice.pipeline import CallPipeline, TurnRecord, VoiceServices
from voice.resample import resample
from voice.tts import PhraseCache
from voice.turns import TurnOptions
from voice.wavfile import read_wav
from voice.workers import ModelWorkers

FIXTURE = Path(__file__).resolve().parents[1] / "audio_fixtures" / "number_with_pauses_16k.wav"
FRAME_S = 0.02
WIDEBAND_RATE_HZ = 16_000

# Every test runs the Silero VAD model (each pipeline makes one), the last one every model.
pytestmark = pytest.mark.slow


def over_the_phone(samples: np.ndarray, rate: int) -> list[np.ndarray]:
    """The caller's audio as a telephone line carries it: 20 ms mu-law frames at 8 kHz, decoded to PCM."""
    return [mulaw_to_float32(frame) for frame in pcm_to_twilio_frames(samples, rate)]


def fixture_frames() -> list[np.ndarray]:
    samples, rate = read_wav(FIXTURE)
    return over_the_phone(samples, rate)


def first_group(samples: np.ndarray, rate: int) -> np.ndarray:
    """The fixture's first spoken group, up to 300 ms into the first pause (the rest of the call is silence)."""
    first_group_end_ms = loud_spans_ms(samples)[0][1]
    return samples[: (first_group_end_ms + 300) * rate // 1000]


def first_group_frames() -> list[np.ndarray]:
    samples, rate = read_wav(FIXTURE)
    return over_the_phone(first_group(samples, rate), rate)


def in_wideband_frames(samples: np.ndarray) -> list[np.ndarray]:
    """16 kHz PCM in 20 ms chunks, as a wideband transport (a browser call) would send it."""
    step = WIDEBAND_RATE_HZ * 20 // 1000
    return [samples[start : start + step] for start in range(0, samples.size, step)]


def wideband_fixture_frames() -> list[np.ndarray]:
    samples, rate = read_wav(FIXTURE)
    assert rate == WIDEBAND_RATE_HZ
    return in_wideband_frames(samples)


def wideband_first_group_frames() -> list[np.ndarray]:
    samples, rate = read_wav(FIXTURE)
    assert rate == WIDEBAND_RATE_HZ
    return in_wideband_frames(first_group(samples, rate))


class FakeRecognizer:
    """Returns the next scripted text for each transcription and records how much audio each one got."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.texts = list(texts)
        self.samples: list[int] = []
        self.heard: list[tuple[np.ndarray, int]] = []
        """Each transcription's audio and the start of its turn, in ms."""

    def transcribe(self, samples_16k: np.ndarray, start_ms: int = 0) -> Transcript:
        self.samples.append(samples_16k.size)
        self.heard.append((samples_16k.copy(), start_ms))
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


class ToneSynthesizer:
    """Two sentences of a 440 Hz tone per text, each `sentence_s` long, at Piper's rate."""

    sample_rate_hz = 22050

    def __init__(self, sentence_s: float) -> None:
        self.sentence_samples = round(sentence_s * self.sample_rate_hz)

    def synthesize(self, text: str) -> Iterator[np.ndarray]:
        t = np.arange(self.sentence_samples) / self.sample_rate_hz
        for _ in range(2):
            yield (0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)


@dataclass(frozen=True, slots=True)
class Played:
    mark: str
    audio: np.ndarray
    at: float
    """`time.perf_counter()` when it was handed to the output."""


class RecordingOutput:
    def __init__(
        self,
        log: list[str],
        first_played: threading.Event | None = None,
        sample_rate_hz: int = TWILIO_SAMPLE_RATE_HZ,
    ) -> None:
        self.log = log
        self.first_played = first_played
        self.sample_rate_hz = sample_rate_hz
        self.records: list[TurnRecord] = []
        self.played: list[Played] = []
        self.handed_over_at: float | None = None

    async def play(self, audio: np.ndarray, mark: str) -> None:
        self.played.append(Played(mark, audio, time.perf_counter()))
        self.log.append(f"played {mark}")
        if self.first_played is not None and not mark.startswith("1."):
            self.first_played.set()

    async def interrupt(self) -> None:
        self.log.append("clear")

    async def hand_over(self, decision: Decision) -> None:
        self.handed_over_at = time.perf_counter()
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


async def play_call(
    pipeline: CallPipeline, frames: list[np.ndarray], silence_s: float, rate_hz: int = TWILIO_SAMPLE_RATE_HZ
) -> None:
    """Feed 20 ms caller frames at `rate_hz`, in real time, then silence, as a transport does."""
    await pipeline.start()
    silence = np.zeros(rate_hz * 20 // 1000, dtype=np.float32)
    everything = frames + [silence] * round(silence_s / FRAME_S)
    start = time.perf_counter()
    for index, frame in enumerate(everything):
        pipeline.feed_audio(frame, rate_hz)
        delay = start + (index + 1) * FRAME_S - time.perf_counter()
        await asyncio.sleep(max(0.0, delay))
    await asyncio.sleep(0.2)
    await pipeline.close()


def caller_records(pipeline: CallPipeline) -> list[TurnRecord]:
    return [record for record in pipeline.records if record.caller is not None]


def ended_350_ms_after_the_last_loud_frame(end: EndOfTurn) -> bool:
    """The turn ended once the VAD had heard what was left of 350 ms after the caller's last loud frame: its lag after
    that frame counted as part of the silence, and was no longer than a lag is taken to be."""
    lag = 350 - end.silence_ms
    return 0 < lag <= 250 and f"350 ms from the last loud frame, {lag} ms before the VAD's silence" in end.reason


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
    assert end.rule is EndOfTurnRule.COMPLETE_REQUEST and ended_350_ms_after_the_last_loud_frame(end)
    assert end.speculative_asr
    # The decision says why the turn ended when it did.
    assert record.decision.reasons[-1] == end.describe()
    assert f"after {end.silence_ms} ms of silence: rule complete_request" in record.decision.reasons[-1]


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


class SlowRecognizer(FakeRecognizer):
    """A scripted recogniser that takes `delay_s` per transcription, as on a busy machine."""

    def __init__(self, texts: Sequence[str], delay_s: float) -> None:
        super().__init__(texts)
        self.delay_s = delay_s

    def transcribe(self, samples_16k: np.ndarray, start_ms: int = 0) -> Transcript:
        time.sleep(self.delay_s)
        return super().transcribe(samples_16k, start_ms)


class FixedTurnEndModel:
    """Smart Turn's stand-in: one probability for every turn, and a record of the audio it heard."""

    def __init__(self, probability: float) -> None:
        self.value = probability
        self.heard: list[int] = []

    def probability(self, samples_16k: np.ndarray) -> float:
        self.heard.append(samples_16k.size)
        return self.value


def turn_spans(pipeline: CallPipeline) -> list[tuple[int, str, int | None]]:
    """Where each caller turn starts, which rule ended it, and after how much silence."""
    return [
        (record.caller.start_ms, record.end_of_turn.rule.value, record.end_of_turn.silence_ms)
        for record in caller_records(pipeline)
    ]


def test_the_same_audio_gives_the_same_turns_when_the_pause_is_transcribed_too_late(engine_en) -> None:
    # "A complete request" after each group of digits: 350 ms ends the turn in each ~0.6 s pause. Transcribed in
    # time, the turn ends in the pause; transcribed only after the caller went on (0.9 s), it must end at the same
    # pause all the same, not grow into one long turn.
    texts = ["What are your opening hours?"]
    runs = {}
    for delay_s in (0.0, 0.9):
        voice = services(engine_en, SlowRecognizer(texts, delay_s))
        pipeline = CallPipeline(voice, RecordingOutput([]))
        asyncio.run(play_call(pipeline, fixture_frames(), silence_s=2.5))
        voice.workers.shutdown()
        runs[delay_s] = turn_spans(pipeline)

    assert len(runs[0.0]) == 3  # one turn per group of digits
    assert runs[0.9] == runs[0.0]
    # 350 ms from each group's last loud frame, of which the VAD heard less than all as silence.
    assert all(rule == EndOfTurnRule.COMPLETE_REQUEST.value and 100 <= silence < 350 for _, rule, silence in runs[0.0])


@pytest.mark.parametrize("delay_s", [0.0, 0.9])
def test_words_that_trail_off_keep_the_caller_through_mid_sentence_pauses_however_late_they_are_known(
    engine_en, delay_s
) -> None:
    # Each ~0.6 s pause follows words that trail off: the turn must not end in it, whether the pause's transcript
    # is ready within the pause or only after the caller went on.
    texts = ["I have a question about", "I have a question about my last", "my last bill."]
    recognizer = SlowRecognizer(texts, delay_s)
    voice = services(engine_en, recognizer)
    pipeline = CallPipeline(voice, RecordingOutput([]))

    asyncio.run(play_call(pipeline, fixture_frames(), silence_s=2.5))
    voice.workers.shutdown()

    (record,) = caller_records(pipeline)
    assert record.caller.start_ms == recognizer.heard[0][1]  # one turn from the first group to the last


def test_complete_words_that_sound_unfinished_do_not_end_the_turn_in_a_mid_sentence_pause(engine_en) -> None:
    # The words of each group read as a complete request, but Smart Turn hears an unfinished phrase: the ~0.6 s
    # pauses keep the default 800 ms, and the caller is not cut off.
    recognizer = FakeRecognizer(["What are your opening hours?"])
    model = FixedTurnEndModel(0.1)
    every_pause = EndOfTurnOptions(smart_turn_every_pause=True)
    voice = services(engine_en, recognizer, turn_end_model=model, end_of_turn=every_pause)
    pipeline = CallPipeline(voice, RecordingOutput([]))

    asyncio.run(play_call(pipeline, fixture_frames(), silence_s=1.5))
    voice.workers.shutdown()

    (record,) = caller_records(pipeline)
    assert record.end_of_turn.rule is EndOfTurnRule.SOUNDS_UNFINISHED and record.end_of_turn.silence_ms == 800
    assert "Smart Turn 0.10" in record.decision.reasons[-1]
    # The model heard the turn up to its last voiced window, not the silence after it: less than the transcript.
    assert len(model.heard) == len(recognizer.samples) == 3
    assert all(heard < transcribed for heard, transcribed in zip(model.heard, recognizer.samples, strict=True))


def test_complete_words_that_sound_finished_end_the_turn_sooner(engine_en) -> None:
    recognizer = FakeRecognizer(["What are your opening hours?"])
    every_pause = EndOfTurnOptions(smart_turn_every_pause=True)
    voice = services(engine_en, recognizer, turn_end_model=FixedTurnEndModel(0.97), end_of_turn=every_pause)
    pipeline = CallPipeline(voice, RecordingOutput([]))

    asyncio.run(play_call(pipeline, first_group_frames(), silence_s=1.5))
    voice.workers.shutdown()

    (record,) = caller_records(pipeline)
    assert record.end_of_turn.rule is EndOfTurnRule.COMPLETE_REQUEST
    assert ended_350_ms_after_the_last_loud_frame(record.end_of_turn)
    assert "Smart Turn 0.97" in record.end_of_turn.reason


def test_smart_turn_is_not_asked_about_a_complete_request_by_default(engine_en) -> None:
    # However unfinished it would have sounded, a complete request ends on its words alone and never waits for
    # the model.
    model = FixedTurnEndModel(0.1)
    voice = services(engine_en, FakeRecognizer(["What are your opening hours?"]), turn_end_model=model)
    pipeline = CallPipeline(voice, RecordingOutput([]))

    asyncio.run(play_call(pipeline, first_group_frames(), silence_s=1.5))
    voice.workers.shutdown()

    (record,) = caller_records(pipeline)
    assert record.end_of_turn.rule is EndOfTurnRule.COMPLETE_REQUEST and "Smart Turn" not in record.end_of_turn.reason
    assert model.heard == []


def test_unclear_words_that_sound_unfinished_keep_the_caller_for_the_trailing_silence(engine_en) -> None:
    # A garbled first half of a sentence: the words say nothing, the sound says the caller is not done, so each
    # ~0.6 s pause between the groups waits 1200 ms, and the caller's three groups are one turn.
    recognizer = FakeRecognizer(["I can request you them out."])
    model = FixedTurnEndModel(0.04)
    voice = services(engine_en, recognizer, turn_end_model=model)
    pipeline = CallPipeline(voice, RecordingOutput([]))

    asyncio.run(play_call(pipeline, fixture_frames(), silence_s=2.5))
    voice.workers.shutdown()

    (record,) = caller_records(pipeline)
    assert record.caller.start_ms == recognizer.heard[0][1]
    end = record.end_of_turn
    assert end.rule is EndOfTurnRule.SOUNDS_UNFINISHED and end.silence_ms == 1200
    assert "it sounds unfinished (Smart Turn 0.04 < 0.50)" in end.reason
    assert len(model.heard) == 3  # asked once per pause, after the words turned out unclear


def test_unclear_words_that_sound_finished_end_the_turn_after_the_finished_silence(engine_en) -> None:
    model = FixedTurnEndModel(0.97)
    voice = services(engine_en, FakeRecognizer(["I can request you them out."]), turn_end_model=model)
    pipeline = CallPipeline(voice, RecordingOutput([]))

    asyncio.run(play_call(pipeline, first_group_frames(), silence_s=1.5))
    voice.workers.shutdown()

    (record,) = caller_records(pipeline)
    assert record.end_of_turn.rule is EndOfTurnRule.SOUNDS_FINISHED and record.end_of_turn.silence_ms == 600
    assert model.heard


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


def test_audio_fed_at_16_khz_reaches_the_recognizer_exactly_as_it_was_sent(engine_en) -> None:
    # A wideband transport's audio is already at the VAD and ASR rate: nothing may filter, delay or shift it.
    recognizer = FakeRecognizer(["What are your opening hours?"])
    voice = services(engine_en, recognizer, end_of_turn=EndOfTurnOptions(enabled=False))
    pipeline = CallPipeline(voice, RecordingOutput([]))
    frames = wideband_first_group_frames()

    asyncio.run(play_call(pipeline, frames, silence_s=1.5, rate_hz=WIDEBAND_RATE_HZ))
    voice.workers.shutdown()

    (record,) = caller_records(pipeline)
    assert record.decision.intent == "opening_hours"
    sent = np.concatenate([*frames, np.zeros(WIDEBAND_RATE_HZ * 2, dtype=np.float32)])
    assert recognizer.heard
    for heard, start_ms in recognizer.heard:
        offset = max(0, start_ms - pipeline_module._TURN_PAD_MS) * WIDEBAND_RATE_HZ // 1000
        assert heard.size > WIDEBAND_RATE_HZ // 2
        np.testing.assert_array_equal(heard, sent[offset : offset + heard.size])


def rms_dbfs(frame: np.ndarray) -> float:
    return 10 * float(np.log10(max(float(np.mean(np.square(frame, dtype=np.float64))), 1e-20)))


@pytest.mark.parametrize("rate_hz", [8000, 16000, 48000])
def test_a_spoken_turn_has_its_latency_budget_from_the_last_voiced_frame(engine_en, rate_hz) -> None:
    recognizer = FakeRecognizer(["What are your opening hours?"])
    voice = services(engine_en, recognizer)
    output = RecordingOutput([])
    pipeline = CallPipeline(voice, output)
    samples, file_rate_hz = read_wav(FIXTURE)
    group = first_group(samples, file_rate_hz)
    if rate_hz == TWILIO_SAMPLE_RATE_HZ:
        frames = over_the_phone(group, file_rate_hz)
    else:
        at_rate = resample(group, file_rate_hz, rate_hz)
        step = rate_hz // 50
        frames = [at_rate[start : start + step] for start in range(0, at_rate.size, step)]
    fed: list[tuple[float, np.ndarray]] = []
    feed = pipeline.feed_audio

    def timed_feed(frame: np.ndarray, frame_rate_hz: int) -> None:
        fed.append((time.perf_counter(), frame))
        feed(frame, frame_rate_hz)

    pipeline.feed_audio = timed_feed
    asyncio.run(play_call(pipeline, frames, silence_s=1.5, rate_hz=rate_hz))
    voice.workers.shutdown()

    # The VAD scored the input rate itself when it could: no resampler in front of it.
    assert pipeline._vad.sample_rate_hz == (rate_hz if rate_hz in (8000, 16000) else 16000)
    (record,) = caller_records(pipeline)
    budget = record.latency
    assert budget is not None and budget.anchor == "energy"
    assert None not in budget.stages().values()
    assert 0 < budget.silence_detected_ms <= budget.end_of_turn_ms <= budget.first_audio_ms
    assert 0 < budget.transcript_ready_ms <= budget.first_audio_ms
    assert budget.end_of_turn_rule == record.end_of_turn.rule.value == "complete_request"
    assert budget.first_audio_ms == pytest.approx(budget.end_of_turn_ms + record.processing_ms)
    # Measured from the arrival of the last frame at or above -40 dBFS to the first audio handed to the output.
    last_voiced = max(at for at, frame in fed if rms_dbfs(frame) >= -40.0)
    (reply, *_) = [played for played in output.played if played.mark.startswith("2.")]
    assert budget.first_audio_ms == pytest.approx((reply.at - last_voiced) * 1000, abs=5.0)


def test_turns_that_are_not_spoken_have_no_latency_budget(engine_en) -> None:
    voice = services(engine_en, FakeRecognizer(["-"]))
    output = RecordingOutput([])

    async def call() -> None:
        pipeline = CallPipeline(voice, output)
        await pipeline.start()
        pipeline.feed_dtmf("7")
        for _ in range(300):
            await asyncio.sleep(0.01)
            if any(played.mark.startswith("2.") for played in output.played):
                break
        await pipeline.close()

    asyncio.run(call())
    voice.workers.shutdown()

    assert [record.latency for record in output.records] == [None, None]
    assert output.records[1].processing_ms is not None


@pytest.mark.parametrize("rate_hz", [8000, 16000, 24000, 48000])
def test_replies_are_played_at_the_rate_the_output_declares_with_the_synthesised_duration(engine_en, rate_hz) -> None:
    synthesizer = ToneSynthesizer(sentence_s=0.2)
    voice = services(engine_en, FakeRecognizer(["-"]), synthesizer)
    output = RecordingOutput([], sample_rate_hz=rate_hz)

    async def call() -> None:
        pipeline = CallPipeline(voice, output)
        await pipeline.start()
        await pipeline.close()

    asyncio.run(call())
    voice.workers.shutdown()

    assert [played.mark for played in output.played] == ["1.0.1", "1.1.2"]  # the greeting's two sentences
    for played in output.played:
        assert played.audio.dtype == np.float32
        # 0.2 s of audio at the output's rate: resampled, not cut or padded to any frame size.
        assert played.audio.size == rate_hz // 5
        spectrum = np.abs(np.fft.rfft(played.audio))
        assert np.argmax(spectrum) * rate_hz / played.audio.size == pytest.approx(440.0, abs=5.0)


def test_the_wait_for_the_last_words_before_a_handover_is_their_duration(engine_en, monkeypatch) -> None:
    # No grace beyond the audio, and marks that never come back: the handover waits exactly as long as the reply.
    # The wait's bound is read where it is set, not from the wall clock (a busy machine would blur it).
    monkeypatch.setattr(pipeline_module, "_HANDOVER_GRACE_S", 0.0)
    bounds_s: list[float] = []
    wait_for = asyncio.wait_for

    async def recorded_wait_for(awaitable, timeout):
        bounds_s.append(timeout)
        return await wait_for(awaitable, timeout)

    monkeypatch.setattr(pipeline_module.asyncio, "wait_for", recorded_wait_for)
    voice = services(engine_en, FakeRecognizer(["-"]), ToneSynthesizer(sentence_s=0.5))
    output = RecordingOutput([], sample_rate_hz=WIDEBAND_RATE_HZ)

    async def call() -> None:
        pipeline = CallPipeline(voice, output)
        await pipeline.start()
        pipeline.feed_dtmf("0")  # a person: the transfer sentence is the last thing said
        for _ in range(500):
            await asyncio.sleep(0.01)
            if output.handed_over_at is not None:
                break
        await pipeline.close()

    asyncio.run(call())
    voice.workers.shutdown()

    (transfer,) = [record for record in output.records if record.decision.action is Action.TRANSFER]
    assert transfer.decision.rule == "dtmf_zero"
    reply = [played for played in output.played if played.mark.startswith("2.")]
    assert sum(played.audio.size for played in reply) == WIDEBAND_RATE_HZ  # two sentences of 0.5 s
    assert bounds_s[-1] == pytest.approx(1.0)  # the last wait: the one before the handover
    assert output.handed_over_at >= reply[-1].at


@pytest.fixture(scope="module")
def real_calls(voice_services) -> dict[int, tuple[CallPipeline, RecordingOutput]]:
    """The number read with pauses through the real models, once over the phone (8 kHz mu-law) and once as recorded
    (16 kHz PCM): the pipeline and its output for each input rate."""
    calls = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        inputs = {TWILIO_SAMPLE_RATE_HZ: fixture_frames(), WIDEBAND_RATE_HZ: wideband_fixture_frames()}
        for rate_hz, frames in inputs.items():
            output = RecordingOutput([])
            pipeline = CallPipeline(voice_services, output)
            asyncio.run(play_call(pipeline, frames, silence_s=3.0, rate_hz=rate_hz))
            calls[rate_hz] = (pipeline, output)
    return calls


def assert_number_heard_as_one_turn(record: TurnRecord) -> None:
    assert "[number]" in record.caller.text  # the digits, redacted: all three groups in one turn
    # Trailing digits, or (on a slow machine) the longest silence while waiting for the transcript: never sooner.
    assert record.end_of_turn.rule in (EndOfTurnRule.TRAILING_NUMBER, EndOfTurnRule.NO_TRANSCRIPT)
    assert record.end_of_turn.silence_ms == 1200


def test_number_read_with_pauses_is_one_turn_with_every_latency_lever_on(voice_services, real_calls) -> None:
    """The real models at the telephone's pace: speculative ASR in each pause, the adaptive end of turn."""
    assert voice_services.turn_options.pause_report_ms is not None and voice_services.end_of_turn.enabled
    pipeline, _output = real_calls[TWILIO_SAMPLE_RATE_HZ]

    (record,) = caller_records(pipeline)
    assert_number_heard_as_one_turn(record)


def test_caller_audio_at_16_khz_is_transcribed_and_answered_as_over_the_phone(real_calls) -> None:
    """A wideband transport (a browser call) feeds 16 kHz PCM: the same turn, the same decision, the answer played."""
    phone, _ = real_calls[TWILIO_SAMPLE_RATE_HZ]
    wideband, output = real_calls[WIDEBAND_RATE_HZ]

    (record,) = caller_records(wideband)
    assert_number_heard_as_one_turn(record)
    (over_the_phone,) = caller_records(phone)
    decided = (record.decision.action, record.decision.rule, record.decision.intent, record.decision.reply)
    assert decided == (
        over_the_phone.decision.action,
        over_the_phone.decision.rule,
        over_the_phone.decision.intent,
        over_the_phone.decision.reply,
    )
    answer = [played for played in output.played if played.mark.startswith("2.")]
    assert answer and all(played.audio.size > 0 for played in answer)
    assert record.processing_ms is not None


class SynthesizerFailingOn(FakeSynthesizer):
    """Fails for one text, as a synthesis that breaks mid-call would."""

    def __init__(self, failing_text: str) -> None:
        super().__init__([])
        self.failing_text = failing_text

    def synthesize(self, text: str) -> Iterator[np.ndarray]:
        if text == self.failing_text:
            raise RuntimeError("synthesis failed")
        yield from super().synthesize(text)


def test_after_a_fault_the_stream_is_handed_over_only_once_the_apology_was_heard(engine_en) -> None:
    # Closing the stream while the apology is still queued at the transport would cut it off: the caller would be
    # left in silence, which a fault must never do.
    opening_hours = engine_en.catalogue.intents["opening_hours"].reply
    voice = services(engine_en, FakeRecognizer(["-"]), SynthesizerFailingOn(opening_hours))
    voice.speech.preload([engine_en.catalogue.replies.technical_problem])
    output = RecordingOutput([])
    handed_over_before_the_mark: list[bool] = []

    async def call() -> None:
        pipeline = CallPipeline(voice, output)
        await pipeline.start()
        pipeline.feed_dtmf("7")  # opening hours: not cached, and its synthesis fails
        for _ in range(300):
            await asyncio.sleep(0.01)
            if any(played.mark.startswith("failure.") for played in output.played):
                break
        await asyncio.sleep(0.2)
        handed_over_before_the_mark.append(output.handed_over_at is not None)
        (apology,) = [played for played in output.played if played.mark.startswith("failure.")]
        pipeline.marked(apology.mark)  # the transport reports the apology played
        for _ in range(100):
            await asyncio.sleep(0.01)
            if output.handed_over_at is not None:
                break
        await pipeline.close()

    asyncio.run(call())
    voice.workers.shutdown()

    assert handed_over_before_the_mark == [False]
    assert output.handed_over_at is not None
    (failure,) = [record for record in output.records if record.decision.rule == "technical_failure"]
    assert failure.decision.reply == engine_en.catalogue.replies.technical_problem


def test_a_pause_reported_early_is_transcribed_only_once_its_audio_is_in(engine_en) -> None:
    """Over the phone the 16 kHz history lags the VAD by the resampler's delay (60-115 ms): a pause reported after
    32 ms of silence waits for the audio up to its last voiced window before it is transcribed."""
    recognizer = FakeRecognizer(["Four one seven."])
    voice = services(engine_en, recognizer, turn_options=TurnOptions(pause_report_ms=32))
    pipeline = CallPipeline(voice, RecordingOutput([]))
    requested: list[tuple[int, int, int]] = []
    speculation = pipeline._speculation
    request = speculation.request

    def spy(span, samples_16k):
        requested.append((span.start_ms, span.end_ms, samples_16k.size))
        request(span, samples_16k)

    speculation.request = spy
    asyncio.run(play_call(pipeline, first_group_frames(), silence_s=2.0))
    voice.workers.shutdown()

    assert requested
    for start_ms, end_ms, size in requested:
        audio_start_ms = max(0, start_ms - pipeline_module._TURN_PAD_MS)
        assert audio_start_ms + size * 1000 / 16_000 >= end_ms + pipeline_module._PAUSE_AUDIO_AFTER_MS
