"""Sound-alike reading: unknown words read as the catalogue words they sound like, only when that helps."""

from __future__ import annotations

import pytest

from telephony.settings import Settings
from telephony.voice_services import dialogue_engine
from voice.dialogue import DialogueEngine
from voice.events import Transcript
from voice.sound_alike import SoundAlike, sound_key


@pytest.mark.parametrize(
    ("words", "language"),
    [
        (("bill", "wheel", "will", "fill"), "en"),
        (("phone", "fun"), "en"),
        (("agent", "ajent"), "en"),
        (("klacht", "klagt"), "nl"),
        (("factuur", "faktuur", "vaktuur"), "nl"),
    ],
)
def test_words_that_sound_alike_share_a_key(words: tuple[str, ...], language: str) -> None:
    assert len({sound_key(word, language) for word in words}) == 1, [sound_key(word, language) for word in words]


@pytest.mark.parametrize(("one", "other"), [("bill", "poll"), ("bill", "mail"), ("bill", "bills"), ("sale", "usually")])
def test_words_that_differ_in_vowel_consonant_or_length_do_not(one: str, other: str) -> None:
    assert sound_key(one, "en") != sound_key(other, "en")


def test_only_unknown_words_are_matched_and_the_most_frequent_sound_alike_wins() -> None:
    matcher = SoundAlike(["my bill", "the bill", "I will pay", "a fun day"], "en")
    assert matcher.match("wheel") == "bill"  # bill twice, will once
    assert matcher.match("will") is None  # a catalogue word stands for itself
    assert matcher.match("ab") is None  # too short to tell
    assert matcher.match("zebra") is None  # sounds like nothing in the catalogue


def test_a_tie_between_sound_alikes_replaces_nothing() -> None:
    matcher = SoundAlike(["my bill", "I will pay"], "en")
    assert matcher.match("wheel") is None


def test_a_rewrite_names_every_replaced_word_in_order() -> None:
    matcher = SoundAlike(["my bill is wrong", "my bills are high", "the router"], "en")
    rewrite = matcher.rewrite("My wheel, and my WHEELS!")
    assert rewrite is not None
    assert rewrite.text == "my bill and my bills"
    assert rewrite.replaced == (("wheel", "bill"), ("wheels", "bills"))
    assert rewrite.describe() == "'wheel' as 'bill', 'wheels' as 'bills'"
    assert matcher.rewrite("my bill is wrong") is None


def test_dutch_spelling_rules_apply_to_dutch() -> None:
    matcher = SoundAlike(["ik heb een klacht", "nog een klacht"], "nl")
    assert matcher.match("klagt") == "klacht"


@pytest.fixture(scope="module")
def sound_alike_en(engine_en: DialogueEngine) -> DialogueEngine:
    return DialogueEngine(engine_en.catalogue, sound_alike=True)


def decide(engine: DialogueEngine, text: str):
    state, _ = engine.start()
    return engine.step(state, Transcript(text))[1]


def test_a_turn_not_understood_is_read_again_with_sound_alikes_and_says_so(
    engine_en: DialogueEngine, sound_alike_en: DialogueEngine
) -> None:
    assert decide(engine_en, "about the wheel").rule == "not_understood"
    decision = decide(sound_alike_en, "about the wheel")
    assert (decision.intent, decision.rule) == ("billing_question", "intent")
    assert "sound-alike: heard 'wheel' as 'bill'" in decision.reasons
    assert decide(sound_alike_en, "about the wheel") == decision


@pytest.mark.parametrize(
    "text", ["my internet is down", "agent please", "I'd like to order a large pepperoni pizza", "purple elephants"]
)
def test_turns_understood_or_without_sound_alikes_are_decided_as_before(
    engine_en: DialogueEngine, sound_alike_en: DialogueEngine, text: str
) -> None:
    assert decide(sound_alike_en, text) == decide(engine_en, text)


def test_a_sound_alike_reading_never_transfers(engine_nl: DialogueEngine) -> None:
    # Heard from "wanneer komt de monteur om de glasvezel aan te sluiten" (an espeak-ng voice): "fluiten" sounds
    # like "bloeden", and the rewrite reads as an emergency; a guess must not send the caller to a transfer.
    heard = "Mijn eetkomte m'n toulkomte lasten meel aan te fluiten."
    engine = DialogueEngine(engine_nl.catalogue, sound_alike=True)
    rewrite = SoundAlike.from_catalogue(engine_nl.catalogue).rewrite(heard)
    assert rewrite is not None and rewrite.replaced == (("fluiten", "bloeden"),)
    assert engine_nl.step(engine_nl.start()[0], Transcript(rewrite.text))[1].intent == "emergency"
    decision = decide(engine, heard)
    assert (decision.rule, decision.intent) == ("not_understood", None)
    assert decision == decide(engine_nl, heard)


@pytest.mark.parametrize(("value", "reads_sound_alikes"), [(None, True), ("false", False)])
def test_the_servers_engine_reads_sound_alikes_unless_the_setting_turns_it_off(
    engine_en: DialogueEngine, monkeypatch: pytest.MonkeyPatch, value: str | None, reads_sound_alikes: bool
) -> None:
    if value is None:
        monkeypatch.delenv("VOICE_AGENT_SOUND_ALIKE", raising=False)
    else:
        monkeypatch.setenv("VOICE_AGENT_SOUND_ALIKE", value)
    engine = dialogue_engine(Settings(_env_file=None), engine_en.catalogue)
    decision = decide(engine, "about the wheel")
    assert (decision.intent == "billing_question") is reads_sound_alikes
    assert decision.rule == ("intent" if reads_sound_alikes else "not_understood")
