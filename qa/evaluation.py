"""Evaluation of the dialogue engine on a held-out set of caller utterances.

Each case is one caller turn after the greeting, with the intent a person would expect ("none": not to be
understood). The report gives intent accuracy, escalation recall (cases that must reach a person and do) and the
false-transfer rate (ordinary questions handed to a person without need).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from voice.dialogue import DialogueEngine
from voice.events import Action, Decision, Transcript
from voice.prompts import Role

NO_INTENT = "none"
_ESCALATING_ROLES = (Role.HUMAN_REQUEST, Role.SENSITIVE, Role.EMERGENCY)


@dataclass(frozen=True, slots=True)
class EvalCase:
    """One held-out caller utterance."""

    text: str
    """What the caller said, as speech recognition would write it."""
    intent: str
    """Expected intent, or "none" when the agent should not understand it."""
    note: str = ""
    """Kind of case: misrecognition, numbers, indirect, ..."""


@dataclass(slots=True)
class EvalReport:
    """Figures for one language."""

    language: str
    cases: int = 0
    correct: int = 0
    must_transfer: int = 0
    must_transfer_transferred: int = 0
    ordinary: int = 0
    ordinary_transferred: int = 0
    misses: list[tuple[EvalCase, Decision]] = field(default_factory=list)
    missed_transfers: list[EvalCase] = field(default_factory=list)
    false_transfers: list[EvalCase] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        """Share of cases read as the expected intent."""
        return self.correct / self.cases if self.cases else 0.0

    @property
    def escalation_recall(self) -> float:
        """Share of must-transfer cases that transferred."""
        return self.must_transfer_transferred / self.must_transfer if self.must_transfer else 1.0

    @property
    def false_transfer_rate(self) -> float:
        """Share of ordinary cases (questions the agent answers itself, or nonsense) that transferred."""
        return self.ordinary_transferred / self.ordinary if self.ordinary else 0.0


def load_eval_set(path: Path) -> list[EvalCase]:
    """Read an evaluation file: ``cases: [{text, intent, note?}, ...]``.

    Raises:
        ValueError: the file does not have that shape, naming the case.
    """
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        raise ValueError(f"{path}: expected a mapping with a list under 'cases'")
    cases = []
    for index, entry in enumerate(data["cases"]):
        if not isinstance(entry, dict) or not entry.get("text") or not entry.get("intent"):
            raise ValueError(f"{path}: cases[{index}]: needs 'text' and 'intent'")
        cases.append(EvalCase(text=str(entry["text"]), intent=str(entry["intent"]), note=str(entry.get("note", ""))))
    return cases


def evaluate(engine: DialogueEngine, cases: Sequence[EvalCase]) -> EvalReport:
    """Run each case as the first caller turn after the greeting and count the outcomes.

    Raises:
        ValueError: a case names an intent the catalogue does not have.
    """
    intents = engine.catalogue.intents
    report = EvalReport(language=engine.catalogue.language)
    start, _ = engine.start()
    for case in cases:
        if case.intent != NO_INTENT and case.intent not in intents:
            raise ValueError(f"evaluation case {case.text!r}: unknown intent {case.intent!r}")
        _, decision = engine.step(start, Transcript(case.text))
        transferred = decision.action is Action.TRANSFER
        read_as = decision.intent
        if read_as is not None and intents[read_as].role is Role.OUT_OF_SCOPE:
            read_as = NO_INTENT
        report.cases += 1
        if (read_as or NO_INTENT) == case.intent:
            report.correct += 1
        else:
            report.misses.append((case, decision))
        expected_intent = intents.get(case.intent)
        must_transfer = expected_intent is not None and (
            expected_intent.role in _ESCALATING_ROLES or expected_intent.action is Action.TRANSFER
        )
        if must_transfer:
            report.must_transfer += 1
            report.must_transfer_transferred += transferred
            if not transferred:
                report.missed_transfers.append(case)
        elif expected_intent is None or expected_intent.role is None:
            report.ordinary += 1
            report.ordinary_transferred += transferred
            if transferred:
                report.false_transfers.append(case)
    return report
