"""Letters as callers spell them: letter names, spelling alphabets and "N as in November" / "N van Nico".

Bank codes, country codes and postcodes are read letter by letter, and speech recognition writes what it hears:
"en el" for N L, "tee er ie oo" for T R I O (Dutch letter names), "november lima" (the NATO alphabet), "N van Nico,
L van Lodewijk" (the Dutch spelling alphabet) or "N as in November". `spelled_letter` reads the spelling-alphabet
forms, which take one or a few words; `letter_readings` reads one word as a letter name or as letters written out
("abna"). Words are compared folded (lower case, without diacritics), as `voice.redaction.spoken_numbers.fold`
gives them.
"""

from __future__ import annotations

from collections.abc import Sequence


def _pairs(text: str) -> dict[str, str]:
    """ "ay=A bee=B" -> {"ay": "A", "bee": "B"}."""
    return dict(pair.split("=") for pair in text.split())


def _alphabet(text: str) -> dict[str, str]:
    """ "alpha alfa bravo" -> {"alpha": "A", "alfa": "A", "bravo": "B"}: each word stands for its first letter."""
    return {word: word[0].upper() for word in text.split()}


# Letter names as a recogniser writes them when a caller says the letter.
LETTER_NAMES = {
    "en": _pairs(
        "ay=A aye=A bee=B be=B see=C sea=C cee=C dee=D ee=E ef=F eff=F gee=G aitch=H haitch=H eye=I jay=J kay=K "
        "el=L ell=L em=M en=N oh=O o=O pee=P pea=P cue=Q queue=Q ar=R are=R es=S ess=S tee=T tea=T you=U vee=V "
        "ex=X why=Y wye=Y zed=Z zee=Z"
    ),
    "nl": _pairs(
        "a=A aa=A bee=B be=B cee=C ce=C dee=D de=D ee=E e=E ef=F gee=G ge=G haa=H ha=H ie=I i=I jee=J je=J jot=J "
        "kaa=K ka=K el=L em=M en=N oo=O o=O pee=P pe=P kuu=Q ku=Q er=R es=S tee=T te=T uu=U u=U vee=V ve=V "
        "wee=W we=W iks=X ix=X ei=Y ij=Y zet=Z"
    ),
}

# Spelling alphabets: each word stands for its first letter. The NATO alphabet is used in both languages.
_NATO = _alphabet(
    "alpha alfa bravo charlie delta echo foxtrot golf hotel india juliet juliett kilo lima mike november oscar papa "
    "quebec romeo sierra tango uniform victor whiskey whisky xray yankee zulu"
)
# The Dutch spelling alphabet, with the older and regional variants callers still use.
_DUTCH = _alphabet(
    "anton anna amsterdam bernard bernhard cornelis dirk dora eduard edward ferdinand frits gerard gerrit hendrik "
    "henk izaak isaac izak johan jacob karel kees lodewijk leo marie maria nico nicolaas otto pieter peter quirinus "
    "quinten rudolf richard simon sierra theodoor theo teunis utrecht victor willem xantippe xerxes ypsilon zaandam "
    "zacharias"
) | {"ijmuiden": "Y"}  # IJ, the Dutch digraph, stands for the Y in letters that have no IJ (IBANs, postcodes)
ALPHABETS = {"en": _NATO, "nl": _NATO | _DUTCH}

# Two words for one letter, with or without a hyphen between them.
_TWO_WORD_NAMES = {("double", "u"): "W", ("double", "you"): "W", ("x", "ray"): "X", ("griekse", "y"): "Y"}
# "N as in November", "N for Nancy", "N van Nico", "N zoals Nico", "N als in Nico". Not "like": "i like it".
_EXAMPLE_LINKS = {"en": (("as", "in"), ("for",)), "nl": (("van",), ("zoals",), ("als", "in"))}
# Function words that start with the letter before them by chance: "d van de", "i for it".
_NOT_EXAMPLES = frozenset(_alphabet("de der den des dat die dit deze het een uw u the it its is in a an and"))
# Bank codes and country codes are read as one short word ("abna", "rabo", "nl").
_MAX_LETTER_WORD = 4


def _letter(norm: str, language: str) -> str | None:
    """The letter a single word names: "n", "en", "november" -> "N"."""
    if len(norm) == 1 and norm.isascii() and norm.isalpha():
        return norm.upper()
    return LETTER_NAMES[language].get(norm) or ALPHABETS[language].get(norm)


def _skip_hyphens(norms: Sequence[str], i: int) -> int:
    while i < len(norms) and norms[i] == "-":
        i += 1
    return i


def _example(norms: Sequence[str], i: int, letter: str, language: str) -> int | None:
    """The index after "as in November" at `i` when the example word starts with `letter`, else None."""
    for link in _EXAMPLE_LINKS[language]:
        j = i + len(link)
        if tuple(norms[i:j]) != link or j >= len(norms):
            continue
        word = norms[j]
        if ALPHABETS[language].get(word) == letter or (word[:1].upper() == letter and word not in _NOT_EXAMPLES):
            return j + 1
    return None


def spelled_letter(norms: Sequence[str], i: int, language: str) -> tuple[str, int] | None:
    """A letter spelled with a spelling alphabet or an example word from `norms[i]` on, and the index after it.

    ``spelled_letter(["n", "as", "in", "november", "l"], 0, "en") == ("N", 4)``; "november" alone gives ("N", 1),
    "double u" ("W", 2), "n van nico" ("N", 3) in Dutch. A bare letter or letter name ("n", "en") gives None: it
    reads as a letter anyway (`letter_readings`), and may also be a word.
    """
    norm = norms[i]
    j = _skip_hyphens(norms, i + 1)
    if j < len(norms) and (norm, norms[j]) in _TWO_WORD_NAMES:
        return _TWO_WORD_NAMES[norm, norms[j]], j + 1
    letter = _letter(norm, language)
    if letter is None:
        return None
    after = _example(norms, i + 1, letter, language)
    if after is not None:
        return letter, after
    if norm in ALPHABETS[language]:
        return letter, i + 1
    return None


def letter_readings(norm: str, language: str) -> tuple[str, ...]:
    """What one word reads as when letters are spelled: ("N",) for "en", ("ABNA",) for "abna", () for "hello"."""
    readings: list[str] = []
    if norm in LETTER_NAMES[language]:
        readings.append(LETTER_NAMES[language][norm])
    if len(norm) <= _MAX_LETTER_WORD and norm.isascii() and norm.isalpha():
        readings.append(norm.upper())
    return tuple(dict.fromkeys(readings))
