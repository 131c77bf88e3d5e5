"""The intent classifier: robust to speech-recognition text, deterministic, and explains itself."""

from __future__ import annotations

import pytest

from voice.intents import IntentClassifier


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("charged right on my left wheel", "billing_question"),  # "charged twice on my last bill"
        ("my interned is down", "technical_problem"),
        ("I was charged 45 euros TWICE!", "billing_question"),
        ("i was charged forty five euros twice", "billing_question"),
        ("i want to cancel my con tract", "cancel_contract"),
        ("where is my parcel it was due 3 days ago", "order_status"),
        ("what time do you close on saturday", "opening_hours"),
    ],
)
def test_speech_recognition_style_text_is_understood(engine_en, text, intent):
    score = engine_en.classifier.classify(text)
    assert score is not None
    assert score.intent == intent, score


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("mijn factuur is veel te hoog", "billing_question"),
        ("het internet doet het niet", "technical_problem"),
        ("ik wil mijn abonnement opzeggen", "cancel_contract"),
        ("hoe laat zijn jullie open", "opening_hours"),
    ],
)
def test_dutch_is_understood(engine_nl, text, intent):
    assert engine_nl.classifier.classify(text).intent == intent


def test_numbers_and_words_score_the_same(engine_en):
    assert engine_en.classifier.classify("i paid 45 euros twice") == engine_en.classifier.classify(
        "I paid forty-five euros twice."
    )


def test_no_words_gives_no_score(engine_en):
    assert engine_en.classifier.classify("") is None
    assert engine_en.classifier.classify("?!") is None
    assert engine_en.classifier.classify("um uh") is None


def test_score_carries_evidence(engine_en):
    score = engine_en.classifier.classify("i have a question about my bill")
    assert score.runner_up != score.intent
    assert score.confidence >= score.runner_up_confidence
    assert 0.0 < score.similarity <= 1.0
    assert score.nearest_example in engine_en.catalogue.intents[score.intent].examples
    assert "bill" in " ".join(score.key_words)


def test_training_twice_gives_identical_scores():
    examples = {
        "greet": ["hello there", "good morning", "hi how are you"],
        "bye": ["goodbye", "see you later", "bye for now"],
        "bill": ["my bill is wrong", "question about the invoice", "why was i charged"],
    }
    first, second = IntentClassifier(examples, "en"), IntentClassifier(examples, "en")
    for text in ("hello", "my invoice", "later", "zzz"):
        assert first.classify(text) == second.classify(text)


def test_bad_training_data_is_refused():
    with pytest.raises(ValueError, match="at least two intents"):
        IntentClassifier({"only": ["one"]}, "en")
    with pytest.raises(ValueError, match="intents without examples: empty"):
        IntentClassifier({"full": ["a b"], "empty": []}, "en")
