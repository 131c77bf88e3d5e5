"""The adaptive end-of-turn policy: which silence ends a pause, chosen from the words so far, always with a reason."""

from __future__ import annotations

import pytest

from voice.dialogue import DialogueEngine
from voice.end_of_turn import EndOfTurn, EndOfTurnOptions, EndOfTurnPolicy, EndOfTurnRule
from voice.events import Transcript
from voice.handoff import mask_digits

OPTIONS = EndOfTurnOptions()


@pytest.fixture(scope="module")
def policy() -> EndOfTurnPolicy:
    return EndOfTurnPolicy(OPTIONS, "en")


def choose(
    policy: EndOfTurnPolicy,
    engine: DialogueEngine,
    text: str,
    asr_confidence: float = 0.9,
    finished: float | None = None,
    voiced_tail_ms: float | None = None,
):
    transcript = Transcript(text, asr_confidence)
    state, _greeting = engine.start()
    _state, preview = engine.step(state, transcript)
    return policy.choose(transcript, preview, finished, voiced_tail_ms)


@pytest.mark.parametrize(
    "text",
    [
        "What are your opening hours?",
        "I want to pay my bill.",
        "Where is my order?",
        "Is there an outage in my area?",
        "Can I speak to an agent, please?",  # a keyword: hands over early too
    ],
)
def test_a_complete_request_ends_the_turn_sooner(policy, engine_en, text) -> None:
    choice = choose(policy, engine_en, text)

    assert choice.rule is EndOfTurnRule.COMPLETE_REQUEST
    assert choice.silence_ms == OPTIONS.complete_silence_ms
    assert "complete request" in choice.reason


def test_a_complete_request_counts_its_silence_from_the_last_loud_frame(policy, engine_en) -> None:
    # The VAD's voiced windows outlasted the caller's last loud frame by 160 ms: that lag is not silence the caller
    # must wait for again, so the VAD need only hear the rest of the 350 ms.
    choice = choose(policy, engine_en, "I want to pay my bill.", voiced_tail_ms=160.4)

    assert choice.rule is EndOfTurnRule.COMPLETE_REQUEST
    assert choice.silence_ms == OPTIONS.complete_silence_ms - 160
    assert choice.reason.endswith("; 350 ms from the last loud frame, 160 ms before the VAD's silence")


@pytest.mark.parametrize(
    ("options", "tail_ms", "why"),
    [
        (OPTIONS, 0.0, ""),
        (OPTIONS, None, ""),
        (OPTIONS, 251.0, "outlasted the last loud frame by 251 ms (> 250 ms, quiet speech)"),
        (EndOfTurnOptions(complete_from_last_loud=False), 160.0, ""),
    ],
)
def test_the_vad_counts_the_complete_silence_without_a_lag_to_credit(policy, engine_en, options, tail_ms, why) -> None:
    # No loud frame known, none after the VAD's end, a voiced stretch too long to be the VAD's lag (a quiet caller
    # below the loudness floor), or the option off: the VAD's own count, as for every other rule.
    choice = choose(EndOfTurnPolicy(options, "en"), engine_en, "I want to pay my bill.", voiced_tail_ms=tail_ms)

    assert choice.rule is EndOfTurnRule.COMPLETE_REQUEST
    assert choice.silence_ms == OPTIONS.complete_silence_ms
    assert why in choice.reason and "from the last loud frame," not in choice.reason


@pytest.mark.parametrize(
    ("text", "rule"),
    [("My account number is 417", EndOfTurnRule.TRAILING_NUMBER), ("Can you tell me", EndOfTurnRule.UNCLEAR)],
)
def test_only_the_complete_request_silence_is_counted_from_the_last_loud_frame(policy, engine_en, text, rule) -> None:
    # The longer silences are set against pauses as the VAD measures them: crediting its lag would shorten them.
    choice = choose(policy, engine_en, text, voiced_tail_ms=200.0)

    assert choice.rule is rule
    assert choice.silence_ms in (OPTIONS.trailing_silence_ms, OPTIONS.default_silence_ms)
    assert "loud frame" not in choice.reason


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("My account number is 417", EndOfTurnRule.TRAILING_NUMBER),
        ("four one seven", EndOfTurnRule.TRAILING_NUMBER),
        ("My internet is not working and", EndOfTurnRule.TRAILING_WORD),
        ("I have a question about", EndOfTurnRule.TRAILING_WORD),
        ("I want to change my", EndOfTurnRule.TRAILING_WORD),
        ("I would like to um", EndOfTurnRule.TRAILING_WORD),
        ("I was wondering whether...", EndOfTurnRule.TRAILING_WORD),
    ],
)
def test_words_that_trail_off_wait_longer(policy, engine_en, text, rule) -> None:
    choice = choose(policy, engine_en, text)

    assert choice.rule is rule
    assert choice.silence_ms == OPTIONS.trailing_silence_ms
    # The reason never repeats the caller's digits.
    assert "417" not in choice.reason


@pytest.mark.parametrize(
    "text",
    [
        "When are you",  # half a question the classifier still scores 0.66
        "Hi, I have a question",
        "The birch canoe slid on the smooth planks.",  # not understood
        "My phone",  # scores fraud 0.95, but a transfer on half a sentence needs a keyword
        "Thank you, that is all. Goodbye.",  # ending the call is never hurried
    ],
)
def test_words_that_are_not_clearly_a_complete_request_keep_the_default(policy, engine_en, text) -> None:
    choice = choose(policy, engine_en, text)

    assert choice.rule is EndOfTurnRule.UNCLEAR
    assert choice.silence_ms == OPTIONS.default_silence_ms


def test_a_doubtful_transcript_is_not_taken_as_complete(policy, engine_en) -> None:
    choice = choose(policy, engine_en, "What are your opening hours?", asr_confidence=0.3)

    assert choice.rule is EndOfTurnRule.UNCLEAR
    assert "recogniser confidence 0.30" in choice.reason


def test_no_words_and_no_preview(policy) -> None:
    assert policy.choose(Transcript("", 0.0), None).rule is EndOfTurnRule.UNCLEAR
    # Before the call has started there is no engine state to ask: never complete, but trailing still counts.
    assert policy.choose(Transcript("Where is my order?", 0.9), None).rule is EndOfTurnRule.UNCLEAR
    assert policy.choose(Transcript("Where is my order and", 0.9), None).rule is EndOfTurnRule.TRAILING_WORD


def test_the_same_words_always_give_the_same_choice(policy, engine_en) -> None:
    texts = ["Where is my order?", "I have a question about", "When are you", "four one seven"]

    first = [choose(policy, engine_en, text) for text in texts]
    again = [choose(policy, engine_en, text) for text in reversed(texts)][::-1]

    assert first == again


def test_switched_off_it_always_keeps_the_default(engine_en) -> None:
    off = EndOfTurnPolicy(EndOfTurnOptions(enabled=False), "en")

    choice = choose(off, engine_en, "Where is my order?")

    assert choice.rule is EndOfTurnRule.FIXED
    assert choice.silence_ms == 800 and choice.reason == "adaptive end of turn is off"


def test_dutch_words_that_trail_off(engine_nl) -> None:
    policy = EndOfTurnPolicy(OPTIONS, "nl")
    state, _ = engine_nl.start()

    for text, rule in [
        ("mijn rekening en", EndOfTurnRule.TRAILING_WORD),
        ("vier een zeven", EndOfTurnRule.TRAILING_NUMBER),
    ]:
        transcript = Transcript(text, 0.9)
        assert policy.choose(transcript, engine_nl.step(state, transcript)[1]).rule is rule


def test_the_record_says_which_rule_and_silence_ended_the_turn() -> None:
    end = EndOfTurn(EndOfTurnRule.TRAILING_NUMBER, 1200, "the words so far end with a number", speculative_asr=True)

    line = end.describe()

    assert "after 1.2 s of silence" in line and "trailing_number" in line and "speculative ASR" in line
    assert mask_digits(line) == line  # a stored record masks runs of four digits: the silence stays readable


@pytest.mark.parametrize(
    ("fields", "message"),
    [({"complete_silence_ms": 0}, "complete_silence_ms"), ({"min_intent_confidence": 1.5}, "min_intent_confidence")],
)
def test_options_that_cannot_work_are_rejected(fields, message) -> None:
    with pytest.raises(ValueError, match=message):
        EndOfTurnOptions(**fields)
    with pytest.raises(ValueError, match="word lists"):
        EndOfTurnPolicy(OPTIONS, "fr")


def test_a_complete_request_that_sounds_finished_ends_the_turn_sooner(policy, engine_en) -> None:
    choice = choose(policy, engine_en, "I want to pay my bill.", finished=0.96)

    assert choice.rule is EndOfTurnRule.COMPLETE_REQUEST and choice.silence_ms == OPTIONS.complete_silence_ms
    assert "Smart Turn 0.96" in choice.reason


def test_a_complete_request_that_sounds_unfinished_keeps_the_default(policy, engine_en) -> None:
    # "I want to pay my bill" - pause - "and change my address": the words are whole, the voice is not.
    choice = choose(policy, engine_en, "I want to pay my bill", finished=0.2)

    assert choice.rule is EndOfTurnRule.SOUNDS_UNFINISHED and choice.silence_ms == OPTIONS.default_silence_ms
    assert "sounds unfinished (Smart Turn 0.20 < 0.50)" in choice.reason


def test_unclear_words_that_sound_finished_end_the_turn_after_the_finished_silence(policy, engine_en) -> None:
    # Not understood, from a doubtful transcript: without the sound it would wait the default 800 ms.
    choice = choose(policy, engine_en, "The birch canoe slid on the smooth planks.", 0.39, finished=0.98)

    assert choice.rule is EndOfTurnRule.SOUNDS_FINISHED and choice.silence_ms == OPTIONS.finished_silence_ms
    assert OPTIONS.complete_silence_ms < choice.silence_ms < OPTIONS.default_silence_ms


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        # Synthetic speech sounds finished mid-sentence; the words that trail off still win.
        ("My internet is not working and", EndOfTurnRule.TRAILING_WORD),
        ("My customer number is 417", EndOfTurnRule.TRAILING_NUMBER),
        # A goodbye is never hurried on the sound alone.
        ("Thank you, that is all. Goodbye.", EndOfTurnRule.UNCLEAR),
    ],
)
def test_a_finished_sound_never_shortens_trailing_words_or_a_goodbye(policy, engine_en, text, rule) -> None:
    choice = choose(policy, engine_en, text, finished=0.99)

    assert choice.rule is rule
    assert choice.silence_ms >= OPTIONS.default_silence_ms


def test_unclear_words_that_sound_unfinished_wait_the_trailing_silence(policy, engine_en) -> None:
    # The first half of "I have a question about my last bill" as the recogniser garbled it: the words say nothing,
    # the sound says the caller is not done.
    choice = choose(policy, engine_en, "I can request you them out.", finished=0.04)

    assert choice.rule is EndOfTurnRule.SOUNDS_UNFINISHED and choice.silence_ms == OPTIONS.trailing_silence_ms
    assert "not clearly a complete request" in choice.reason
    assert "it sounds unfinished (Smart Turn 0.04 < 0.50)" in choice.reason


def test_a_middling_sound_leaves_unclear_words_at_the_default(policy, engine_en) -> None:
    choice = choose(policy, engine_en, "The birch canoe slid on the smooth planks.", finished=0.7)

    assert choice.rule is EndOfTurnRule.UNCLEAR and choice.silence_ms == OPTIONS.default_silence_ms
    assert "Smart Turn 0.70" in choice.reason
