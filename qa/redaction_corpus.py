"""Scoring redaction on a corpus of caller turns: planted personal data that must be masked, ordinary turns that must
not change. `benchmarks/redaction.py` prints the figures; `tests/test_redaction.py` asserts on the same ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from voice.redaction.buffer import RedactionBuffer
from voice.redaction.finder import GENERIC_DIGITS, LANGUAGES, Kind, Redaction, redact
from voice.redaction.spoken_numbers import read_pieces, tokenize

CORPUS = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "redaction_corpus.yaml"
"""The corpus the redaction was written against (a held-out one lies beside it)."""


@dataclass(frozen=True, slots=True)
class PlantedItem:
    """One piece of personal data in a case, possibly read over several turns."""

    kind: Kind
    """What it is."""
    parts: tuple[tuple[int, str], ...]
    """(turn index, exact text of the part in that turn) for each part."""


@dataclass(frozen=True, slots=True)
class Case:
    """One corpus entry: a turn, or turns of one call, with what should be redacted."""

    language: str
    """"en" or "nl"."""
    turns: tuple[str, ...]
    """The caller's turns, in order."""
    items: tuple[PlantedItem, ...] = ()
    """The personal data in them; none for an ordinary case."""


@dataclass(slots=True)
class KindScore:
    """Figures for one language and kind."""

    items: int = 0
    recalled: int = 0
    labelled: int = 0
    misses: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Report:
    """Figures for the whole corpus."""

    kinds: dict[tuple[str, Kind], KindScore] = field(default_factory=dict)
    ordinary: dict[str, int] = field(default_factory=dict)
    changed_by_redact: dict[str, list[str]] = field(default_factory=dict)
    changed_by_buffer: dict[str, list[str]] = field(default_factory=dict)
    long_numbers: set[str] = field(default_factory=set)
    """Changed lines (as in changed_by_*) where only long numbers were masked as "[number]": a run of seven or more
    digits that no check explained, masked on purpose (a card number with a misheard digit fails Luhn too)."""

    def recall(self, kinds: Sequence[Kind], language: str | None = None) -> float:
        scores = [s for (lang, kind), s in self.kinds.items() if kind in kinds and language in (None, lang)]
        total = sum(s.items for s in scores)
        return sum(s.recalled for s in scores) / total if total else 1.0

    def false_rate(self, language: str | None = None, *, buffer: bool = False, other: bool = False) -> float:
        """Share of ordinary turns changed; `other`: leaving out the deliberate masking of long numbers."""
        changed = self.changed_by_buffer if buffer else self.changed_by_redact
        languages = [language] if language else list(self.ordinary)
        total = sum(self.ordinary.get(lang, 0) for lang in languages)
        lines = [line for lang in languages for line in changed.get(lang, [])]
        if other:
            lines = [line for line in lines if line not in self.long_numbers]
        return len(lines) / total if total else 0.0

    def count(self, language: str, *, buffer: bool = False, other: bool = False) -> int:
        lines = (self.changed_by_buffer if buffer else self.changed_by_redact).get(language, [])
        return sum(1 for line in lines if not (other and line in self.long_numbers))


def load_corpus(path: Path = CORPUS) -> tuple[list[Case], list[Case]]:
    """Read the corpus: (planted cases, ordinary cases).

    Raises:
        ValueError: an entry names an unknown kind or language, or a value that is not in its turn.
    """
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    planted, ordinary = [], []
    for section, cases in (("planted", planted), ("ordinary", ordinary)):
        for index, entry in enumerate(data[section]):
            where = f"{path.name}: {section}[{index}]"
            language = entry["lang"]
            if language not in LANGUAGES:
                raise ValueError(f"{where}: lang: expected one of {LANGUAGES}, got {language!r}")
            turns = tuple(entry["turns"]) if "turns" in entry else (entry["text"],)
            items = []
            for expected in entry.get("expect", ()):
                try:
                    kind = Kind[expected["kind"].upper()]
                except KeyError:
                    raise ValueError(f"{where}: unknown kind {expected['kind']!r}") from None
                pairs = expected["parts"] if "parts" in expected else [(0, expected["value"])]
                parts = tuple((int(turn), value) for turn, value in pairs)
                for turn, value in parts:
                    if value not in turns[turn]:
                        raise ValueError(f"{where}: {value!r} is not in turn {turn}: {turns[turn]!r}")
                items.append(PlantedItem(kind, parts))
            cases.append(Case(language, turns, tuple(items)))
    return planted, ordinary


def run_turns(language: str, turns: Sequence[str]) -> tuple[list[Redaction], list[Redaction]]:
    """Redact `turns` as one call: (each turn as first redacted, each turn after all revisions).

    A single turn goes through `redact`, as one-off text does; several through a `RedactionBuffer`.
    """
    if len(turns) == 1:
        redaction = redact(turns[0], language)
        return [redaction], [redaction]
    buffer = RedactionBuffer(language)
    first: list[Redaction] = []
    final: list[Redaction] = []
    for text in turns:
        result = buffer.redact_turn(text)
        first.append(result.redaction)
        final.append(result.redaction)
        for index, revised in result.revised:
            final[index] = revised
    return first, final


def _covered(text: str, redaction: Redaction, value: str, kind: Kind | None = None) -> bool:
    start = text.index(value)
    spans = [s for s in redaction.spans if kind is None or s.kind is kind]
    return all(text[i].isspace() or any(s.start <= i < s.end for s in spans) for i in range(start, start + len(value)))


def _only_long_numbers(text: str, redaction: Redaction, language: str) -> bool:
    """Whether every span is a "[number]" that reads as GENERIC_DIGITS digits or more, and no more than the number:
    it ends in digits and starts with them or with a country code ("NL45 RABO ..."), so that a span that took a word
    with it counts as "other"."""
    for span in redaction.spans:
        pieces, _ = read_pieces(tokenize(text[span.start : span.end]), language)
        if span.kind is not Kind.NUMBER or sum(len(piece.digits) for piece in pieces) < GENERIC_DIGITS:
            return False
        starts_with_number = pieces[0].digits or (len(pieces) > 1 and pieces[1].digits)
        if not (starts_with_number and pieces[-1].digits):
            return False
    return True


def score(planted: Sequence[Case], ordinary: Sequence[Case]) -> Report:
    """Redact every case and count."""
    report = Report()
    for case in planted:
        first, final = run_turns(case.language, case.turns)
        for item in case.items:
            figures = report.kinds.setdefault((case.language, item.kind), KindScore())
            figures.items += 1
            recalled = all(_covered(case.turns[t], first[t], value) for t, value in item.parts)
            labelled = all(_covered(case.turns[t], final[t], value, item.kind) for t, value in item.parts)
            figures.recalled += recalled
            figures.labelled += labelled
            if not (recalled and labelled):
                verdict = "mislabelled" if recalled else "MISSED"
                shown = " / ".join(r.text for r in final)
                figures.misses.append(f"{verdict}: {' / '.join(case.turns)!r} -> {shown!r}")
    for case in ordinary:
        (text,) = case.turns
        report.ordinary[case.language] = report.ordinary.get(case.language, 0) + 1
        by_redact = redact(text, case.language)
        by_buffer = RedactionBuffer(case.language).redact_turn(text).redaction
        for redaction, changed in ((by_redact, report.changed_by_redact), (by_buffer, report.changed_by_buffer)):
            if redaction.text == text:
                continue
            line = f"{text!r} -> {redaction.text!r}"
            changed.setdefault(case.language, []).append(line)
            if _only_long_numbers(text, redaction, case.language):
                report.long_numbers.add(line)
    return report
