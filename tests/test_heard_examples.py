"""Heard examples: the versioned file is valid and never saw the benchmark's lines or held-out voices; the engine
trained on it still reads every catalogue example as before and each heard example as its own intent; the loader
follows the catalogue; the generator is deterministic.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from qa.heard_examples import (
    DUTCH_HELD_OUT_VARIANTS,
    DUTCH_TRAIN_VARIANTS,
    HELD_OUT_ACCENTS,
    HELD_OUT_VARIANTS,
    TRAIN_ACCENTS,
    TRAIN_VARIANTS,
    benchmark_lines,
    close_to_source,
    keep_consistent,
    rendition,
    spoken_examples,
    trained_classifier,
)
from voice.dialogue import DialogueEngine
from voice.heard_examples import HeardExample, HeardExamplesFile, heard_examples_path, load_heard_examples
from voice.prompts import PromptError, load_catalogue
from voice.text import contains_phrase, normalize

PROMPTS_DIR = Path(__file__).resolve().parents[1] / "prompts"


@pytest.fixture(scope="module")
def heard_engine(engine_en: DialogueEngine) -> DialogueEngine:
    """The engine as VOICE_AGENT_HEARD_EXAMPLES=true builds it."""
    return DialogueEngine(engine_en.catalogue, heard_examples=True)


def versioned_file() -> HeardExamplesFile:
    return HeardExamplesFile.model_validate(yaml.safe_load(heard_examples_path(PROMPTS_DIR, "en").read_text("utf-8")))


def test_the_versioned_file_says_how_it_was_made_and_holds_out_what_it_says() -> None:
    heard = versioned_file()
    assert len(heard.examples) > 150
    assert heard.provenance["held_out_accents"] == list(HELD_OUT_ACCENTS)
    assert heard.provenance["generator"] == "python -m qa.heard_examples"
    excluded = benchmark_lines("en")
    for example in heard.examples:
        voice = example.voice.split(",")[0]
        if voice.startswith("espeak "):
            accent, variant = voice.removeprefix("espeak ").split("+")
            assert accent in TRAIN_ACCENTS and variant in TRAIN_VARIANTS, example
        else:
            assert voice.startswith("piper pace "), example
        # Never a benchmark or evaluation line, neither spoken nor heard.
        assert normalize(example.source, "en") not in excluded
        assert normalize(example.heard, "en") not in excluded


def test_every_heard_example_reads_as_its_own_intent(heard_engine: DialogueEngine) -> None:
    catalogue = heard_engine.catalogue
    heard = load_heard_examples(catalogue)
    assert sum(len(texts) for texts in heard.values()) > 150
    others = [(name, phrase) for name, intent in catalogue.intents.items() for phrase in intent.keywords]
    wrong = [
        (name, text, heard_engine.classifier.classify(text).intent)
        for name, texts in heard.items()
        for text in texts
        if heard_engine.classifier.classify(text).intent != name
    ]
    assert wrong == []
    clashes = [
        (name, text, keyword)
        for name, texts in heard.items()
        for text in texts
        for owner, keyword in others
        if owner != name and contains_phrase(normalize(text, "en"), keyword)
    ]
    assert clashes == []


def test_the_catalogue_examples_read_as_before(engine_en: DialogueEngine, heard_engine: DialogueEngine) -> None:
    changed = [
        (name, example, heard_engine.classifier.classify(example).intent)
        for name, intent in engine_en.catalogue.intents.items()
        for example in intent.examples
        if engine_en.classifier.classify(example).intent == name
        and heard_engine.classifier.classify(example).intent != name
    ]
    assert changed == []


def test_the_engine_leaves_the_heard_examples_out_unless_asked(
    engine_en: DialogueEngine, heard_engine: DialogueEngine
) -> None:
    name, texts = next(iter(load_heard_examples(engine_en.catalogue).items()))
    assert heard_engine.classifier.classify(texts[0]).nearest_example == texts[0]
    assert engine_en.classifier.classify(texts[0]).nearest_example in engine_en.catalogue.intents[name].examples


def write_heard(prompts: Path, examples: list[dict[str, str]]) -> None:
    body = {"provenance": {"generator": "test"}, "examples": examples}
    heard_examples_path(prompts, "en").write_text(yaml.safe_dump(body), "utf-8")


def test_an_example_whose_source_left_the_catalogue_is_not_used(prompts_copy: Path) -> None:
    write_heard(
        prompts_copy,
        [
            {"intent": "billing_question", "heard": "my last wheel", "source": "bill question", "voice": "v"},
            {"intent": "billing_question", "heard": "a meal question", "source": "no such example", "voice": "v"},
            # A source of another intent does not count either.
            {"intent": "payment", "heard": "bill quest on", "source": "bill question", "voice": "v"},
        ],
    )
    assert load_heard_examples(load_catalogue(prompts_copy, "en")) == {"billing_question": ("my last wheel",)}


@pytest.mark.parametrize(
    ("examples", "message"),
    [
        ([{"intent": "no_such_intent", "heard": "x y", "source": "bill question", "voice": "v"}], "unknown intent"),
        ([{"intent": "billing_question", "heard": "x y", "source": "bill question"}], "examples.0.voice"),
        ([{"intent": "billing_question", "heard": "", "source": "bill question", "voice": "v"}], "examples.0.heard"),
    ],
)
def test_a_malformed_file_stops_the_engine_with_the_file_named(
    prompts_copy: Path, examples: list[dict[str, str]], message: str
) -> None:
    write_heard(prompts_copy, examples)
    with pytest.raises(PromptError, match=message) as error:
        DialogueEngine.from_prompts(prompts_copy, "en", heard_examples=True)
    assert "heard_examples.yaml" in str(error.value)


def test_a_catalogue_without_the_file_has_none(prompts_copy: Path) -> None:
    heard_examples_path(prompts_copy, "en").unlink()
    assert load_heard_examples(load_catalogue(prompts_copy, "en")) == {}


def test_renditions_are_fixed_by_the_text_and_never_use_held_out_voices() -> None:
    for text in ("bill question", "i want to pay my bill", "where is my order"):
        for index in range(20):
            voice = rendition(text, index)
            assert voice == rendition(text, index)
            if voice.engine == "espeak":
                assert voice.accent in TRAIN_ACCENTS and voice.accent not in HELD_OUT_ACCENTS
                assert voice.variant in TRAIN_VARIANTS and voice.variant not in HELD_OUT_VARIANTS
            else:
                assert voice.engine == "piper" and voice.pace not in (0.8, 1.0, 1.4)


def test_benchmark_lines_are_never_spoken(engine_en: DialogueEngine) -> None:
    excluded = benchmark_lines("en")
    assert normalize("Can I speak to an agent, please?", "en") in excluded  # a fixture call's say turn
    spoken = spoken_examples(engine_en.catalogue)
    assert spoken and not any(normalize(text, "en") in excluded for _intent, text in spoken)


def test_transcripts_that_would_teach_a_wrong_intent_are_dropped(engine_en: DialogueEngine) -> None:
    catalogue = engine_en.catalogue

    def candidate(intent: str, heard: str, source: str) -> HeardExample:
        return HeardExample(intent=intent, heard=heard, source=source, voice="test")

    kept = candidate("billing_question", "I have a question about my last wheel.", "i have a question about my bill")
    candidates = [
        kept,
        candidate("billing_question", "I have a question about my bill.", "i have a question about my bill"),  # same
        candidate("billing_question", "Bill.", "bill question"),  # one word
        candidate("billing_question", "make a payment", "bill question"),  # another intent's example
        candidate("billing_question", "agent about my bill", "bill question"),  # another intent's keyword
        candidate("payment", "pay the wheel now", "pay now"),  # heard for two intents
        candidate("billing_question", "pay the wheel now", "bill question"),
    ]
    assert keep_consistent(candidates, catalogue, report=lambda _line: None) == [kept]


def test_dutch_renditions_never_use_the_dutch_benchmark_voices() -> None:
    for text in ("mijn factuur klopt niet", "waar is mijn bestelling"):
        for index in range(20):
            voice = rendition(text, index, "nl")
            assert voice == rendition(text, index, "nl")
            assert (voice.engine, voice.accent) == ("espeak", "nl")
            assert voice.variant in DUTCH_TRAIN_VARIANTS and voice.variant not in DUTCH_HELD_OUT_VARIANTS


def test_a_transcript_far_from_its_example_is_kept_only_when_the_catalogue_already_reads_it_so(
    engine_en: DialogueEngine,
) -> None:
    catalogue_only = trained_classifier(engine_en.catalogue, ())

    def heard(intent: str, text: str, source: str) -> HeardExample:
        return HeardExample(intent=intent, heard=text, source=source, voice="test")

    # Close: most words of the example survive.
    assert close_to_source(
        heard("billing_question", "I have a question about my last wheel", "i have a question about my bill"),
        catalogue_only,
    )
    # Far, and read as another intent or nothing: it would teach that ordinary words mean cancel_contract.
    far = heard("cancel_contract", "What's the pizza can say loudly?", "what's the penalty to cancel early")
    assert not close_to_source(far, catalogue_only)
    # Far, but the catalogue alone already reads it as its intent with margin: nothing wrong to learn.
    assert close_to_source(heard("technical_problem", "the internet keeps dropping", "wifi down"), catalogue_only)


@pytest.mark.slow
def test_the_generator_gives_the_same_transcripts_twice(engine_en: DialogueEngine) -> None:
    from qa.heard_examples import transcribe_all

    pairs = spoken_examples(engine_en.catalogue)[:2]
    first = transcribe_all(pairs, 2, engine_en.catalogue, workers=2)
    again = transcribe_all(pairs, 2, engine_en.catalogue, workers=1)
    assert first == again
    # Every example's first rendition before any second one.
    assert [(example.intent, example.source) for example in first] == [pair for _ in range(2) for pair in pairs]
    assert [example.voice for example in first] == [rendition(text, i).describe() for i in (0, 1) for _n, text in pairs]
    assert all(example.heard for example in first)


def test_the_dutch_file_never_heard_the_dutch_benchmark_voices_or_lines() -> None:
    heard = HeardExamplesFile.model_validate(yaml.safe_load(heard_examples_path(PROMPTS_DIR, "nl").read_text("utf-8")))
    assert heard.examples
    assert heard.provenance["train_variants"] == list(DUTCH_TRAIN_VARIANTS)
    excluded = benchmark_lines("nl")
    for example in heard.examples:
        accent, variant = example.voice.split(",")[0].removeprefix("espeak ").split("+")
        assert accent == "nl" and variant in DUTCH_TRAIN_VARIANTS, example
        assert normalize(example.source, "nl") not in excluded
        assert normalize(example.heard, "nl") not in excluded


def test_the_dutch_catalogue_examples_read_as_before_with_the_heard_examples(engine_nl: DialogueEngine) -> None:
    heard_engine = DialogueEngine(engine_nl.catalogue, heard_examples=True)
    assert load_heard_examples(engine_nl.catalogue)
    changed = [
        (name, example)
        for name, intent in engine_nl.catalogue.intents.items()
        for example in intent.examples
        if engine_nl.classifier.classify(example).intent == name
        and heard_engine.classifier.classify(example).intent != name
    ]
    assert changed == []
