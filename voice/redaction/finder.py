"""Redaction of personal data in caller text, before anything is stored, logged, shown on the desk or whispered.

Finds payment card numbers (Luhn), IBANs (ISO 7064 check), Dutch BSNs (11-check), phone numbers, e-mail
addresses, dates of birth and postcodes in English and Dutch caller text and replaces each with a typed marker:
``redact("my card is 4111 1111 1111 1111", "en").text == "my card is [card number]"``.

The text comes from speech recognition, so numbers arrive as digits, as words or as both ("4111 1111 ...",
"four one one one", "forty one eleven", "oh six", "double five", "vier een een een", "tweeënveertig"), split by
spaces, dashes or fillers, without punctuation and in lower case. The text is read as tokens; number words and
digits become pieces of digits that keep their place in the original text; runs of pieces are checked with
python-stdnum (Luhn, IBAN, BSN, Dutch postcode) and phonenumbers; what is found is mapped back to the original
text. A span records kind, start and end, never the value.

Numbers and spelled letters are read by `voice.redaction.spoken_numbers`; the checks on what is read are in
`voice.redaction.checks`. This module finds the spans and renders the markers.

What is looked for, in this order (what one step finds, the next ones no longer see):

1. E-mail addresses, written ("j.smith@example.com") or spoken ("john dot smith at example dot com", "jan punt
   jansen apenstaartje ziggo punt nl"): an "at" word followed by a domain that ends in a known top-level domain.
2. IBANs: letters and digits, written or spelled ("n l nine one a b n a ..."), whose check digits and country
   format hold. Something written like an IBAN that fails the check is masked as "[number]".
3. Card numbers: a run of 13-19 digits that passes Luhn. Within a longer run (a stray "oh" or "een" at an edge),
   only 16 digits starting with 2-6 or 15 starting with 34 or 37.
4. Dates: a date is a date of birth when the caller mentions birth ("born", "date of birth", "geboren", ...) or
   when it is a full date at least 16 years ago and the caller does not say what else it was ("customer since",
   "contract", "order"). Other dates ("my order from the 3rd of may 2024") are kept, and their digits are not
   taken for anything else.
5. Postcodes: Dutch "1234 AB", written or spoken, unless the letters are a common word or unit written in lower
   case ("1500 en", "1000 mb"); UK postcodes as written ("SW1A 1AA"), or spelled out after "postcode"; after
   "postcode" or "zip", four digits (Dutch without letters) or a ZIP code.
6. BSNs (nine digits passing the 11-check), phone numbers and, after a mention of birth, dates read as digits.
   Phone numbers are those phonenumbers calls valid, or possible when ten digits or longer ("(555) 123-4567"),
   in the regions of the language: en: US, GB and NL (English-speaking callers of a Dutch service give Dutch
   numbers); nl: NL and BE. NL, GB and BE numbers must be said with their 0 or a country code, so that a BSN is
   not a phone number without its 0.
7. Whatever else is left of a run of seven or more digits is masked as "[number]": the checksums decide the kind,
   not whether to redact. A card number with one misheard digit fails Luhn but is still fifteen digits of the
   card, and "i called three times" has no such run. After words that announce a card, account or BSN the
   threshold is six digits; after "pin", "cvc" or "security code", three.

A number read over several turns ("four one one one" / "one one one one" / ...) is handled by
`voice.redaction.buffer.RedactionBuffer`, one per call, which builds on `ScannedText` and the searches here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from stdnum.nl import bsn
from stdnum.nl import postcode as nl_postcode

from voice.redaction.checks import (
    CARD_DIGITS,
    YEARS,
    could_start_iban,
    digits_are_birth_date,
    full_year,
    iban_layout,
    is_card_number,
    is_iban,
    is_phone,
    latest_birth_year,
    valid_date,
)
from voice.redaction.spoken_numbers import (
    EN_TENS,
    FILLERS,
    Piece,
    Token,
    digit_windows,
    nl_number,
    numbered,
    piece_runs,
    read_pieces,
    tokenize,
    word_set,
)

LANGUAGES = ("en", "nl")


class Kind(StrEnum):
    """What a redacted span held; the value is the marker's text."""

    CARD = "card number"
    IBAN = "IBAN"
    BSN = "BSN"
    PHONE = "phone number"
    EMAIL = "e-mail"
    DATE_OF_BIRTH = "date of birth"
    POSTCODE = "postcode"
    NUMBER = "number"
    """A long or sensitive-looking number no check explained (a card number with a misheard digit, say)."""

    @property
    def marker(self) -> str:
        """The text that replaces the span, such as "[card number]"."""
        return f"[{self.value}]"


# When spans overlap, the merged span keeps the most specific kind.
_PRIORITY = {kind: rank for rank, kind in enumerate(Kind)}


@dataclass(frozen=True, slots=True)
class RedactedSpan:
    """Where personal data was found, and what kind; never the value itself."""

    kind: Kind
    """What was there."""
    start: int
    """Offset of its first character in the original text."""
    end: int
    """Offset just past its last character in the original text."""


@dataclass(frozen=True, slots=True)
class Redaction:
    """A text with its personal data replaced by markers."""

    text: str
    """The redacted text: each span replaced by its kind's marker, such as "[IBAN]"."""
    spans: tuple[RedactedSpan, ...]
    """What was replaced, in order, as offsets into the original text."""


# --- Vocabulary --------------------------------------------------------------------------------------------------

_EN_ORDINALS = numbered(
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth fourteenth "
    "fifteenth sixteenth seventeenth eighteenth nineteenth",
    1,
) | {"twentieth": 20, "thirtieth": 30}
_ORDINAL_SUFFIXES = word_set("st nd rd th e de ste")
_MONTHS = (
    numbered("january february march april may june july august september october november december", 1)
    | numbered("januari februari maart april mei juni juli augustus september oktober november december", 1)
    | numbered("jan feb mar apr mei jun jul aug sep okt nov dec", 1)
    | {"mrt": 3, "sept": 9, "oct": 10}
)
_DAY_LEAD = word_set("the de den on op")
_DAY_OF = word_set("of van")

_EMAIL_AT = word_set("at @ apenstaartje apestaartje apenstaart")
_EMAIL_DOT = word_set("dot punt .")
_EMAIL_JOIN = word_set("underscore _ dash hyphen - streepje liggendstreepje")
_TLDS = word_set(
    "com net org nl be uk de eu io info biz fr co me nu edu gov us ca au ie es it ch at app dev online email tv frl "
    "amsterdam"
)
# Words that end an e-mail address's local part when read backwards from "at": "my e-mail is [john] at ...".
_EMAIL_STOP = (
    word_set(
        "is my mijn email e mail mailadres emailadres address adres it's its it was to naar me mij het de the send "
        "stuur on op under onder and en or of please graag you can reach dat that this dit via our your je uw jouw "
        "ons new nieuwe old oude at dot punt"
    )
    | FILLERS
)
# Dutch surnames start with these ("de vries", "van dijk"); in an e-mail address they belong to the name.
_NAME_PARTICLES = word_set("de van der den ter ten het la le du")
_EMAIL_SPLIT_WORDS = 2
_WRITTEN_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")

_BIRTH_WORDS = word_set("born birth birthday birthdate dob geboren geboortedatum geboortedag verjaardag")
# A full date long ago is a birth date unless the caller says what else it was: "a customer since 1 june 2008".
_NOT_BIRTH_WORDS = word_set(
    "since sinds contract order ordered bestelling besteld invoice bill factuur customer klant abonnement "
    "subscription installed geinstalleerd aangesloten connected moved verhuisd"
)
# Callers who speak of these are reading something that must not be kept, so shorter runs are masked.
READING_WORDS = word_set(
    "card creditcard debit amex visa mastercard maestro kaart kaartnummer creditcardnummer pasnummer bankpas iban "
    "account rekeningnummer bankrekening bankrekeningnummer bsn burgerservicenummer sofinummer sofi ssn social "
    "klantnummer passport paspoort paspoortnummer"
)
SECRET_WORDS = word_set(
    "cvc cvv cvc2 cvv2 pin pincode security verification verificatiecode beveiligingscode controlecode wachtwoord "
    "password"
)
_POSTCODE_WORDS = word_set("postcode postal zip zipcode postcodes")
# Two-letter words and units that follow a four-digit number in ordinary talk ("1000 mb", "1500 en"): not the
# letters of a Dutch postcode unless written in capitals.
_NOT_POSTCODE_LETTERS = word_set(
    "am pm mb gb kb tb ms km kg ok is in at on to or of an as by it me my no so up we be do go he if us en de op "
    "om te ik je ze al nu er na zo ja uw hz eu pc tv id oh"
)
_UK_POSTCODE = re.compile(
    r"(?<![A-Za-z0-9])[A-PR-UWYZ][A-HK-Y]?[0-9][A-HJKPSTUW0-9]? ?[0-9][ABD-HJLNP-UW-Z]{2}(?![A-Za-z0-9])",
    re.IGNORECASE,
)
_UK_POSTCODE_COMPACT = re.compile(r"[A-PR-UWYZ][A-HK-Y]?[0-9][A-HJKPSTUW0-9]?[0-9][ABD-HJLNP-UW-Z]{2}")
_UK_POSTCODE_CHARS = 7
# Country code, check digits, a group that may be all letters (a bank code: "RABO"), then groups that hold a digit:
# a word after the number ("... 6737 op de factuur") is no group of it.
_IBAN_SHAPE = re.compile(
    r"(?<![A-Za-z0-9])[A-Za-z]{2}[0-9]{2} ?[A-Za-z0-9]{4}(?: ?(?=[A-Za-z0-9]{0,3}[0-9])[A-Za-z0-9]{4}){1,6}"
    r"(?: ?(?=[A-Za-z0-9]{0,2}[0-9])[A-Za-z0-9]{1,3})?(?![A-Za-z0-9])"
)
_IBAN_SHAPE_DIGITS = 10
_NUMERIC_DATE = re.compile(r"(?<![\d.,/-])(\d{1,2})([./-])(\d{1,2})\2(\d{4}|\d{2})(?![\d]|[./-]\d)")
_ISO_DATE = re.compile(r"(?<![\d.,/-])(\d{4})-(\d{1,2})-(\d{1,2})(?![\d]|-\d)")

PHONE_REGIONS = {"en": ("US", "GB", "NL"), "nl": ("NL", "BE")}
MIN_PHONE_DIGITS, MAX_PHONE_DIGITS = 7, 15
BSN_DIGITS = 9
_BIRTH_DATE_DIGITS = 6
_MAX_IBAN_CHARS = 34
# Runs of at least this many digits are masked even when no check explains them; fewer after words that announce
# a card, account or BSN, fewer still after "pin" or "security code".
GENERIC_DIGITS = 7
_READING_DIGITS = 6
_SECRET_DIGITS = 3
# Pieces a BSN or phone number may leave out of its run ("oh 06 ...").
_MAX_TRIMMED = 2
# Number words that are also an article or a sound: left alone when they are all that is left beside a found
# number ("ik heb een [phone number]").
_ARTICLE_DIGITS = word_set("een one oh o")
_NL_POSTCODE_DIGITS = 4
_ZIP_DIGITS = (5, 9)
_MAX_DAY = 31

# --- One text being scanned ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class ScannedText:
    """One text being redacted: its tokens, pieces, what the caller spoke of, and the spans found so far."""

    text: str
    language: str
    tokens: list[Token]
    pieces: list[Piece]
    joined: list[bool]
    words: frozenset[str]
    birth_context: bool
    spans: list[RedactedSpan] = field(default_factory=list)
    used: set[int] = field(default_factory=set)
    """Pieces already explained (found, or part of a date that is kept)."""
    piece_at: dict[int, int] = field(default_factory=dict)
    """Token index -> index of the piece that starts there."""
    birth_found: bool = False
    carried_birth: bool = False
    """The previous turn spoke of birth ("my date of birth is"): a date or year at the start is a birth date."""
    number_runs: list[list[int]] = field(default_factory=list)
    """Runs of digit pieces as they were before cards, dates and the rest were looked for."""

    @classmethod
    def read(cls, text: str, language: str, birth_context: bool) -> ScannedText:
        tokens = tokenize(text)
        pieces, joined = read_pieces(tokens, language)
        words = frozenset(token.norm for token in tokens)
        turn = cls(text, language, tokens, pieces, joined, words, birth_context or bool(words & _BIRTH_WORDS))
        turn.carried_birth = birth_context
        turn.piece_at = {piece.first_token: k for k, piece in enumerate(pieces)}
        return turn

    def found(self, kind: Kind, start: int, end: int, *, keep: bool = False) -> None:
        """Record a span (`keep`: only mark its pieces as explained) and take its pieces out of later searches."""
        if not keep:
            self.spans.append(RedactedSpan(kind, start, end))
        self.used.update(k for k, piece in enumerate(self.pieces) if piece.start < end and piece.end > start)

    def found_pieces(self, kind: Kind, first: int, last: int) -> None:
        self.found(kind, self.pieces[first].lead_start, self.pieces[last].end)

    def says(self, words: frozenset[str]) -> bool:
        return bool(self.words & words)

    def kept(self, k: int) -> bool:
        """Whether piece `k` was explained and left as it is (part of a date that is not a birth date)."""
        piece = self.pieces[k]
        return k in self.used and not any(s.start < piece.end and s.end > piece.start for s in self.spans)

    # E-mail ----------------------------------------------------------------------------------------------------

    def find_emails(self) -> None:
        for match in _WRITTEN_EMAIL.finditer(self.text):
            self.found(Kind.EMAIL, match.start(), match.end())
        tokens = self.tokens
        for at, token in enumerate(tokens):
            if token.norm not in _EMAIL_AT or at == 0:
                continue
            end = self._email_domain_end(at + 1)
            start = self._email_local_start(at - 1)
            if end is not None and start is not None:
                self.found(Kind.EMAIL, tokens[start].start, tokens[end].end)

    def _is_label(self, index: int) -> bool:
        token = self.tokens[index]
        return (token.is_word or token.is_digits) and token.norm not in _EMAIL_DOT | _EMAIL_AT | _EMAIL_JOIN

    def _email_domain_end(self, i: int) -> int | None:
        tokens, labels = self.tokens, []
        while i < len(tokens) and self._is_label(i):
            # A label may be several tokens joined by hyphens ("my-shop") or split by the recogniser ("kpn mail").
            first = i
            while i + 2 < len(tokens) and tokens[i + 1].norm in _EMAIL_JOIN and self._is_label(i + 2):
                i += 2
            if i == first and i + 2 < len(tokens) and self._is_label(i + 1) and tokens[i + 2].norm in _EMAIL_DOT:
                i += 1
            labels.append((first, i))
            if i + 2 < len(tokens) and tokens[i + 1].norm in _EMAIL_DOT and self._is_label(i + 2):
                i += 2
                continue
            break
        for first, last in reversed(labels[1:]):
            if first == last and tokens[last].norm in _TLDS:
                return last
        return None

    def _email_local_start(self, i: int) -> int | None:
        tokens = self.tokens
        if i < 0 or not self._is_label(i) or tokens[i].norm in _EMAIL_STOP:
            return None
        start, unjoined = i, 0
        while True:
            if start >= 2 and tokens[start - 1].norm in _EMAIL_DOT | _EMAIL_JOIN and self._is_label(start - 2):
                start -= 2
                continue
            # "john smith at ...", "p punt de vries at ...": the recogniser may split a name it does not know.
            if start >= 1 and self._is_label(start - 1) and unjoined < _EMAIL_SPLIT_WORDS:
                previous = tokens[start - 1].norm
                if previous not in _EMAIL_STOP or (previous in _NAME_PARTICLES and unjoined == 0):
                    unjoined += 1
                    start -= 1
                    continue
            return start

    # IBAN and cards --------------------------------------------------------------------------------------------

    def find_ibans(self) -> None:
        for first, last in iban_matches(self.pieces, piece_runs(self.pieces, self.joined, self.used, numeric=False)):
            self.found_pieces(Kind.IBAN, first, last)
        # Written like an IBAN but failing its check (a typing or hearing slip): still someone's account.
        for match in _IBAN_SHAPE.finditer(self.text):
            enough_digits = sum(c.isdigit() for c in match[0]) >= _IBAN_SHAPE_DIGITS
            if enough_digits and not any(s.start < match.end() and s.end > match.start() for s in self.spans):
                self.found(Kind.NUMBER, match.start(), match.end())

    def find_cards(self) -> None:
        self.number_runs = piece_runs(self.pieces, self.joined, self.used, numeric=True)
        for first, last, kind in pick(self.pieces, self.number_runs, card_kind):
            self.found_pieces(kind, first, last)

    # Dates -----------------------------------------------------------------------------------------------------

    def find_dates(self) -> None:
        latest = latest_birth_year()
        for match in _NUMERIC_DATE.finditer(self.text):
            first, second, year = int(match[1]), int(match[3]), full_year(int(match[4]), len(match[4]))
            if len(match[4]) == 2 and not self.birth_context:
                continue  # "3/4/25" may be a date, a score or a fraction; only after "born" is it a birth date
            if valid_date(year, second, first) or valid_date(year, first, second):  # day first, or month first
                self._date(match.start(), match.end(), year=year, latest=latest)
        for match in _ISO_DATE.finditer(self.text):
            year = int(match[1])
            if valid_date(year, int(match[2]), int(match[3])):
                self._date(match.start(), match.end(), year=year, latest=latest)
        i = 0
        while i < len(self.tokens):
            i = self._date_at(i, latest)
        if self.birth_context:
            self._birth_years(latest)

    def _date(self, start: int, end: int, *, year: int | None, latest: int) -> None:
        """A date found, with its year if it is a full date: a date of birth after a mention of birth or when long
        ago, otherwise kept as it is."""
        long_ago = year is not None and year <= latest and not self.says(_NOT_BIRTH_WORDS)
        birth = self.birth_context or long_ago
        self.birth_found = self.birth_found or birth
        self.found(Kind.DATE_OF_BIRTH, start, end, keep=not birth)

    def _date_at(self, i: int, latest: int) -> int:
        """Read a date starting at token `i`, if there is one; returns the index of the token after it."""
        tokens = self.tokens
        first = i + 1 if tokens[i].norm in _DAY_LEAD else i
        day = self._day_at(first)
        month = None
        if day is not None:  # "the 3rd of may 1985", "twaalf maart negentien vijfentachtig"
            k = day[1] + 1 if day[1] < len(tokens) and tokens[day[1]].norm in _DAY_OF else day[1]
            month = self._month_at(k)
            if month is not None:
                year = self._year_at(month[1], two_digits=self.birth_context)
                end = year[1] if year else month[1]
                self._date(tokens[first].start, tokens[end - 1].end, year=year[0] if year else None, latest=latest)
                return end
        first = i
        month = self._month_at(first)
        if month is None:
            return i + 1
        # "march the 12th, 1985", "may 1985"
        k = month[1] + 1 if month[1] < len(tokens) and tokens[month[1]].norm in _DAY_LEAD else month[1]
        day = self._day_at(k)
        year = self._year_at(day[1] if day else month[1], two_digits=day is not None and self.birth_context)
        if year is not None:
            end = year[1]
        elif day is not None:
            end = day[1]
        else:
            return i + 1
        full_year = year[0] if year is not None and day is not None else None
        self._date(tokens[first].start, tokens[end - 1].end, year=full_year, latest=latest)
        return end

    def _skip_comma(self, i: int) -> int:
        return i + 1 if i < len(self.tokens) and self.tokens[i].norm in {",", "."} else i

    def _day_at(self, i: int) -> tuple[int, int] | None:
        tokens = self.tokens
        if i >= len(tokens):
            return None
        token = tokens[i]
        if token.is_digits and len(token.text) <= 2:
            k = i + 1
            if k < len(tokens) and tokens[k].norm in _ORDINAL_SUFFIXES and tokens[k].start == token.end:
                k += 1
            return (int(token.text), k) if 1 <= int(token.text) <= _MAX_DAY else None
        ordinal = self._ordinal(i)
        if ordinal is not None:
            return ordinal
        k = self.piece_at.get(i)
        if k is not None and self.pieces[k].spoken and 1 <= self.pieces[k].value <= _MAX_DAY:
            return self.pieces[k].value, self.pieces[k].last_token + 1
        return None

    def _ordinal(self, i: int) -> tuple[int, int] | None:
        norm = self.tokens[i].norm
        if self.language == "en":
            if norm in _EN_ORDINALS:
                return _EN_ORDINALS[norm], i + 1
            j = i + 2 if i + 1 < len(self.tokens) and self.tokens[i + 1].norm == "-" else i + 1
            if norm in {"twenty", "thirty"} and j < len(self.tokens):
                unit = _EN_ORDINALS.get(self.tokens[j].norm, 0)
                if 0 < unit < 10 and EN_TENS[norm] + unit <= _MAX_DAY:
                    return EN_TENS[norm] + unit, j + 1
            return None
        special = {"eerste": 1, "derde": 3}
        if norm in special:
            return special[norm], i + 1
        for suffix in ("ste", "de"):
            if norm.endswith(suffix):
                number = nl_number(norm.removesuffix(suffix))
                if number is not None and 1 <= number.value <= _MAX_DAY:
                    return number.value, i + 1
        return None

    def _month_at(self, i: int) -> tuple[int, int] | None:
        if i >= len(self.tokens) or self.tokens[i].norm not in _MONTHS:
            return None
        return _MONTHS[self.tokens[i].norm], self._skip_comma(i + 1)

    def _year_at(self, i: int, *, two_digits: bool) -> tuple[int, int] | None:
        tokens = self.tokens
        i = self._skip_comma(i)
        apostrophe = i + 1 < len(tokens) and tokens[i].norm == "'"
        if apostrophe and tokens[i + 1].is_digits and len(tokens[i + 1].text) == 2:  # "'85"
            return full_year(int(tokens[i + 1].text), 2), i + 2
        k = self.piece_at.get(i)
        if k is None:
            return None
        piece = self.pieces[k]
        if len(piece.digits) == 4 and int(piece.digits) in YEARS:
            return int(piece.digits), piece.last_token + 1
        if len(piece.digits) == 2:
            following = self.pieces[k + 1] if k + 1 < len(self.pieces) and self.joined[k] else None
            if following is not None and len(following.digits) == 2 and int(piece.digits + following.digits) in YEARS:
                return int(piece.digits + following.digits), following.last_token + 1  # "nineteen eighty five"
            if two_digits:
                return full_year(int(piece.digits), 2), piece.last_token + 1
        return None

    def _birth_years(self, latest: int) -> None:
        # "born in 1985", "geboren in negentienvijfentachtig": a year alone, shortly after the mention of birth.
        starts = [i for i, token in enumerate(self.tokens) if token.norm in _BIRTH_WORDS]
        for i in [-1, *starts] if self.carried_birth else starts:
            for j in range(i + 1, min(i + 5, len(self.tokens))):
                k = self.piece_at.get(j)
                if k is not None and (k in self.used or (k > 0 and self.joined[k - 1] and self.pieces[k - 1].digits)):
                    continue
                year = self._year_at(j, two_digits=False)
                after = self.piece_at.get(year[1]) if year is not None else None
                if after is not None and self.pieces[after].digits and self.joined[after - 1]:
                    continue  # the end of a date read as digits ("twelve oh three nineteen eighty five"): find_numbers
                if year is not None and year[0] <= latest:
                    self.found(Kind.DATE_OF_BIRTH, self.tokens[j].start, self.tokens[year[1] - 1].end)
                    self.birth_found = True
                    break

    # Postcodes -------------------------------------------------------------------------------------------------

    def find_postcodes(self) -> None:
        said_postcode = self.says(_POSTCODE_WORDS) or "post code" in " ".join(t.norm for t in self.tokens)
        for match in _UK_POSTCODE.finditer(self.text):
            # Lower-case speech-recognition text has many short words: without "postcode" only the usual form.
            if said_postcode or match[0].isupper() or " " in match[0]:
                self.found(Kind.POSTCODE, match.start(), match.end())
        pieces = self.pieces
        for run in piece_runs(pieces, self.joined, self.used, numeric=True):
            digits, first = "", len(run)
            while first > 0 and len(digits) < _NL_POSTCODE_DIGITS:
                first -= 1
                digits = pieces[run[first]].digits + digits
            after = run[-1] + 1
            letters = self._postcode_letters(after)
            # A house number may come first ("12 1234 ab"); the end of a phone number or longer is not a postcode.
            short_run = sum(len(pieces[k].digits) for k in run) < MIN_PHONE_DIGITS
            if (
                len(digits) == _NL_POSTCODE_DIGITS
                and short_run
                and letters
                and nl_postcode.is_valid(digits + letters[0])
            ):
                self.found(Kind.POSTCODE, pieces[run[first]].start, pieces[letters[1]].end)
                continue
            # After "postcode" or "zip": the digits of a Dutch postcode without its letters, or a ZIP code.
            dutch_digits = len(digits) == _NL_POSTCODE_DIGITS and first == 0 and digits[0] != "0"
            zip_code = len("".join(pieces[k].digits for k in run)) in _ZIP_DIGITS
            if said_postcode and (dutch_digits or zip_code):
                self.found_pieces(Kind.POSTCODE, run[0], run[-1])
        if said_postcode:
            for first, last in _alnum_matches(
                pieces,
                piece_runs(pieces, self.joined, self.used, numeric=False),
                _UK_POSTCODE_COMPACT.fullmatch,
                _UK_POSTCODE_CHARS,
            ):
                self.found_pieces(Kind.POSTCODE, first, last)

    def _postcode_letters(self, k: int) -> tuple[str, int] | None:
        """The two letters of a Dutch postcode in pieces from `k`: "AB", "ab" or "a b"; (letters, last piece)."""
        pieces = self.pieces
        if k >= len(pieces) or k in self.used or not self.joined[k - 1] or pieces[k].digits:
            return None
        two = [reading for reading in pieces[k].letters if len(reading) == 2]
        if two:
            token = self.tokens[pieces[k].first_token]
            # "postcode 1234 en huisnummer 5": a common word stays a word even after "postcode".
            if token.text.isupper() or two[0].lower() not in _NOT_POSTCODE_LETTERS:
                return two[0], k
            return None
        if k + 1 < len(pieces) and self.joined[k] and not pieces[k + 1].digits:
            first = [r for r in pieces[k].letters if len(r) == 1]
            second = [r for r in pieces[k + 1].letters if len(r) == 1]
            if first and second:
                return first[0] + second[0], k + 1
        return None

    # Remaining numbers -----------------------------------------------------------------------------------------

    def find_numbers(self) -> None:
        regions = PHONE_REGIONS[self.language]
        birth = self.birth_context

        def kind_of(digits: str, first: Piece, trimmed: int) -> Kind | None:
            # A stray word at an edge may be left out ("oh 06 ..."), not more: any nine digits of a long run pass the
            # 11-check one time in eleven, and many ten-digit stretches make a possible phone number.
            if trimmed > _MAX_TRIMMED:
                return None
            if len(digits) == BSN_DIGITS and bsn.is_valid(digits):
                return Kind.BSN
            if birth and digits_are_birth_date(digits):
                return Kind.DATE_OF_BIRTH
            if MIN_PHONE_DIGITS <= len(digits) <= MAX_PHONE_DIGITS and is_phone(digits, first.plus, regions):
                return Kind.PHONE
            return None

        pieces = self.pieces
        for run in piece_runs(pieces, self.joined, self.used, numeric=True):
            for first, last, kind in pick(pieces, [run], kind_of, _BIRTH_DATE_DIGITS, MAX_PHONE_DIGITS):
                self.found_pieces(kind, first, last)
                self.birth_found = self.birth_found or kind is Kind.DATE_OF_BIRTH
        # What is left of long runs (so that no part of a card number with a misheard digit shows), and of shorter
        # ones when the caller speaks of a card, account or code.
        threshold = GENERIC_DIGITS
        if self.says(READING_WORDS):
            threshold = _READING_DIGITS
        if self.says(SECRET_WORDS):
            threshold = _SECRET_DIGITS
        for run in self.number_runs:
            if sum(len(pieces[k].digits) for k in run) < threshold:
                continue
            for part in piece_runs(pieces, self.joined, self.used, numeric=True):
                lone_word = len(part) == 1 and self.tokens[pieces[part[0]].first_token].norm in _ARTICLE_DIGITS
                if part[0] in run and not (lone_word and len(run) > 1):
                    self.found_pieces(Kind.NUMBER, part[0], part[-1])

    def redact(self) -> list[RedactedSpan]:
        self.find_emails()
        self.find_ibans()
        self.find_cards()
        self.find_dates()
        self.find_postcodes()
        self.find_numbers()
        return self.spans


def card_kind(digits: str, first: Piece, trimmed: int) -> Kind | None:
    return Kind.CARD if is_card_number(digits, trimmed) else None


def pick(
    pieces: Sequence[Piece],
    runs: Sequence[Sequence[int]],
    kind_of: Callable[[str, Piece, int], Kind | None],
    min_digits: int = CARD_DIGITS.start,
    max_digits: int = CARD_DIGITS.stop - 1,
    accept: Callable[[int, int], bool] | None = None,
) -> list[tuple[int, int, Kind]]:
    """Non-overlapping (first piece, last piece, kind) in `runs`, best first: a whole run before a part of one
    (words such as "oh" or "een" at the edges may not belong), then the usual card lengths, longer, earlier."""
    found: list[tuple[int, int, Kind]] = []
    queue = [list(run) for run in runs]
    while queue:
        run = queue.pop()
        best: tuple[tuple[bool, bool, int, int, int], int, int, Kind] | None = None
        for i, j, digits in digit_windows(pieces, run, range(min_digits, max_digits + 1)):
            if accept is not None and not accept(run[i], run[j - 1]):
                continue
            kind = kind_of(digits, pieces[run[i]], i + len(run) - j)
            if kind is None:
                continue
            key = (i == 0 and j == len(run), len(digits) in (15, 16), len(digits), -_PRIORITY[kind], -i)
            if best is None or key > best[0]:
                best = (key, i, j, kind)
        if best is not None:
            _, i, j, kind = best
            found.append((run[i], run[j - 1], kind))
            queue.extend(part for part in (run[:i], run[j:]) if part)
    return found


def _alnum_matches(
    pieces: Sequence[Piece],
    runs: Sequence[Sequence[int]],
    accept: Callable[[str], object],
    max_chars: int,
    may_grow: Callable[[str], bool] | None = None,
    allowed: Callable[[int, int], bool] | None = None,
) -> list[tuple[int, int]]:
    """Non-overlapping (first, last) pieces whose letters and digits, read together, `accept` takes; longest first
    from each start. Pieces may read several ways ("oh": 0 or O), so every reading is tried, as long as `may_grow`
    says the text read so far may still become something `accept` takes."""
    found: list[tuple[int, int]] = []
    for run in runs:
        position = 0
        while position < len(run):
            best: int | None = None
            stack = [(position, "")]
            while stack:
                p, text = stack.pop()
                if p == len(run):
                    continue
                for reading in pieces[run[p]].readings:
                    candidate = text + reading
                    if len(candidate) > max_chars or (may_grow is not None and not may_grow(candidate)):
                        continue
                    longer = best is None or p > best
                    if longer and accept(candidate) and (allowed is None or allowed(run[position], run[p])):
                        best = p
                    stack.append((p + 1, candidate))
            if best is None:
                position += 1
                continue
            found.append((run[position], run[best]))
            position = best + 1
    return found


def iban_matches(
    pieces: Sequence[Piece], runs: Sequence[Sequence[int]], allowed: Callable[[int, int], bool] | None = None
) -> list[tuple[int, int]]:
    def accept(candidate: str) -> bool:
        return len(candidate) == len(iban_layout(candidate[:2])) and is_iban(candidate)

    return _alnum_matches(pieces, runs, accept, _MAX_IBAN_CHARS, could_start_iban, allowed)


def render(text: str, spans: Sequence[RedactedSpan]) -> Redaction:
    merged: list[RedactedSpan] = []
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        if merged and span.start < merged[-1].end:
            previous = merged[-1]
            kind = min(previous.kind, span.kind, key=_PRIORITY.__getitem__)
            merged[-1] = RedactedSpan(kind, previous.start, max(previous.end, span.end))
        else:
            merged.append(span)
    parts, position = [], 0
    for span in merged:
        parts += [text[position : span.start], span.kind.marker]
        position = span.end
    parts.append(text[position:])
    return Redaction("".join(parts), tuple(merged))


def check_language(language: str) -> None:
    if language not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}, expected one of {', '.join(LANGUAGES)}")


def redact(text: str, language: str) -> Redaction:
    """Replace the personal data in one caller text with typed markers.

    Args:
        text: caller text as typed or as transcribed.
        language: "en" or "nl": the number words, letter names and phone regions to expect.

    Returns:
        The redacted text and what was replaced: ``redact("call me on oh six one two three four five six seven
        eight", "en").text == "call me on [phone number]"``, with one span of kind `Kind.PHONE` from 11 to 57.

    Raises:
        ValueError: `language` is not one of `LANGUAGES`.
    """
    check_language(language)
    return render(text, ScannedText.read(text, language, birth_context=False).redact())
