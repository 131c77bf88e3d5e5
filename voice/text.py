"""Normalisation of caller text, so that typed, written and speech-recognised text look alike.

Speech recognition writes "3 days", "three days" or "Three days." for the same words; the classifier and the
keyword rules see one form: lower case, no punctuation, numbers spelled out as words.
"""

from __future__ import annotations

import re
import unicodedata

from num2words import num2words

# Apostrophes are kept inside words ("don't"), every other non-word character becomes a space.
_NUMBER = re.compile(r"\d+")
_NOT_WORD = re.compile(r"[^\w']+")
_STRAY_APOSTROPHE = re.compile(r"(?<!\w)'|'(?!\w)")
# Hesitations carry no meaning, and a turn of only "um uh" must not read as "yes".
_FILLERS = {
    "en": frozenset({"uh", "um", "umm", "uhm", "er", "erm", "hmm", "hm", "mm", "mhm", "ah"}),
    "nl": frozenset({"eh", "ehm", "uh", "uhm", "um", "hmm", "hm", "mm", "euh"}),
}
# Sounds that mean "yes" although made of filler syllables: joined into one word before fillers are dropped.
_JOINED = {"uh huh": "uhhuh", "mm hmm": "mmhmm", "mhm": "mmhmm", "uh uh": "uhuh"}
# Numbers longer than this are read digit by digit, as callers read account and phone numbers.
_MAX_CARDINAL_DIGITS = 4


def _strip_accents(text: str) -> str:
    # Recognisers write "één" or "een", "beëindigen" or "beeindigen": compare without diacritics.
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _spell_number(digits: str, language: str) -> str:
    if len(digits) > _MAX_CARDINAL_DIGITS or (len(digits) > 1 and digits.startswith("0")):
        return " ".join(num2words(int(d), lang=language) for d in digits)
    return num2words(int(digits), lang=language)


def normalize(text: str, language: str) -> str:
    """Return `text` in the one form the engine compares: lower case words separated by single spaces.

    Args:
        text: caller text as typed or as transcribed.
        language: "en" or "nl", for spelling out numbers.

    Returns:
        For example ``normalize("I paid 45 EUR, twice!", "en") == "i paid forty five eur twice"``.
    """
    text = _strip_accents(text.replace("\u2019", "'")).lower()
    text = _NUMBER.sub(lambda m: " " + _strip_accents(_spell_number(m.group(), language)) + " ", text)
    text = _NOT_WORD.sub(" ", text.replace("-", " "))
    text = _STRAY_APOSTROPHE.sub(" ", text)
    padded = f" {' '.join(text.split())} "
    for sound, word in _JOINED.items():
        padded = padded.replace(f" {sound} ", f" {word} ")
    fillers = _FILLERS.get(language, frozenset())
    return " ".join(word for word in padded.split() if word not in fillers)


def contains_phrase(normalized_text: str, normalized_phrase: str) -> bool:
    """True when the phrase occurs in the text as whole words (both already normalised)."""
    return f" {normalized_phrase} " in f" {normalized_text} "
