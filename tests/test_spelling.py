"""Letters spelled with letter names, spelling alphabets and example words."""

from __future__ import annotations

import pytest

from voice.redaction.spelling import letter_readings, spelled_letter
from voice.redaction.spoken_numbers import tokenize


def _spelled(text: str, language: str) -> tuple[str, int] | None:
    return spelled_letter([token.norm for token in tokenize(text)], 0, language)


@pytest.mark.parametrize(
    ("language", "text", "letter", "words"),
    [
        ("en", "R as in Romeo, then", "R", 4),
        ("en", "b for boy", "B", 3),
        ("en", "whiskey", "W", 1),
        ("en", "x-ray", "X", 3),
        ("en", "double u", "W", 2),
        ("nl", "K van Karel", "K", 3),
        ("nl", "pee van Pieter", "P", 3),
        ("nl", "Q zoals Quirinus", "Q", 3),
        ("nl", "IJmuiden", "Y", 1),
        ("nl", "Zaandam", "Z", 1),
        ("nl", "foxtrot", "F", 1),  # the NATO alphabet in Dutch calls too
    ],
)
def test_letters_spelled_with_an_alphabet_or_an_example(language, text, letter, words):
    assert _spelled(text, language) == (letter, words)


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("en", "n"),  # a bare letter reads as a letter anyway, and may be a word ("a", "i")
        ("en", "i for one think so"),
        ("en", "i like it"),  # the example word must start with the letter
        ("en", "as in november"),
        ("nl", "de van der berg"),
        ("nl", "een van de twee"),
    ],
)
def test_words_that_only_look_like_a_spelling(language, text):
    assert _spelled(text, language) is None


def test_dutch_and_english_letter_names():
    names = ("haa", "ie", "jee", "kaa", "kuu", "oo", "uu", "iks", "ij", "zet")
    assert "".join(letter_readings(word, "nl")[0] for word in names) == "HIJKQOUXYZ"
    assert letter_readings("aitch", "en") == ("H",)
    assert letter_readings("rabo", "en") == ("RABO",)  # a bank code said as a word
    assert letter_readings("hello", "en") == ()
