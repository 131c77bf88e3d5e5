"""Reading number words, digit groups and spelled letters as pieces of digits with offsets into the text."""

from __future__ import annotations

import pytest
from num2words import num2words

from voice.redaction.spoken_numbers import fold, nl_number, piece_runs, read_pieces, tokenize


def _read(text: str, language: str) -> list[tuple[str, str]]:
    """(digits, the text they were read from) for each piece of digits."""
    pieces, _ = read_pieces(tokenize(text), language)
    return [(piece.digits, text[piece.start : piece.end]) for piece in pieces if piece.digits]


def test_dutch_number_words_read_as_num2words_writes_them():
    # The recogniser and voice.text both spell numbers as num2words does; every one up to 9999 must read back.
    for n in range(10000):
        number = nl_number(fold(num2words(n, lang="nl")))
        assert number is not None and number.value == n, n


@pytest.mark.parametrize(
    ("language", "text", "pieces"),
    [
        ("en", "forty one 11", [("41", "forty one"), ("11", "11")]),
        ("en", "double five oh six", [("55", "double five"), ("0", "oh"), ("6", "six")]),
        ("en", "two thousand and three", [("2003", "two thousand and three")]),
        ("en", "four one for one", [("4", "four"), ("1", "one"), ("4", "for"), ("1", "one")]),
        ("nl", "tweeënveertig en twee en veertig", [("42", "tweeënveertig"), ("42", "twee en veertig")]),
    ],
)
def test_number_words_become_digits_that_keep_their_place(language, text, pieces):
    assert _read(text, language) == pieces


def test_spelled_letters_are_read_beside_digits_and_end_no_run_of_digits():
    text = "n l nine one a b n a"
    pieces, joined = read_pieces(tokenize(text), "en")
    assert [piece.readings for piece in pieces] == [("N",), ("L",), ("9",), ("1",), ("A",), ("B",), ("N",), ("A",)]
    assert piece_runs(pieces, joined, set(), numeric=True) == [[2, 3]]
    assert piece_runs(pieces, joined, set(), numeric=False) == [list(range(8))]


def test_a_word_between_numbers_breaks_the_run():
    pieces, joined = read_pieces(tokenize("4111 1111 then 1111"), "en")
    assert piece_runs(pieces, joined, set(), numeric=True) == [[0, 1], [3]]


@pytest.mark.parametrize(
    ("word", "value"),
    [("negentienachtenzestig", 1968), ("twintigeenentwintig", 2021), ("achttienvijftig", 1850)],
)
def test_dutch_year_said_in_two_halves_as_one_word(word, value):
    number = nl_number(word)
    assert number is not None and number.value == value


def test_dutch_century_before_a_unit_is_no_year():
    assert nl_number("negentienvijf") is None  # 1905 is said "negentienhonderdvijf"
