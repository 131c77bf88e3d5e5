"""Redaction over the turns of one call, for numbers read in pieces: "four one one one" / "one one one one" / ...

`RedactionBuffer` redacts each turn with `voice.redaction.finder` and, in addition, remembers the digits and letters at
the end of a turn that may be the start of a number, searches them together with the start of the next turn, and
revises the earlier turns when the parts complete a card number, IBAN, BSN or phone number.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from stdnum.nl import bsn

from voice.redaction.checks import YEARS, bank_code_letters, could_start_iban, is_phone
from voice.redaction.finder import (
    BSN_DIGITS,
    MAX_PHONE_DIGITS,
    MIN_PHONE_DIGITS,
    PHONE_REGIONS,
    READING_WORDS,
    SECRET_WORDS,
    Kind,
    RedactedSpan,
    Redaction,
    ScannedText,
    card_kind,
    check_language,
    iban_matches,
    pick,
    render,
)
from voice.redaction.spoken_numbers import FILLERS, SEPARATORS, Piece, is_separator, piece_runs, word_set


@dataclass(frozen=True, slots=True)
class TurnRedaction:
    """One caller turn redacted by a `RedactionBuffer`, with any earlier turns it changed."""

    index: int
    """Number of the turn among those given to the buffer, from 0."""
    redaction: Redaction
    """This turn, redacted."""
    revised: tuple[tuple[int, Redaction], ...] = ()
    """(index, redaction) of earlier turns whose redaction this turn refined: a card number completed here gives
    its earlier pieces, masked so far as "[number]", their proper kind."""


# A reading continues into the next turn when that turn starts with digits within this many words; this many
# pieces before the digits are kept too, for an IBAN's letters.
_LEAD_WORDS = 6
_CONTEXT_PIECES = 8
_PENDING_PIECES = 48
_MIN_READING_DIGITS = 4
# Country code and check digits: the shortest start of an IBAN that a turn may end in.
_IBAN_START_CHARS = 4
# A number that follows these is being read even when short: "my number is oh six" / "one two three four" / ...
# Only from three digits, or from a 0 or "+" as phone numbers start: "we live at number 12" is a house.
_NUMBER_WORDS = word_set("number nummer telefoonnummer phone mobile mobiel mobielnummer")
_MIN_NUMBER_DIGITS = 3
_IBAN_WORDS = word_set("iban rekeningnummer bankrekeningnummer")
_TRAILING_OK = word_set("and so en dan ok okay that's thats is it") | FILLERS

_SpansTurns = Callable[[Sequence[Piece]], bool]


@dataclass(slots=True)
class _Said:
    """A turn the buffer still remembers: its text and spans, which a later turn may refine."""

    text: str
    spans: list[RedactedSpan]


class RedactionBuffer:
    """Redaction for one call, for numbers read in pieces over several turns.

    Callers pause while reading a card number, and the recogniser ends the turn: "four one one one" / "one one one
    one" / ... No single turn holds the whole number, so each turn is redacted on its own and, in addition:

    - a turn that ends in what looks like the start of a number being read has it masked as "[number]" at once:
      digits in groups ("4111 1111", "four one one one") or a turn of nothing else; any digits after words such
      as "card", "iban", "bsn", "account" or "pin"; after "number" or "phone", three digits or more, or digits
      that start with 0 or "+"; the start of an IBAN (country code and check digits) as a turn of its own, after
      "iban", or with its bank code ("NL95 SNSB", "g b one five m i d l"). A year ("since 2024"), a lone number
      after other words ("a fritzbox 7590", "the meter reading is 04567") or a house number ("12a") does not count;
    - the digits at the end of any turn are remembered, and searched together with the digits at the start of the
      next turn (within its first six words); while a number is being read, those next digits are masked as
      "[number]" too, and so are the letters of an IBAN's bank code said in a turn of their own ("B U N Q");
    - when such a search completes a number, the parts in earlier turns get their proper kind (and are masked,
      if they were not), and those turns' new redactions are returned in `TurnRedaction.revised`. A card number or
      IBAN may complete any remembered digits; a BSN or phone number, whose checks are weaker, only a reading;
    - a turn that speaks of birth without giving the date ("my date of birth is") makes a date or year at the start
      of the next turn a date of birth.

    So every part of a number read in pieces is masked when its turn is first redacted, and a revision only
    renames the marker, except for a first part that does not look like the start of a reading ("it starts with
    four one", "ok 4111"): those digits show until the number is complete, as "i called three times" does. The
    first digits of a card number identify its issuer, not its holder; PCI DSS allows showing the first six. The
    other way round, digits at the start of the turn right after a reading are masked even when the caller has
    moved on ("two phones please").

    Usage::

        buffer = RedactionBuffer("en")
        for transcript in turns:
            result = buffer.redact_turn(transcript.text)
            store(result.index, result.redaction.text)
            for index, redaction in result.revised:
                store(index, redaction.text)
    """

    def __init__(self, language: str, *, remember_turns: int = 6) -> None:
        """Start a call.

        Args:
            language: "en" or "nl".
            remember_turns: how many recent turns a number may be spread over.

        Raises:
            ValueError: `language` is not one of `voice.redaction.finder.LANGUAGES`.
        """
        check_language(language)
        self.language = language
        self._remember = remember_turns
        self._said: dict[int, _Said] = {}
        self._pending: list[Piece] = []
        self._reading = False
        """Whether the pending pieces are a number being read (masked), or only digits a turn ended in."""
        self._birth_context = False
        self._index = 0

    def reset(self) -> None:
        """Forget the turns so far, as at the start of a new call."""
        self._said.clear()
        self._pending = []
        self._reading = False
        self._birth_context = False
        self._index = 0

    def redact_turn(self, text: str) -> TurnRedaction:
        """Redact the caller's next turn.

        Args:
            text: the turn as transcribed.

        Returns:
            This turn's redaction, and new redactions of earlier turns that this turn refined.
        """
        index = self._index
        self._index += 1
        turn = ScannedText.read(text, self.language, self._birth_context)
        turn.redact()
        for piece in turn.pieces:
            piece.turn = index
        self._said[index] = _Said(text, turn.spans)
        self._said.pop(index - self._remember, None)

        revised: set[int] = set()
        lead = _lead(turn) if self._pending else None
        if lead is not None:
            context, onward, lead_digits = lead
            if self._reading:
                turn.spans.append(_number_span(turn, lead_digits))
            revised = self._complete(index, _pieces(turn, context), _pieces(turn, onward))
        self._remember_tail(turn, lead)
        self._pending = [piece for piece in self._pending if piece.turn in self._said][-_PENDING_PIECES:]
        self._birth_context = turn.birth_context and not turn.birth_found
        redactions = {i: render(self._said[i].text, self._said[i].spans) for i in revised if i in self._said}
        return TurnRedaction(index, render(text, turn.spans), tuple(sorted(redactions.items())))

    def _remember_tail(self, turn: ScannedText, lead: tuple[list[int], list[int], list[int]] | None) -> None:
        """Keep what the turn ends in for the next turn, masking it now when it looks like a reading."""
        if lead is None and self._reading and all(t.norm in _TRAILING_OK | SEPARATORS for t in turn.tokens):
            return  # "ok", "uh": the reading goes on
        tail = _tail(turn)
        if tail is None:
            self._pending, self._reading = [], False
            return
        part, digits = tail
        continues = lead is not None and part[0] <= (lead[0] + lead[1])[-1]
        before = self._pending if continues else []
        pieces = before + _pieces(turn, part)
        iban_start = self._iban_start(turn, pieces, len(before))
        if not continues and self._reading and _starts_turn(turn, part[0]):
            # A turn of letters only may go on with an IBAN's start: "N L achtenveertig" / "B U N Q".
            spelled = self._iban_start(turn, self._pending + pieces, len(self._pending))
            if spelled is not None and spelled < len(self._pending):
                continues, before, iban_start = True, self._pending, spelled
                pieces = before + pieces
        reading = _reading(turn, digits) or iban_start is not None
        if iban_start is not None:
            first = max(iban_start - len(before), 0)
            turn.spans.append(RedactedSpan(Kind.NUMBER, pieces[len(before) + first].lead_start, pieces[-1].end))
        elif digits and reading and not (continues and self._reading):
            turn.spans.append(_number_span(turn, digits))
        if continues:
            self._pending, self._reading = pieces, self._reading or reading
        elif digits or reading:
            self._pending, self._reading = pieces, reading
        else:
            self._pending, self._reading = [], False

    def _iban_start(self, turn: ScannedText, pieces: Sequence[Piece], own: int) -> int | None:
        """Where in `pieces` (this turn's from `own` on) an IBAN starts that runs to their end and says enough to be
        masked now: it continues one from an earlier turn ("B U N Q"), or has its bank code ("NL95 SNSB"), or
        "iban" is said, or it is a turn of its own ("N L achtenveertig")."""
        for start in range(len(pieces)):
            readings = _iban_readings(pieces[start:])
            if readings is None or not self._spelled_country(pieces[start:], readings):
                continue
            text = "".join(readings)
            bank = bank_code_letters(text[:2])
            first = next((k for k, piece in enumerate(turn.pieces) if piece is pieces[start]), None)
            if (
                start < own
                or (bank and len(text) >= _IBAN_START_CHARS + bank)
                or turn.says(_IBAN_WORDS)
                or (first is not None and _starts_turn(turn, first))
            ):
                return start
        return None

    def _spelled_country(self, pieces: Sequence[Piece], readings: Sequence[str]) -> bool:
        """Whether an IBAN's country code was spelled ("n l", "en el") or written in capitals ("NL"), rather than
        being a word ("is 12", "be 71")."""
        if len(readings[0]) == 1:
            return len(readings[1]) == 1
        piece = pieces[0]
        return self._said[piece.turn].text[piece.start : piece.end].isupper()

    def _complete(self, index: int, context: list[Piece], onward: list[Piece]) -> set[int]:
        """Search the remembered pieces and this turn's together; add what spans turns. Returns the turns changed.

        `context` are the pieces before this turn's first digits: an IBAN's letters ("a b n a 0417"), or words
        that read as letters ("then 5555 4444"), which must not come between the digits of a card number.
        """

        def spans_turns(pieces: Sequence[Piece]) -> bool:
            turns = {piece.turn for piece in pieces}
            return index in turns and len(turns) > 1

        found = _ibans(self._pending + context + onward, spans_turns) or _ibans(self._pending + onward, spans_turns)
        regions = PHONE_REGIONS[self.language] if self._reading else None
        found += _numbers(self._pending + onward, {id(p) for ps, _ in found for p in ps}, spans_turns, regions)
        changed: set[int] = set()
        for pieces, kind in found:
            by_turn: dict[int, list[Piece]] = {}
            for piece in pieces:
                by_turn.setdefault(piece.turn, []).append(piece)
            for turn_index, turn_pieces in by_turn.items():
                said = self._said.get(turn_index)
                if said is None:
                    continue
                said.spans.append(RedactedSpan(kind, turn_pieces[0].lead_start, turn_pieces[-1].end))
                if turn_index != index:
                    changed.add(turn_index)
        return changed


def _ibans(pieces: list[Piece], spans_turns: _SpansTurns) -> list[tuple[list[Piece], Kind]]:
    whole = [list(range(len(pieces)))]
    matches = iban_matches(pieces, whole, lambda a, b: spans_turns(pieces[a : b + 1]))
    return [(pieces[a : b + 1], Kind.IBAN) for a, b in matches]


def _numbers(
    pieces: list[Piece], taken: set[int], spans_turns: _SpansTurns, regions: tuple[str, ...] | None
) -> list[tuple[list[Piece], Kind]]:
    """Card numbers across turns in `pieces` (but those `taken`), and BSNs and phone numbers when `regions`."""
    joined = [True] * (len(pieces) - 1)
    used = {k for k, piece in enumerate(pieces) if id(piece) in taken}
    runs = piece_runs(pieces, joined, used, numeric=True)
    cards = pick(pieces, runs, card_kind, accept=lambda a, b: spans_turns(pieces[a : b + 1]))
    found = [(pieces[a : b + 1], kind) for a, b, kind in cards]
    if regions is None:
        return found
    used |= {k for a, b, _ in cards for k in range(a, b + 1)}
    # A BSN or phone number only as the whole of what was read: any nine digits of a longer number read in pieces
    # pass the 11-check one time in eleven.
    for run in piece_runs(pieces, joined, used, numeric=True):
        part = [pieces[k] for k in run]
        digits = "".join(piece.digits for piece in part)
        if not spans_turns(part):
            continue
        if len(digits) == BSN_DIGITS and bsn.is_valid(digits):
            found.append((part, Kind.BSN))
        elif MIN_PHONE_DIGITS <= len(digits) <= MAX_PHONE_DIGITS and is_phone(digits, part[0].plus, regions):
            found.append((part, Kind.PHONE))
    return found


def _pieces(turn: ScannedText, indices: Sequence[int]) -> list[Piece]:
    return [turn.pieces[k] for k in indices]


def _number_span(turn: ScannedText, digits: Sequence[int]) -> RedactedSpan:
    return RedactedSpan(Kind.NUMBER, turn.pieces[digits[0]].lead_start, turn.pieces[digits[-1]].end)


def _word_positions(turn: ScannedText) -> list[int]:
    """For each token, how many words and numbers come before it (punctuation and fillers not counted)."""
    positions, count = [], 0
    for token in turn.tokens:
        positions.append(count)
        if (token.is_word or token.is_digits) and not is_separator(token.norm, turn.language):
            count += 1
    return positions


def _starts_turn(turn: ScannedText, k: int) -> bool:
    return _word_positions(turn)[turn.pieces[k].first_token] == 0


def _lead(turn: ScannedText) -> tuple[list[int], list[int], list[int]] | None:
    """(pieces before the digits, pieces from the digits on, digit pieces to mask) at the start of a turn that may
    continue a reading."""
    positions = _word_positions(turn)
    numeric = piece_runs(turn.pieces, turn.joined, set(), numeric=True)
    if not numeric or positions[turn.pieces[numeric[0][0]].first_token] >= _LEAD_WORDS:
        return None
    digits = numeric[0]
    for run in piece_runs(turn.pieces, turn.joined, set(), numeric=False):
        if digits[0] in run:
            position = run.index(digits[0])
            return run[max(0, position - _CONTEXT_PIECES) : position], run[position:], digits
    return None  # pragma: no cover (every digit piece is in an alphanumeric run)


def _tail(turn: ScannedText) -> tuple[list[int], list[int]] | None:
    """(pieces to remember, digit pieces to mask) at the end of a turn, or None when it ends in words."""
    runs = piece_runs(turn.pieces, turn.joined, set(), numeric=False)
    if not runs:
        return None
    run = runs[-1]
    after = turn.tokens[turn.pieces[run[-1]].last_token + 1 :]
    if any(token.norm not in SEPARATORS | _TRAILING_OK for token in after):
        return None
    numeric = [r for r in piece_runs(turn.pieces, turn.joined, set(), numeric=True) if r[-1] in run]
    if not numeric:
        return run[-_CONTEXT_PIECES:], []
    digits = numeric[-1]
    if all(turn.kept(k) for k in digits):
        return None  # a date that is not a birth date ("my contract ends on 31-12-2025")
    # Letters may follow the digits ("... nine one a b n a"), a few at most.
    if run[-1] - digits[-1] > _CONTEXT_PIECES // 2:
        return None
    position = run.index(digits[0])
    return run[max(0, position - _CONTEXT_PIECES) :], digits


def _reading(turn: ScannedText, digits: list[int]) -> bool:
    """Whether a turn's last digits look like the start of a number being read, rather than a year or a count."""
    if not digits:
        return turn.says(_IBAN_WORDS)  # "my iban is n l": the letters come first
    text = "".join(turn.pieces[k].digits for k in digits)
    if turn.says(READING_WORDS | SECRET_WORDS):
        return True
    if _house_number(turn, digits[-1]):
        return False
    if turn.says(_NUMBER_WORDS):
        return len(text) >= _MIN_NUMBER_DIGITS or text.startswith("0") or turn.pieces[digits[0]].plus
    if len(text) < _MIN_READING_DIGITS or (len(text) == 4 and int(text) in YEARS and len(digits) <= 2):
        return False
    # Read in groups ("4111 1111", "four one one one") or the whole turn; not "the router is a fritzbox 7590".
    return len(digits) > 1 or _starts_turn(turn, digits[0])


def _house_number(turn: ScannedText, last: int) -> bool:
    """ "12a": digits with a letter written on, as a house number is."""
    tokens = turn.tokens
    k = turn.pieces[last].last_token + 1
    if k >= len(tokens) or tokens[k].start != tokens[k - 1].end:
        return False
    return tokens[k].is_word and len(tokens[k].text) == 1


def _iban_readings(pieces: Sequence[Piece]) -> list[str] | None:
    """A reading of each of `pieces` that together may start an IBAN: at least its country code and check digits."""
    stack: list[list[str]] = [[]]
    while stack:
        readings = stack.pop()
        if len(readings) == len(pieces):
            if len("".join(readings)) >= _IBAN_START_CHARS:
                return readings
            continue
        for reading in pieces[len(readings)].readings:
            if could_start_iban("".join(readings) + reading):
                stack.append([*readings, reading])
    return None
