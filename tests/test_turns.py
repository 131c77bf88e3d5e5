"""End-of-turn detection: pure tests on made-up probability sequences, and one on real audio through the VAD."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

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
from voice.wavfile import read_wav

WINDOW_MS = 32
FIXTURE = Path(__file__).resolve().parents[1] / "audio_fixtures" / "number_with_pauses_16k.wav"


def windows(probability: float, duration_ms: int) -> list[float]:
    """`duration_ms` of windows at one probability; durations are whole windows, to keep the arithmetic exact."""
    assert duration_ms % WINDOW_MS == 0, f"{duration_ms} ms is not a whole number of {WINDOW_MS} ms windows"
    return [probability] * (duration_ms // WINDOW_MS)


SPEECH, SILENCE = 0.9, 0.02


def run(probabilities: list[float], options: TurnOptions | None = None) -> list[TurnEvent]:
    return TurnDetector(options, window_ms=WINDOW_MS).process(probabilities)


def test_short_click_is_not_speech() -> None:
    # 192 ms of confident "speech" is under min_speech_ms (200).
    detector = TurnDetector(window_ms=WINDOW_MS)

    events = detector.process(windows(SILENCE, 320) + windows(0.99, 192) + windows(SILENCE, 1600))

    assert events == []
    assert not detector.in_speech


def test_speech_after_a_click_starts_at_the_speech() -> None:
    events = run(windows(SILENCE, 320) + windows(0.99, 96) + windows(SILENCE, 96) + windows(SPEECH, 640))

    assert events == [SpeechStarted(at_ms=512)]


def test_speech_is_reported_once_min_speech_has_passed() -> None:
    detector = TurnDetector(window_ms=WINDOW_MS)
    detector.process(windows(SILENCE, 320) + windows(SPEECH, 192))
    assert not detector.in_speech

    events = detector.process(windows(SPEECH, 32))

    # Reported 224 ms in (the first whole window past 200 ms), dated from where the speech began.
    assert events == [SpeechStarted(at_ms=320)]
    assert detector.in_speech


def test_pause_shorter_than_end_silence_keeps_the_turn() -> None:
    events = run(windows(SPEECH, 1024) + windows(SILENCE, 768) + windows(SPEECH, 1024) + windows(SILENCE, 1024))

    assert events == [SpeechStarted(at_ms=0), TurnEnded(start_ms=0, end_ms=2816)]


def test_end_of_turn_after_silence() -> None:
    detector = TurnDetector(window_ms=WINDOW_MS)
    detector.process(windows(SILENCE, 320) + windows(SPEECH, 960))
    ended_at_ms = None

    for probability in windows(SILENCE, 1600):
        if detector.process([probability]):
            ended_at_ms = detector.now_ms
            break

    # Exactly end_of_turn_silence_ms after the last voiced window, which ends at 1280 ms.
    assert ended_at_ms == 1280 + 800
    assert not detector.in_speech


def test_turn_spans_first_to_last_voiced_window() -> None:
    events = run(windows(SILENCE, 320) + windows(SPEECH, 960) + windows(SILENCE, 1600))

    assert events == [SpeechStarted(at_ms=320), TurnEnded(start_ms=320, end_ms=1280)]


def test_hysteresis() -> None:
    # From silence, a probability under the start threshold never starts speech...
    assert run(windows(0.45, 3200)) == []
    # ...but once speaking, a probability above the end threshold keeps the caller speaking (a soft passage).
    events = run(windows(SPEECH, 320) + windows(0.4, 2048) + windows(SILENCE, 1600))
    assert events == [SpeechStarted(at_ms=0), TurnEnded(start_ms=0, end_ms=2368)]
    # A probability wobbling across the start threshold is one stretch of speech, not a string of clicks.
    wobble = [0.55, 0.4] * 10
    assert run(windows(SILENCE, 320) + wobble + windows(SILENCE, 1600)) == [
        SpeechStarted(at_ms=320),
        TurnEnded(start_ms=320, end_ms=320 + 20 * WINDOW_MS),
    ]
    # Without hysteresis (both thresholds at 0.5), the same wobble is only 32 ms clicks.
    no_hysteresis = TurnOptions(speech_start_threshold=0.5, speech_end_threshold=0.5)
    assert run(windows(SILENCE, 320) + wobble + windows(SILENCE, 1600), no_hysteresis) == []


def test_pause_ends_only_below_the_end_threshold_and_resumes_only_above_the_start_threshold() -> None:
    # 0.45 in a pause neither ends the silence (it is under the start threshold) nor counts as speech.
    events = run(windows(SPEECH, 640) + windows(0.2, 384) + windows(0.45, 416) + windows(SILENCE, 1600))

    assert events == [SpeechStarted(at_ms=0), TurnEnded(start_ms=0, end_ms=640)]


def test_max_turn_length_forces_an_end() -> None:
    options = TurnOptions(max_turn_ms=3_200)
    events = run(windows(SPEECH, 8_000) + windows(SILENCE, 1_600), options)

    assert events == [
        SpeechStarted(at_ms=0),
        TurnEnded(start_ms=0, end_ms=3_200, cut=True),
        TurnEnded(start_ms=3_200, end_ms=6_400, cut=True),
        TurnEnded(start_ms=6_400, end_ms=8_000),
    ]


def test_max_turn_length_reached_in_a_pause_ends_at_the_last_speech() -> None:
    options = TurnOptions(max_turn_ms=3_200)
    detector = TurnDetector(options, window_ms=WINDOW_MS)

    events = detector.process(windows(SPEECH, 2_880) + windows(SILENCE, 640))

    assert events == [SpeechStarted(at_ms=0), TurnEnded(start_ms=0, end_ms=2_880, cut=True)]
    assert not detector.in_speech


def test_max_turn_length_is_never_exceeded_with_default_options() -> None:
    events = run(windows(SPEECH, 64_000) + windows(SILENCE, 1_600))

    turns = [event for event in events if isinstance(event, TurnEnded)]
    assert len(turns) == 3
    # 30 s is not a whole number of 32 ms windows: the cut falls in the window that reaches it.
    assert all(turn.end_ms - turn.start_ms < 30_000 + WINDOW_MS for turn in turns)
    assert [turn.start_ms for turn in turns[1:]] == [turn.end_ms for turn in turns[:-1]]


def test_speech_started_reported_once() -> None:
    # Dips, soft passages and short pauses inside one turn; then a second turn.
    first = (
        windows(SPEECH, 640)
        + windows(0.3, 64)
        + windows(SPEECH, 320)
        + windows(0.4, 320)
        + windows(SILENCE, 640)
        + windows(SPEECH, 640)
    )
    second = windows(SPEECH, 960)
    events = run(first + windows(SILENCE, 1600) + second + windows(SILENCE, 1600))

    assert [type(event) for event in events] == [SpeechStarted, TurnEnded, SpeechStarted, TurnEnded]
    # A turn cut at max_turn_ms while the caller keeps talking does not report a new start either.
    cut = run(windows(SPEECH, 8_000) + windows(SILENCE, 1_600), TurnOptions(max_turn_ms=3_200))
    assert sum(isinstance(event, SpeechStarted) for event in cut) == 1


def test_window_by_window_equals_all_at_once() -> None:
    rng = np.random.default_rng(7)
    # Blocky random speech and silence: runs of 1-40 windows at random probabilities.
    probabilities = np.repeat(rng.random(300), rng.integers(1, 40, 300))
    all_at_once = run(list(probabilities))

    detector = TurnDetector(window_ms=WINDOW_MS)
    one_by_one = [event for probability in probabilities for event in detector.process([probability])]

    assert one_by_one == all_at_once
    assert len(all_at_once) > 4


def test_flush_ends_the_turn_in_progress() -> None:
    detector = TurnDetector(window_ms=WINDOW_MS)
    detector.process(windows(SILENCE, 320) + windows(SPEECH, 640) + windows(SILENCE, 320))

    assert detector.flush() == [TurnEnded(start_ms=320, end_ms=960)]
    assert not detector.in_speech
    assert detector.flush() == []


def test_reset_restarts_time_and_forgets_speech() -> None:
    detector = TurnDetector(window_ms=WINDOW_MS)
    detector.process(windows(SPEECH, 640))

    detector.reset()

    assert not detector.in_speech
    assert detector.now_ms == 0
    assert detector.process(windows(SPEECH, 640)) == [SpeechStarted(at_ms=0)]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"speech_start_threshold": 1.5}, "speech_start_threshold"),
        ({"speech_start_threshold": 0.3, "speech_end_threshold": 0.4}, "must not exceed"),
        ({"end_of_turn_silence_ms": 0}, "end_of_turn_silence_ms"),
        ({"max_turn_ms": 100}, "max_turn_ms"),
    ],
)
def test_options_that_cannot_work_are_rejected(fields: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TurnOptions(**fields)


def test_turn_samples_pads_and_clips_to_the_buffer() -> None:
    samples = np.arange(16_000 * 3, dtype=np.float32)
    turn = TurnEnded(start_ms=100, end_ms=2_000)

    padded = turn_samples(samples, turn, pad_ms=200)
    assert padded[0] == 0 and padded[-1] == 2_200 * 16 - 1

    # A buffer that starts 1 s into the stream.
    later = turn_samples(samples[16_000:], TurnEnded(start_ms=1_500, end_ms=2_500), buffer_start_ms=1_000, pad_ms=0)
    assert later[0] == 1_500 * 16 and later.size == 1_000 * 16

    assert turn_samples(samples, TurnEnded(start_ms=5_000, end_ms=6_000)).size == 0


def read_fixture() -> np.ndarray:
    samples, rate_hz = read_wav(FIXTURE)
    assert rate_hz == 16_000
    return samples


def loud_spans_ms(samples_16k: np.ndarray, threshold_dbfs: float = -50.0) -> list[tuple[int, int]]:
    """Stretches of 10 ms frames louder than the threshold, merged across gaps under 300 ms: the spoken groups.

    The fixture's noise floor is -60 dBFS; -50 dBFS still catches the soft "f" and "th" at the groups' edges.
    """
    frames = samples_16k[: samples_16k.size // 160 * 160].reshape(-1, 160)
    loud = np.sqrt(np.mean(frames**2, axis=1)) >= 10 ** (threshold_dbfs / 20)
    spans: list[tuple[int, int]] = []
    for index in np.flatnonzero(loud).tolist():
        if spans and index * 10 - spans[-1][1] < 300:
            spans[-1] = (spans[-1][0], (index + 1) * 10)
        else:
            spans.append((index * 10, (index + 1) * 10))
    return spans


def vad_turns(samples_16k: np.ndarray, options: TurnOptions | None = None) -> list[TurnEvent]:
    from voice.vad import StreamingVad

    vad = StreamingVad()
    detector = TurnDetector(options, window_ms=vad.window_ms)
    events: list[TurnEvent] = []
    # 20 ms at a time, as Twilio's frames arrive once upsampled to 16 kHz.
    for start in range(0, samples_16k.size, 320):
        events += detector.process(vad.process(samples_16k[start : start + 320]))
    return events + detector.flush()


@pytest.mark.slow
def test_number_read_with_pauses_is_one_turn() -> None:
    samples = read_fixture()
    groups = loud_spans_ms(samples)
    # The fixture really has three groups with pauses of about 600 ms, or this test proves nothing.
    assert len(groups) == 3
    assert all(550 <= later[0] - earlier[1] <= 700 for earlier, later in itertools.pairwise(groups))

    events = vad_turns(samples)

    turns = [event for event in events if isinstance(event, TurnEnded)]
    assert len(turns) == 1
    assert sum(isinstance(event, SpeechStarted) for event in events) == 1
    (turn,) = turns
    assert not turn.cut
    # The audio handed to ASR holds every digit, from the first group's start to the last group's end.
    first_sample = turn.start_ms * 16 - 200 * 16
    last_sample = turn.end_ms * 16 + 200 * 16
    assert turn_samples(samples, turn).size == min(last_sample, samples.size) - max(first_sample, 0)
    assert max(first_sample, 0) <= groups[0][0] * 16
    assert min(last_sample, samples.size) >= groups[-1][1] * 16


@pytest.mark.slow
def test_number_read_with_pauses_splits_with_a_short_end_silence() -> None:
    # The VAD does hear the pauses: it is the end-of-turn silence that keeps the groups together.
    events = vad_turns(read_fixture(), TurnOptions(end_of_turn_silence_ms=480))

    assert sum(isinstance(event, TurnEnded) for event in events) == 3


# --- pauses reported for speculative ASR, and the silence of one pause chosen from outside -------------------------

PAUSES = TurnOptions(pause_report_ms=192)


def test_a_pause_is_reported_once_and_its_resumption_too() -> None:
    events = run(windows(SPEECH, 640) + windows(SILENCE, 384) + windows(SPEECH, 640) + windows(SILENCE, 1600), PAUSES)

    assert events == [
        SpeechStarted(at_ms=0),
        PauseStarted(start_ms=0, end_ms=640),
        SpeechResumed(at_ms=1024),
        PauseStarted(start_ms=0, end_ms=1664),
        TurnEnded(start_ms=0, end_ms=1664),
    ]
    # The turn that ends has the span of its last pause: a transcript made for that pause is the turn's.
    assert (events[3].start_ms, events[3].end_ms) == (events[4].start_ms, events[4].end_ms)
    assert events[4].silence_ms == 800


def test_no_pause_is_reported_unless_asked() -> None:
    events = run(windows(SPEECH, 640) + windows(SILENCE, 384) + windows(SPEECH, 640) + windows(SILENCE, 1600))

    assert not any(isinstance(event, PauseStarted | SpeechResumed) for event in events)


def test_a_longer_pause_silence_keeps_the_turn_open_past_the_default() -> None:
    detector = TurnDetector(PAUSES, window_ms=WINDOW_MS)
    (_, pause) = detector.process(windows(SPEECH, 640) + windows(SILENCE, 192))
    assert pause == PauseStarted(start_ms=0, end_ms=640)

    assert detector.set_pause_silence(1216, pause.end_ms) == []
    assert detector.process(windows(SILENCE, 992)) == []  # 1184 ms of silence: past 800, still one turn

    assert detector.process(windows(SILENCE, 32)) == [TurnEnded(start_ms=0, end_ms=640)]
    assert not detector.in_speech


def test_a_shorter_pause_silence_ends_a_pause_that_already_lasted_it() -> None:
    detector = TurnDetector(PAUSES, window_ms=WINDOW_MS)
    detector.process(windows(SPEECH, 640) + windows(SILENCE, 480))

    (ended,) = detector.set_pause_silence(352, turn_end_ms=640)

    assert ended == TurnEnded(start_ms=0, end_ms=640)
    assert ended.silence_ms == 352
    assert not detector.in_speech


def test_a_pause_silence_chosen_for_an_earlier_pause_is_ignored() -> None:
    detector = TurnDetector(PAUSES, window_ms=WINDOW_MS)
    detector.process(windows(SPEECH, 640) + windows(SILENCE, 384) + windows(SPEECH, 640) + windows(SILENCE, 480))

    # Chosen for the pause that ended at 640 ms; the caller has spoken since.
    assert detector.set_pause_silence(352, turn_end_ms=640) == []
    assert detector.in_speech


def test_a_pause_silence_lasts_one_pause_only() -> None:
    detector = TurnDetector(PAUSES, window_ms=WINDOW_MS)
    detector.process(windows(SPEECH, 640) + windows(SILENCE, 192))
    detector.set_pause_silence(1216, turn_end_ms=640)
    detector.process(windows(SILENCE, 384) + windows(SPEECH, 640))

    events = detector.process(windows(SILENCE, 1600))

    # The second pause ends at the default 800 ms again.
    assert events[-1] == TurnEnded(start_ms=0, end_ms=1856)
    assert events[-1].silence_ms == 800


def test_a_silence_chosen_after_the_caller_went_on_still_ends_the_turn_at_a_pause_that_lasted_it() -> None:
    # The same audio must give the same turns however late the choice comes: had the 352 ms been chosen in time, the
    # 480 ms pause would have ended the turn.
    detector = TurnDetector(PAUSES, window_ms=WINDOW_MS)
    detector.process(windows(SPEECH, 640) + windows(SILENCE, 480) + windows(SPEECH, 320))

    (ended,) = detector.end_at_resumed_pause(352, turn_end_ms=640)

    assert ended == TurnEnded(start_ms=0, end_ms=640) and ended.silence_ms == 352
    # The speech since the pause is the next turn, which goes on.
    assert detector.in_speech
    assert detector.process(windows(SILENCE, 800)) == [
        PauseStarted(start_ms=1120, end_ms=1440),
        TurnEnded(start_ms=1120, end_ms=1440),
    ]


def test_a_silence_chosen_after_the_caller_went_on_keeps_the_turn_when_the_pause_was_shorter() -> None:
    detector = TurnDetector(PAUSES, window_ms=WINDOW_MS)
    detector.process(windows(SPEECH, 640) + windows(SILENCE, 480) + windows(SPEECH, 320))

    assert detector.end_at_resumed_pause(800, turn_end_ms=640) == []
    assert detector.process(windows(SILENCE, 800)) == [
        PauseStarted(start_ms=0, end_ms=1440),
        TurnEnded(start_ms=0, end_ms=1440),
    ]


def test_a_late_silence_for_a_pause_before_the_last_reported_one_is_ignored() -> None:
    detector = TurnDetector(PAUSES, window_ms=WINDOW_MS)
    # Two reported pauses, the caller speaking after each: only the last can still end the turn.
    detector.process(
        windows(SPEECH, 640)
        + windows(SILENCE, 480)
        + windows(SPEECH, 320)
        + windows(SILENCE, 480)
        + windows(SPEECH, 320)
    )

    assert detector.end_at_resumed_pause(352, turn_end_ms=640) == []
    (ended,) = detector.end_at_resumed_pause(352, turn_end_ms=1440)
    assert ended == TurnEnded(start_ms=0, end_ms=1440)


@pytest.mark.slow
def test_number_read_with_pauses_stays_one_turn_when_each_pause_waits_for_trailing_digits() -> None:
    # What the adaptive end of turn does when the pause's transcript ends with a number: 1200 ms for that pause.
    from voice.vad import StreamingVad

    samples = read_fixture()
    vad = StreamingVad()
    detector = TurnDetector(TurnOptions(pause_report_ms=192), window_ms=vad.window_ms)
    events: list[TurnEvent] = []
    for start in range(0, samples.size, 320):
        for event in detector.process(vad.process(samples[start : start + 320])):
            events.append(event)
            if isinstance(event, PauseStarted):
                events += detector.set_pause_silence(1200, event.end_ms)
    events += detector.flush()

    assert sum(isinstance(event, PauseStarted) for event in events) >= 2  # the pauses between the groups
    assert sum(isinstance(event, TurnEnded) for event in events) == 1
