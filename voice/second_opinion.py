"""A second opinion: a larger recogniser hears a turn again before the caller is asked to repeat it.

The call's recogniser is small so that every turn is answered quickly, and it is weakest on the voices it heard
least in training (benchmarks/fairness.py). When the engine would not understand what it wrote down, or the recogniser
itself was unsure, the same audio goes to a larger (multilingual) model; a misheard caller then waits a moment
longer instead of being asked to say it all again. The engine reads both transcripts (a pure preview) and the one it
reads with more confidence is used; the decision's reasons say that a second opinion was taken and what it changed.
"""

from __future__ import annotations

from dataclasses import dataclass

from voice.asr import SpeechRecognizer
from voice.events import Decision, Transcript

NOT_UNDERSTOOD_RULES = frozenset({"not_understood", "not_understood_offer", "not_understood_transfer"})
"""The engine's rules for a turn it could not read as an intent it serves."""
KEYWORD_CONFIDENCE = 1.0
"""The confidence of a decision taken by a keyword or a key: nothing a second recogniser could improve on."""


@dataclass(frozen=True, slots=True)
class SecondOpinionOptions:
    """When a second opinion is asked for."""

    below_confidence: float = 0.0
    """Also ask when the first recogniser's confidence is below this, even if the engine understood the turn
    (never for a keyword's decision such as "agent"); 0 asks only when the engine does not understand."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.below_confidence <= 1.0:
            raise ValueError(f"SecondOpinionOptions.below_confidence must be in 0..1, got {self.below_confidence}")


@dataclass(frozen=True, slots=True)
class Verdict:
    """Which transcript to use after a second opinion, and the reason to record."""

    transcript: Transcript
    changed: bool
    """The second transcript is used."""
    reason: str


def understood(decision: Decision) -> bool:
    """The engine read the turn as an intent it serves."""
    return decision.intent is not None and decision.rule not in NOT_UNDERSTOOD_RULES


class SecondOpinion:
    """The larger recogniser and the rules for asking it."""

    def __init__(self, recognizer: SpeechRecognizer, name: str, options: SecondOpinionOptions | None = None) -> None:
        """
        Args:
            recognizer: the larger model, loaded once and shared by all calls.
            name: how the reasons name it, such as "Whisper base".
            options: when to ask.
        """
        self.recognizer = recognizer
        self.name = name
        self.options = options or SecondOpinionOptions()

    def why_ask(self, first: Transcript, preview: Decision) -> str | None:
        """Why a second opinion is wanted on `first`, which the engine would decide as `preview`; None: not wanted."""
        if not first.text:
            return None
        if not understood(preview):
            return "the engine did not understand the first transcript"
        if first.confidence < self.options.below_confidence and preview.confidence < KEYWORD_CONFIDENCE:
            return f"recogniser confidence {first.confidence:.2f} below {self.options.below_confidence:.2f}"
        return None

    def choose(
        self, why: str, first: Transcript, first_preview: Decision, second: Transcript, second_preview: Decision
    ) -> Verdict:
        """Keep `first` or take `second`: the second is used only when the engine reads it as an intent it serves
        with more confidence than the first.

        Args:
            why: from `why_ask`.
            first, first_preview: the first transcript and what the engine would decide on it.
            second, second_preview: the same for the second opinion.
        """
        asked = f"second opinion ({self.name}) because {why}"
        if not second.text:
            return Verdict(first, False, f"{asked}: it heard no words; the first transcript stands")
        if understood(second_preview) and (
            not understood(first_preview) or second_preview.confidence > first_preview.confidence
        ):
            before = (
                f"{first_preview.intent} {first_preview.confidence:.2f}"
                if understood(first_preview)
                else "not understood"
            )
            return Verdict(
                second,
                True,
                f"{asked}: read as {second_preview.intent} {second_preview.confidence:.2f} (first: {before}); "
                "its transcript is used",
            )
        found = f"{second_preview.intent} {second_preview.confidence:.2f}" if understood(second_preview) else "nothing"
        return Verdict(first, False, f"{asked}: it read {found}, no better; the first transcript stands")
