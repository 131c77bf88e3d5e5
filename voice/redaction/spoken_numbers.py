"""Reading numbers and spelled letters in caller text as pieces of digits that keep their place in the text.

Speech recognition writes numbers as digits, as words or as both ("4111 1111 ...", "four one one one", "forty one
eleven", "oh six", "double five", "vier een een een", "tweeënveertig"), split by spaces, dashes or fillers,
without punctuation and in lower case. `tokenize` cuts a text into tokens with their offsets; `read_pieces` turns
the tokens into `Piece` objects, each the digits (or letters, for "n l" or "abna") read from one or a few tokens,
with the offsets of those tokens in the original text: ``read_pieces(tokenize("forty one 11"), "en")`` gives the
pieces "41" (0-9) and "11" (10-12). `runs` groups pieces that nothing but separators keep apart.

English and Dutch (`nl`) number words and fillers are known; letters are read by `voice.redaction.spelling`
(letter names, spelling alphabets, "N as in November").
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from voice.redaction.spelling import LETTER_NAMES, letter_readings, spelled_letter


def word_set(text: str) -> frozenset[str]:
    """ "uh um" -> frozenset({"uh", "um"})."""
    return frozenset(text.split())


def numbered(text: str, first: int = 0, step: int = 1) -> dict[str, int]:
    """ "zero one two" -> {"zero": 0, "one": 1, "two": 2}."""
    return {word: first + step * i for i, word in enumerate(text.split())}


FILLERS = word_set("uh um umm uhm er erm eh ehm euh hmm hm mm")
# Characters and words that may sit inside a number as read or written: "06-12345678", "(555) 123-4567", "4111,
# 1111". Anything else (a longer word, a colon) ends the number.
SEPARATORS = word_set("- \u2013 \u2014 , . / ( ) + plus") | FILLERS


def is_separator(norm: str, language: str) -> bool:
    """Whether a word may sit inside a number; Dutch "er" is the letter R (and a word), not a hesitation."""
    return norm in SEPARATORS and norm not in LETTER_NAMES[language]


_PLUS = word_set("+ plus")

_EN_UNITS = numbered("zero one two three four five six seven eight nine") | {"oh": 0, "o": 0, "nought": 0, "nil": 0}
_EN_TEENS = numbered("ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen", 10)
EN_TENS = numbered("twenty thirty forty fifty sixty seventy eighty ninety", 20, 10)
# Words a recogniser writes for a spoken digit ("for" for "four"); read as digits only between two spoken digits.
_EN_SOUND_ALIKES = {"to": 2, "too": 2, "for": 4, "fore": 4, "won": 1, "free": 3, "tree": 3, "ate": 8}
_NL_UNITS = numbered("nul een twee drie vier vijf zes zeven acht negen")
_NL_TEENS = numbered("tien elf twaalf dertien veertien vijftien zestien zeventien achttien negentien", 10)
_NL_TENS = numbered("twintig dertig veertig vijftig zestig zeventig tachtig negentig", 20, 10)
_NL_SIMPLE = _NL_UNITS | _NL_TEENS | _NL_TENS
# "tweeënveertig" (accents stripped: "tweeenveertig"), "eenentwintig".
_NL_COMPOUND = re.compile(rf"({'|'.join(_NL_UNITS)})en({'|'.join(_NL_TENS)})")
# The first half of a year said in two halves, written as one word.
_NL_CENTURIES = ("negentien", "achttien", "twintig")
_MULTIPLIERS = {"hundred": (100, 2), "thousand": (1000, 3), "honderd": (100, 2), "duizend": (1000, 3)}
_REPEATS = {"en": {"double": 2, "triple": 3}, "nl": {"dubbel": 2, "dubbele": 2}}
# "and" joins a number only after hundred or thousand ("two thousand and three"); Dutch "en" also joins a unit to
# a ten when the recogniser split "twee-en-veertig".
_CONNECTORS = {"en": "and", "nl": "en"}

_TOKEN = re.compile(r"\d+|[^\W\d_]+(?:['\u2019][^\W\d_]+)*|\S")


def fold(word: str) -> str:
    # Recognisers write "één" or "een", "tweeënveertig" or "tweeenveertig": compare without diacritics.
    decomposed = unicodedata.normalize("NFKD", word.replace("\u2019", "'"))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


@dataclass(frozen=True, slots=True)
class Token:
    text: str
    norm: str
    start: int
    end: int

    @property
    def is_digits(self) -> bool:
        return self.text.isdigit()

    @property
    def is_word(self) -> bool:
        return self.text[0].isalpha()


def tokenize(text: str) -> list[Token]:
    return [Token(m.group(), fold(m.group()), m.start(), m.end()) for m in _TOKEN.finditer(text)]


@dataclass(frozen=True, slots=True)
class Number:
    value: int
    open_width: int
    """Trailing zeros that a following smaller number fills in: 1 for "forty", 2 for "four hundred"."""


@functools.lru_cache(maxsize=4096)
def nl_number(word: str) -> Number | None:
    """Dutch writes numbers as one word: "vijfenveertig", "negentienhonderdvijfentachtig", "tweeduizenddrie"."""
    if word in _NL_SIMPLE:
        return Number(_NL_SIMPLE[word], 0)
    if match := _NL_COMPOUND.fullmatch(word):
        return Number(_NL_UNITS[match[1]] + _NL_TENS[match[2]], 0)
    for name in ("duizend", "honderd"):
        head, found, rest = word.partition(name)
        if not found:
            continue
        size, width = _MULTIPLIERS[name]
        factor = 1
        if head:
            head_number = nl_number(head)
            # "negentienhonderd" is 1900, "tweeduizend" 2000; "honderdduizend" is beyond what callers read.
            if head_number is None or head_number.open_width or not 0 < head_number.value < size:
                return None
            factor = head_number.value
        if not rest:
            return Number(factor * size, width)
        rest_number = nl_number(rest)
        if rest_number is None or not 0 < rest_number.value < size:
            return None
        return Number(factor * size + rest_number.value, rest_number.open_width)
    return _nl_year(word)


def _nl_year(word: str) -> Number | None:
    """A year said as two numbers in one word: "negentienachtenzeventig" (1978), "twintigvierentwintig" (2024)."""
    for head in _NL_CENTURIES:
        rest = word.removeprefix(head)
        if rest != word and (rest_number := nl_number(rest)) is not None and 10 <= rest_number.value < 100:
            return Number(_NL_SIMPLE[head] * 100 + rest_number.value, 0)
    return None


def _number_word(norm: str, language: str) -> Number | None:
    if language == "nl":
        return nl_number(norm)
    if norm in _EN_UNITS:
        return Number(_EN_UNITS[norm], 0)
    if norm in _EN_TEENS:
        return Number(_EN_TEENS[norm], 0)
    if norm in EN_TENS:
        return Number(EN_TENS[norm], 1)
    return None


@dataclass(slots=True)
class Piece:
    """Digits (or letters) read from one or a few tokens: "4111", "forty one" -> "41", "double five" -> "55"."""

    digits: str
    """The digits, or "" for a piece of letters."""
    letters: tuple[str, ...]
    """What the piece reads as letters: ("N",) for "en" spelled, ("ABNA",) for "abna", ("O",) for "oh"."""
    start: int
    end: int
    first_token: int
    last_token: int
    lead_start: int
    """Start including a "+", "plus" or "(" just before, for a span that begins with this piece."""
    plus: bool = False
    """Preceded by "+" or "plus": an international phone number."""
    spoken: bool = False
    """Made of number words, so that a following number word may add to it ("forty" + "one")."""
    value: int = 0
    open_width: int = 0
    tail: int = 0
    """The part of `value` added since the last "hundred" or "thousand", which a following "hundred" multiplies."""
    turn: int = 0
    """The turn the piece comes from, when pieces of several turns are searched together."""

    @property
    def readings(self) -> tuple[str, ...]:
        return ((self.digits,) if self.digits else ()) + self.letters

    def set_value(self, value: int, open_width: int, tail: int, end: int, last_token: int) -> None:
        self.value, self.open_width, self.tail = value, open_width, tail
        self.digits = str(value)
        self.end, self.last_token = end, last_token


class _PieceReader:
    """Turns tokens into pieces, joining number words that make one number: "four hundred and twenty one"."""

    def __init__(self, tokens: Sequence[Token], language: str) -> None:
        self.tokens = tokens
        self._norms = [token.norm for token in tokens]
        self.language = language
        self.pieces: list[Piece] = []
        self.joined: list[bool] = []
        """joined[k]: nothing but separators between pieces k and k+1."""
        self._broken = True
        self._soft = False  # only spaces or hyphens since the last piece: number words may still combine
        self._plus = False
        self._lead_start: int | None = None

    def read(self) -> tuple[list[Piece], list[bool]]:
        i = 0
        while i < len(self.tokens):
            i = self._step(i)
        return self.pieces, self.joined

    def _mergeable(self) -> Piece | None:
        if self.pieces and self._soft and not self._broken and self.pieces[-1].spoken:
            return self.pieces[-1]
        return None

    def _next_index(self, i: int) -> int:
        while i < len(self.tokens) and self.tokens[i].norm == "-":
            i += 1
        return i

    def _add(self, piece: Piece) -> None:
        if self.pieces:
            self.joined.append(not self._broken)
        piece.plus = self._plus
        piece.lead_start = self._lead_start if self._lead_start is not None else piece.start
        self.pieces.append(piece)
        self._broken, self._soft, self._plus, self._lead_start = False, True, False, None

    def _add_digits(self, digits: str, first: int, last: int) -> None:
        start, end = self.tokens[first].start, self.tokens[last].end
        self._add(Piece(digits, (), start, end, first, last, start))

    def _add_number(self, number: Number, first: int, letters: tuple[str, ...] = ()) -> None:
        token = self.tokens[first]
        piece = Piece("", letters, token.start, token.end, first, first, token.start, spoken=True)
        piece.set_value(number.value, number.open_width, number.value, token.end, first)
        self._add(piece)

    def _step(self, i: int) -> int:
        """Read the token at `i` (and any it joins); returns the index of the next token to read."""
        token = self.tokens[i]
        if token.is_digits:
            self._add_digits(token.text, i, i)
            return i + 1
        for joined_read in (
            self._spelled,
            self._multiplier,
            self._connector,
            self._repeat,
            self._sound_alike,
            self._number,
        ):
            next_index = joined_read(i)
            if next_index is not None:
                return next_index
        if is_separator(token.norm, self.language):
            if token.norm in _PLUS or token.norm == "(":
                self._plus = self._plus or token.norm in _PLUS
                self._lead_start = token.start if self._lead_start is None else self._lead_start
            self._soft = self._soft and token.norm == "-"
            return i + 1
        letters = letter_readings(token.norm, self.language) if token.is_word else ()
        if letters:
            self._add(Piece("", letters, token.start, token.end, i, i, token.start))
            return i + 1
        self._broken, self._soft, self._plus, self._lead_start = True, False, False, None
        return i + 1

    def _spelled(self, i: int) -> int | None:
        """ "n as in november", "n van nico", "november", "double u": one letter, read from one or a few words."""
        spelled = spelled_letter(self._norms, i, self.language)
        if spelled is None:
            return None
        letter, after = spelled
        first, last = self.tokens[i], self.tokens[after - 1]
        self._add(Piece("", (letter,), first.start, last.end, i, after - 1, first.start))
        return after

    def _multiplier(self, i: int) -> int | None:
        """ "hundred", "thousand": multiply the number before, or start one."""
        token, last = self.tokens[i], self._mergeable()
        if token.norm not in _MULTIPLIERS:
            return None
        size, width = _MULTIPLIERS[token.norm]
        # "two thousand four hundred": hundred multiplies what came after the thousand; thousand, all of it.
        if last is not None and size == 100 and 0 < last.tail < size:
            last.set_value(last.value - last.tail + last.tail * size, width, 0, token.end, i)
        elif last is not None and size == 1000 and 0 < last.value < size:
            last.set_value(last.value * size, width, 0, token.end, i)
        else:
            self._add_number(Number(size, width), i)
        return i + 1

    def _connector(self, i: int) -> int | None:
        """ "two thousand and three"; Dutch "twee en veertig" for "tweeënveertig". Otherwise "and" is a word."""
        last = self._mergeable()
        if self.tokens[i].norm != _CONNECTORS[self.language] or last is None:
            return None
        j = self._next_index(i + 1)
        following = _number_word(self.tokens[j].norm, self.language) if j < len(self.tokens) else None
        if following is None:
            return None
        if last.open_width >= 2 and 0 < following.value < 10**last.open_width:
            return i + 1
        unit = self.language == "nl" and last.value == last.tail and 0 < last.value < 10
        if unit and self.tokens[j].norm in _NL_TENS:
            value = following.value + last.value
            last.set_value(value, 0, value, self.tokens[j].end, j)
            return j + 1
        return None

    def _repeat(self, i: int) -> int | None:
        """ "double five" -> "55", "triple oh" -> "000"."""
        repeat = _REPEATS[self.language].get(self.tokens[i].norm)
        j = self._next_index(i + 1)
        if repeat is None or j >= len(self.tokens):
            return None
        following = self.tokens[j]
        digit = following.text if following.is_digits and len(following.text) == 1 else None
        number = _number_word(following.norm, self.language)
        if number is not None and number.value < 10 and number.open_width == 0:
            digit = str(number.value)
        if digit is None:
            return None
        self._add_digits(digit * repeat, i, j)
        return j + 1

    def _sound_alike(self, i: int) -> int | None:
        """ "four one one one for one ...": "for" is a digit between two spoken digits, and only there."""
        norm = self.tokens[i].norm
        if self.language != "en" or norm not in _EN_SOUND_ALIKES or not self.pieces or self._broken:
            return None
        previous = self.pieces[-1]
        after = _number_word(self.tokens[i + 1].norm, self.language) if i + 1 < len(self.tokens) else None
        if not (previous.spoken and len(previous.digits) == 1 and after is not None and after.value < 10):
            return None
        self._add_digits(str(_EN_SOUND_ALIKES[norm]), i, i)
        return i + 1

    def _number(self, i: int) -> int | None:
        """A number word: added to the number before when it fills its zeros ("forty" + "one"), else a new piece."""
        token, last = self.tokens[i], self._mergeable()
        number = _number_word(token.norm, self.language)
        if number is None:
            return None
        if last is not None and last.open_width > 0 and 0 < number.value < 10**last.open_width:
            last.set_value(last.value + number.value, number.open_width, last.tail + number.value, token.end, i)
            return i + 1
        # "oh" is 0 in a number and O in a spelled bank code ("r a b oh").
        spelled = self.language == "en" and token.norm in {"o", "oh"}
        self._add_number(number, i, letter_readings(token.norm, self.language) if spelled else ())
        return i + 1


def read_pieces(tokens: Sequence[Token], language: str) -> tuple[list[Piece], list[bool]]:
    """The pieces read from `tokens`, and for each pair of neighbours whether only separators stand between them."""
    return _PieceReader(tokens, language).read()


def piece_runs(pieces: Sequence[Piece], joined: Sequence[bool], skip: set[int], numeric: bool) -> list[list[int]]:
    """Indices of pieces in runs: digits only (`numeric`), or digits and letters, broken by words and `skip`."""
    runs: list[list[int]] = []
    current: list[int] = []
    for k, piece in enumerate(pieces):
        usable = k not in skip and (bool(piece.digits) or not numeric)
        if usable and current and current[-1] == k - 1 and joined[k - 1]:
            current.append(k)
            continue
        if current:
            runs.append(current)
        current = [k] if usable else []
    if current:
        runs.append(current)
    return runs


def digit_windows(pieces: Sequence[Piece], run: Sequence[int], lengths: range) -> Iterator[tuple[int, int, str]]:
    """(i, j, digits) for every stretch run[i:j] whose digits number is in `lengths`."""
    for i in range(len(run)):
        digits = ""
        for j in range(i, len(run)):
            digits += pieces[run[j]].digits
            if len(digits) >= lengths.stop:
                break
            if len(digits) in lengths:
                yield i, j + 1, digits
