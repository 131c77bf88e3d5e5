"""Sound-alike reading: a word the catalogue never uses, read as the catalogue word it sounds like.

Over the phone the recogniser often writes a real English word that sounds like the caller's ("my last wheel" for
"my last bill"). Such a word is foreign to the catalogue, so the classifier cannot see the request behind it. A
coarse phonetic key (consonant classes, no vowels) links it to catalogue words that sound alike; the engine tries the
rewritten text only on a turn it did not understand, and the decision's reasons name every replaced word.

Deterministic: the keys and the vocabulary depend on the catalogue alone; a key shared by several catalogue words
picks the most frequent one, and a tie replaces nothing.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from voice.prompts import Catalogue
from voice.text import normalize

MIN_WORD_LETTERS = 3
"""Shorter words ("a", "to", "hm") sound like too many others to be read as anything."""
MIN_KEY_LENGTH = 2
"""A one-consonant key ("PL" is two) matches too much of the language."""

# Spellings of one sound, replaced before the letters are classed (longest first, per language).
_DIGRAPHS = {
    "en": (
        ("tch", "s"),
        ("wh", "w"),
        ("wr", "r"),
        ("kn", "n"),
        ("ph", "f"),
        ("gh", ""),
        ("th", "t"),
        ("sh", "s"),
        ("ch", "s"),
        ("ck", "k"),
        ("qu", "k"),
        ("ce", "se"),
        ("ci", "si"),
        ("cy", "sy"),
        ("ge", "je"),
        ("gi", "ji"),
    ),
    "nl": (
        ("sch", "sg"),
        ("ch", "g"),
        ("ph", "f"),
        ("th", "t"),
        ("dt", "t"),
        ("ij", "ei"),
        ("qu", "kw"),
        ("ce", "se"),
        ("ci", "si"),
    ),
}
# Consonants that telephone audio and the recogniser confuse share a class: lips (b p f v w), throat (k c g q x),
# hiss (s z), tongue tip (t d). Vowels, h, y and apostrophes carry no class.
_CLASSES = {
    **dict.fromkeys("bpfvw", "P"),
    **dict.fromkeys("kcgqx", "K"),
    **dict.fromkeys("sz", "S"),
    **dict.fromkeys("td", "T"),
    "j": "J",
    "l": "L",
    "m": "M",
    "n": "N",
    "r": "R",
}
_DUTCH_CLASSES = {**_CLASSES, "g": "G", "j": ""}
"""Dutch g and ch are one sound, apart from k; Dutch j is a glide."""
_REPEATS = re.compile(r"(.)\1+")
_VOWEL_GROUP = re.compile(r"[aeiouy]+")
_VOWELS = {"a": "A", "e": "I", "i": "I", "y": "I", "o": "U", "u": "U"}
"""A vowel group counts by its first letter, in three classes: open (a), front (e i y), back (o u); "wheel" and
"bill" share "PIL", "poll" (PUL) does not."""


def sound_key(word: str, language: str) -> str:
    """The word's consonant skeleton by sound class, such as "PL" for "bill", "wheel" and "fill".

    Args:
        word: one normalised word (lower case, no punctuation).
        language: "en" or "nl"; other languages use the English spelling rules.
    """
    spelled = word
    for spelling, sound in _DIGRAPHS.get(language, _DIGRAPHS["en"]):
        spelled = spelled.replace(spelling, sound)
    if language != "nl" and len(spelled) > MIN_WORD_LETTERS and spelled.endswith("e"):
        spelled = spelled[:-1]  # the silent e of "phone", "made"
    classes = _DUTCH_CLASSES if language == "nl" else _CLASSES
    key = _VOWEL_GROUP.sub(lambda group: _VOWELS[group.group()[0]], spelled)
    return _REPEATS.sub(r"\1", "".join(classes.get(letter, letter if letter.isupper() else "") for letter in key))


@dataclass(frozen=True, slots=True)
class Rewrite:
    """A text with its sound-alike words replaced by catalogue words."""

    text: str
    """The rewritten, normalised text."""
    replaced: tuple[tuple[str, str], ...]
    """(heard word, catalogue word) for every replacement, in text order."""

    def describe(self) -> str:
        """For the decision's reasons: "'wheel' as 'bill', 'wheels' as 'bills'"."""
        return ", ".join(f"{heard!r} as {word!r}" for heard, word in self.replaced)


class SoundAlike:
    """The catalogue's vocabulary by sound key; `rewrite` reads unknown words as known ones that sound alike."""

    def __init__(self, texts: Iterable[str], language: str) -> None:
        """
        Args:
            texts: the catalogue's examples and keywords (raw or normalised).
            language: "en" or "nl".
        """
        self.language = language
        counts = Counter(word for text in texts for word in normalize(text, language).split())
        self._vocabulary = frozenset(counts)
        by_key: dict[str, list[tuple[int, str]]] = {}
        for word, count in counts.items():
            key = sound_key(word, language)
            if len(word) >= MIN_WORD_LETTERS and len(key) >= MIN_KEY_LENGTH:
                by_key.setdefault(key, []).append((count, word))
        self._by_key: dict[str, str] = {}
        for key, candidates in by_key.items():
            ranked = sorted(candidates, key=lambda pair: (-pair[0], pair[1]))
            if len(ranked) == 1 or ranked[0][0] > ranked[1][0]:
                self._by_key[key] = ranked[0][1]

    @classmethod
    def from_catalogue(cls, catalogue: Catalogue) -> SoundAlike:
        """The vocabulary of every intent's examples and keywords."""
        texts = (text for intent in catalogue.intents.values() for text in intent.examples + intent.keywords)
        return cls(texts, catalogue.language)

    def known(self, word: str) -> bool:
        """The catalogue uses this normalised word."""
        return word in self._vocabulary

    def match(self, word: str) -> str | None:
        """The catalogue word `word` sounds like, when `word` is not a catalogue word itself; else None."""
        if word in self._vocabulary or len(word) < MIN_WORD_LETTERS:
            return None
        return self._by_key.get(sound_key(word, self.language))

    def rewrite(self, text: str) -> Rewrite | None:
        """`text` with every sound-alike word replaced; None when no word was replaced."""
        words = normalize(text, self.language).split()
        replaced = []
        for index, word in enumerate(words):
            match = self.match(word)
            if match is not None:
                replaced.append((word, match))
                words[index] = match
        if not replaced:
            return None
        return Rewrite(" ".join(words), tuple(replaced))
