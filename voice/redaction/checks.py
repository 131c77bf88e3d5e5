"""Checks that tell what a run of digits (or letters and digits) is: IBAN, card number, phone number, date.

Pure functions on the candidate text, with python-stdnum (IBAN, Luhn) and phonenumbers doing the arithmetic.
"""

from __future__ import annotations

import functools
import re
from datetime import date

import phonenumbers
from stdnum import iban, luhn, numdb
from stdnum.exceptions import ValidationError

# python-stdnum's IBAN registry: per country, the layout of the account part ("4!a10!n": four letters, ten digits).
_IBAN_REGISTRY = numdb.get("iban")
_IBAN_STRUCTURE = re.compile(r"(\d+)!([nac])")
_IBAN_CHARACTER = {"n": "0123456789", "a": "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "c": "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"}

# Regions whose numbers are always said with the trunk prefix 0 (or a country code).
_TRUNK_ZERO_REGIONS = frozenset({"GB", "NL", "BE"})
_POSSIBLE_PHONE_DIGITS = 10
CARD_DIGITS = range(13, 20)
# Dates read as digits: day first as in Europe, month first as in the US, or year first.
_DIGIT_DATE_LAYOUTS = ("DDMMYYYY", "MMDDYYYY", "YYYYMMDD", "DDMMYY", "MMDDYY")
# A full date at least this many years back is taken for a date of birth even without the word "born".
_MIN_AGE_YEARS = 16
YEARS = range(1900, 2100)


@functools.lru_cache(maxsize=256)
def iban_layout(country: str) -> tuple[str, ...]:
    """The characters allowed at each place of a country's IBAN; () when the country has none."""
    structure = _IBAN_REGISTRY.info(country)[0][1].get("bban")
    if not structure or not country.isalpha():
        return ()
    layout = [_IBAN_CHARACTER["a"]] * 2 + [_IBAN_CHARACTER["n"]] * 2
    for count, kind in _IBAN_STRUCTURE.findall(structure):
        layout += [_IBAN_CHARACTER[kind]] * int(count)
    return tuple(layout)


def bank_code_letters(country: str) -> int:
    """How many letters the account part of a country's IBAN starts with: its bank code, 4 for "NL" and "GB"."""
    layout = iban_layout(country)[4:]
    letters = _IBAN_CHARACTER["a"]
    return next((k for k, allowed in enumerate(layout) if allowed != letters), len(layout))


def could_start_iban(candidate: str) -> bool:
    """Whether an IBAN may start with `candidate`: letters, digits and length as its country's layout says."""
    if len(candidate) < 2:
        return candidate.isascii() and candidate.isupper()
    layout = iban_layout(candidate[:2])
    return len(candidate) <= len(layout) and all(c in allowed for c, allowed in zip(candidate, layout, strict=False))


@functools.lru_cache(maxsize=4096)
def is_iban(candidate: str) -> bool:
    try:
        # Without the national check some countries add: the ISO check digits already rule out chance matches, and
        # an IBAN that fails only its national check is still someone's account number.
        iban.validate(candidate, check_country=False)
    except ValidationError:
        return False
    return True


@functools.lru_cache(maxsize=4096)
def is_phone(digits: str, plus: bool, regions: tuple[str, ...]) -> bool:
    if plus or digits.startswith("00"):
        candidates = [("+" + (digits[2:] if not plus else digits), None)]
    else:
        candidates = []
        for region in regions:
            if region in _TRUNK_ZERO_REGIONS and not digits.startswith("0"):
                continue
            national = len(digits) == 10 and digits[0] in "23456789"
            if region == "US" and not (national or (len(digits) == 11 and digits[0] == "1")):
                continue
            candidates.append((digits, region))
    for number_text, region in candidates:
        try:
            number = phonenumbers.parse(number_text, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return True
        # Fictional and new ranges ("(555) 123-4567") are still someone's number to the caller.
        if len(digits) >= _POSSIBLE_PHONE_DIGITS and phonenumbers.is_possible_number(number):
            return True
    return False


def latest_birth_year() -> int:
    return date.today().year - _MIN_AGE_YEARS


def full_year(year: int, digits: int) -> int:
    if digits != 2:
        return year
    # "'85" is 1985, "'07" 2007: a two-digit year from the future is last century's.
    century = 2000 if 2000 + year <= date.today().year else 1900
    return century + year


def valid_date(year: int | None, month: int, day: int | None) -> bool:
    try:
        date(year or 2000, month, day or 1)
    except ValueError:
        return False
    return year is None or year in YEARS


@functools.lru_cache(maxsize=1024)
def digits_are_birth_date(digits: str) -> bool:
    """A date read as one run of digits ("twelve oh three nineteen eighty five"), after a mention of birth."""
    for layout in _DIGIT_DATE_LAYOUTS:
        if len(layout) != len(digits):
            continue
        parts = {part: int("".join(d for d, p in zip(digits, layout, strict=True) if p == part)) for part in "DMY"}
        year = full_year(parts["Y"], layout.count("Y"))
        if valid_date(year, parts["M"], parts["D"]) and year <= latest_birth_year():
            return True
    return False


def is_card_number(digits: str, trimmed: int) -> bool:
    """Whether `digits` are a card number; `trimmed`: how many pieces of the run around them were left out."""
    if len(digits) not in CARD_DIGITS or not luhn.is_valid(digits):
        return False
    # Within a longer run (a stray "oh" or "een" at an edge) only the common shapes: any stretch of a long run
    # passes Luhn one time in ten. The rest of such a run is masked as "[number]" all the same.
    common = (len(digits) == 16 and digits[0] in "23456") or (len(digits) == 15 and digits[:2] in ("34", "37"))
    return trimmed == 0 or common
