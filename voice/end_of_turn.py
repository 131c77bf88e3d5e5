"""Adaptive end of turn: how much silence ends this caller's turn, judged from what they have said so far.

A fixed 800 ms keeps a caller who reads out digits with 0.6 s pauses in one turn, but makes every reply wait for
it. When a pause begins, the turn so far is transcribed (`voice.speculation`); this policy reads that transcript
and chooses the silence for this one pause:

1. `trailing_number`: the words end with a number ("four one seven"): the caller is probably reading out digits
   and pauses between groups, so wait longer (`trailing_silence_ms`);
2. `trailing_word`: the words end with a conjunction, preposition, article or hesitation ("and", "about", "my",
   "um") or trail off ("I want to..."): the sentence is unfinished, wait longer;
3. `complete_request`: the engine would answer these words with confidence (an intent at or above
   `min_intent_confidence`, from a clear enough transcript; a transfer or goodbye only on a keyword), and the
   caller sounds finished (Smart Turn, `voice.turn_model`, at or above `finished_probability`, or not asked):
   answer sooner (`complete_silence_ms`, counted from the caller's last loud frame rather than from the VAD's
   last voiced window, which lags it);
4. `sounds_unfinished`: complete words said with an unfinished sound (Smart Turn below `finished_probability`,
   when every pause is scored), as in "I want to pay my bill" - pause - "and change my address": the default
   silence; and words that are not clearly a request said with an unfinished sound, as when the recogniser garbles
   the first half of a sentence ("I have a question about" heard as "I can request you them out."): the trailing
   silence;
5. `sounds_finished`: words that are not clearly a request (not understood, or a doubtful transcript) said with a
   finished sound (Smart Turn at or above `sure_finished_probability`): `finished_silence_ms`, shorter than the
   default, so that a caller the engine does not understand is not kept waiting longest;
6. `unclear`: otherwise, the default silence.

The words come first: Smart Turn hears intonation, and synthetic or flat speech can sound finished mid-sentence
("My internet is not working and" scores 0.99 in the synthetic caller's voice), so it never shortens a pause whose
words trail off. Pure and deterministic: the same words, engine preview and probability always give the same
choice, and the choice says why (the rule, the silence, the evidence) without repeating what the caller said.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import numpy as np

from voice.events import Action, Decision, Transcript


class EndOfTurnRule(StrEnum):
    """Which rule chose the silence that ended (or would end) a turn."""

    FIXED = "fixed_silence"
    """The configured silence: no transcript of the pause was ready in time, or the adaptive policy is off."""
    COMPLETE_REQUEST = "complete_request"
    """The words so far already form a request the engine answers with confidence: a shorter silence."""
    TRAILING_NUMBER = "trailing_number"
    """The words end with a number, as when digits are read out in groups: a longer silence."""
    TRAILING_WORD = "trailing_word"
    """The words end mid-sentence (a conjunction, preposition, article, hesitation or "..."): a longer silence."""
    SOUNDS_UNFINISHED = "sounds_unfinished"
    """Words said with an unfinished sound (Smart Turn): complete words keep the default silence rather than the
    short one, unclear words get the trailing silence."""
    SOUNDS_FINISHED = "sounds_finished"
    """Words that are not clearly a request, said with a finished sound (Smart Turn): a shorter silence."""
    UNCLEAR = "unclear"
    """Words that are neither complete nor trailing off: the default silence."""
    NO_TRANSCRIPT = "no_transcript_in_time"
    """The pause's transcript was not ready within the longest silence (`trailing_silence_ms`), or failed."""
    CUT = "max_turn"
    """The turn reached its longest length and was cut, or the stream ended during it."""


@dataclass(frozen=True, slots=True)
class EndOfTurnOptions:
    """How much silence ends a turn, by rule."""

    enabled: bool = True
    """Choose the silence from the pause's transcript; False: always the default silence."""
    default_silence_ms: int = 800
    """Silence for `unclear` words (and when no transcript is ready): `TurnOptions.end_of_turn_silence_ms`."""
    complete_silence_ms: int = 350
    """Silence after a complete request. The transcript of the pause is usually ready later than this anyway
    (pause report + ASR), so the turn ends as soon as the words are known to be complete."""
    complete_from_last_loud: bool = True
    """Count the complete-request silence from the caller's last loud frame rather than from the VAD's last voiced
    window: Silero's probability stays up for 60-240 ms after the last loud frame, and a caller who has finished a
    request should not wait for that lag on top of the silence. The other silences keep the VAD's count: their
    lengths are set against pauses as the VAD measures them."""
    longest_credited_tail_ms: int = 250
    """Longest stretch of voiced VAD windows after the last loud frame that is taken as the VAD's lag; a longer
    one is quiet speech the loudness floor missed, so the silence is then counted from the VAD as for other rules."""
    trailing_silence_ms: int = 1200
    """Silence after trailing words or a number: a caller reading digits pauses ~0.6 s between groups, and longer
    when looking them up."""
    min_intent_confidence: float = 0.8
    """Engine confidence at or above which the words count as a complete request. Far above the engine's own
    answer threshold (prompts/policy.yaml): on the sample catalogue, half sentences ("When are you", "I would like
    to change") score well below it and whole requests above it."""
    min_handover_confidence: float = 1.0
    """For a transfer or a goodbye, the confidence needed to end the turn early: 1.0 means only a keyword or a key
    ("agent"). Handing over on half a sentence costs the caller a queue ("My phone" scores fraud 0.95)."""
    min_asr_confidence: float = 0.5
    """Recogniser confidence below which the words are not trusted to be complete (the engine's low-confidence
    bar is 0.45)."""
    finished_probability: float = 0.5
    """Smart Turn probability below which complete words still sound unfinished, so the turn keeps the default
    silence; the model's own decision threshold."""
    sure_finished_probability: float = 0.9
    """Smart Turn probability at or above which words that are not clearly a request end the turn after
    `finished_silence_ms`. On real speech cut mid-sentence the model scores 0.1-0.55, on whole sentences 0.97-0.99."""
    finished_silence_ms: int = 600
    """Silence after words that are not clearly a request but sound finished (`sounds_finished`); between the
    complete and the default silence."""
    smart_turn_every_pause: bool = False
    """Score every pause with Smart Turn, beside its transcript, so that complete words that sound unfinished keep
    the default silence; False: score only the pauses whose words are unclear, once their transcript says so. Those
    turns wait for the default silence anyway, so the score costs them no time, and a complete request never waits
    for it. On the synthetic callers' flat voices the model heard finished requests as unfinished, which made them
    wait the default silence (docs/benchmarks.md)."""

    def __post_init__(self) -> None:
        """Reject option sets that cannot work.

        Raises:
            ValueError: a non-positive silence, or a confidence outside [0, 1].
        """
        for name in (
            "default_silence_ms",
            "complete_silence_ms",
            "trailing_silence_ms",
            "finished_silence_ms",
            "longest_credited_tail_ms",
        ):
            if getattr(self, name) <= 0:
                value = getattr(self, name)
                raise ValueError(f"EndOfTurnOptions.{name}: expected a positive number of ms, got {value}")
        for name in (
            "min_intent_confidence",
            "min_handover_confidence",
            "min_asr_confidence",
            "finished_probability",
            "sure_finished_probability",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"EndOfTurnOptions.{name}: expected a value in [0, 1], got {getattr(self, name)}")


class TurnEndModel(Protocol):
    """A model that hears whether a turn is over from its audio (`voice.turn_model.SmartTurn`)."""

    def probability(self, samples_16k: np.ndarray) -> float:
        """How likely the turn is over, in [0, 1], from its 16 kHz audio up to now (blocking)."""


@dataclass(frozen=True, slots=True)
class EndOfTurnChoice:
    """The silence chosen for one pause, and why."""

    rule: EndOfTurnRule
    """The rule that chose it."""
    silence_ms: int
    """The silence that ends the turn in this pause, as the VAD counts it (from its last voiced window)."""
    reason: str
    """Why, in plain words, without the caller's words (they may hold personal data)."""


def duration(ms: int) -> str:
    """A silence for a reason line: "800 ms", "1.2 s". Stored reasons have every run of four or more digits masked as
    possible personal data (`voice.handoff.mask_digits`), which would turn "1200 ms" into "[number] ms"."""
    return f"{ms} ms" if ms < 1000 else f"{ms / 1000:g} s"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words after which an English or Dutch sentence is not finished. Fillers are here too: "I want to um" trails off.
_TRAILING_WORDS = {
    "en": _words(
        "and or but so because cause then if than that which who whose when where while with without to for of "
        "about from in on at by into onto over under like as the a an my your our their his her its this these "
        "those is are was were am be been i'm it's i've i'd can could would should will um uh umm uhm er erm hmm"
    ),
    "nl": _words(
        "en of maar dus want omdat dan als met zonder naar voor van over uit in op aan bij tot om de het een mijn "
        "uw jouw ons onze hun zijn haar dit dat deze die is ben was waren wil kan zou eh ehm euh uh uhm um hmm"
    ),
}
# Number words a caller reads digits and amounts with (speech recognition writes digits or words).
_NUMBER_WORDS = {
    "en": _words(
        "zero oh one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand double "
        "triple"
    ),
    "nl": _words(
        "nul een twee drie vier vijf zes zeven acht negen tien elf twaalf dertien veertien vijftien zestien "
        "zeventien achttien negentien twintig dertig veertig vijftig zestig zeventig tachtig negentig honderd "
        "duizend dubbel"
    ),
}
_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
# Whisper writes a sentence that trails off with an ellipsis or a dash ("I want to...", "My number is -").
_TRAILING_MARK = re.compile(r"(\.\.\.|\u2026|[-\u2013\u2014,])\s*$")
# Engine rules that mean "not understood": never a complete request, whatever the score.
_NOT_ANSWERED = frozenset({"not_understood", "not_understood_offer", "not_understood_transfer", "low_asr_confidence"})


class EndOfTurnPolicy:
    """Chooses the end-of-turn silence for a pause from the transcript of the turn so far."""

    def __init__(self, options: EndOfTurnOptions, language: str) -> None:
        """Set the silences and the language whose trailing words are known.

        Raises:
            ValueError: a language with no word lists.
        """
        if language not in _TRAILING_WORDS:
            raise ValueError(f"no end-of-turn word lists for language {language!r}; known: {sorted(_TRAILING_WORDS)}")
        self.options = options
        self.language = language

    def fixed(self, why: str) -> EndOfTurnChoice:
        """The default silence, for when no transcript decided (`why` says so)."""
        return EndOfTurnChoice(EndOfTurnRule.FIXED, self.options.default_silence_ms, why)

    def awaiting_transcript(self) -> EndOfTurnChoice:
        """While the pause's transcript is being made: the longest silence, so that a caller who is reading out
        digits is not cut off at the default silence just because the machine is slow. It costs nothing otherwise:
        without it the turn would end at the default silence and then wait for that same transcript."""
        return EndOfTurnChoice(
            EndOfTurnRule.NO_TRANSCRIPT,
            self.options.trailing_silence_ms,
            f"the pause's transcript was not ready within {duration(self.options.trailing_silence_ms)}",
        )

    def choose(
        self,
        transcript: Transcript,
        preview: Decision | None,
        finished: float | None = None,
        voiced_tail_ms: float | None = None,
    ) -> EndOfTurnChoice:
        """The silence that should end the turn in this pause.

        Args:
            transcript: the turn so far, as recognised when the pause began.
            preview: what the engine would decide on these words (redacted) in the call's current state; None when
                it cannot be asked (the call has not started).
            finished: Smart Turn's probability that the turn so far is over (`voice.turn_model`); None when the
                model is off or failed: the words alone decide.
            voiced_tail_ms: how long the VAD's voiced windows outlasted the caller's last loud frame
                (`voice.latency.CallerClock.voiced_tail_ms`); None when unknown: every silence is the VAD's.

        Returns:
            The first rule that applies (see the module docstring), with its silence and reason.
        """
        options = self.options
        if not options.enabled:
            return self.fixed("adaptive end of turn is off")
        text = transcript.text.strip()
        words = [word.lower().replace("\u2019", "'") for word in _WORD.findall(text)]
        if not words:
            return EndOfTurnChoice(
                EndOfTurnRule.UNCLEAR, options.default_silence_ms, "no words recognised in the pause's transcript"
            )
        last = words[-1]
        if last.isdigit() or last in _NUMBER_WORDS[self.language]:
            return EndOfTurnChoice(
                EndOfTurnRule.TRAILING_NUMBER,
                options.trailing_silence_ms,
                "the words so far end with a number (digits may follow)",
            )
        if last in _TRAILING_WORDS[self.language] or _TRAILING_MARK.search(text):
            kind = f"the word {last!r}" if last in _TRAILING_WORDS[self.language] else "a trailing mark"
            return EndOfTurnChoice(
                EndOfTurnRule.TRAILING_WORD, options.trailing_silence_ms, f"the words so far end with {kind}"
            )
        answered = preview is not None and preview.intent is not None and preview.rule not in _NOT_ANSWERED
        needed = options.min_intent_confidence
        if answered and preview.action is not Action.REPLY:
            needed = max(needed, options.min_handover_confidence)
        sound = "" if finished is None else f", Smart Turn {finished:.2f}"
        # Said with an unfinished sound: complete words keep the default silence, unclear ones the trailing one.
        unfinished = ""
        if finished is not None and finished < options.finished_probability:
            unfinished = f"it sounds unfinished (Smart Turn {finished:.2f} < {options.finished_probability:.2f})"
        if answered and preview.confidence >= needed and transcript.confidence >= options.min_asr_confidence:
            words = (
                f"complete request: {preview.intent} {preview.confidence:.2f} >= {needed:.2f} "
                f"(rule {preview.rule}, action {preview.action.value}), "
                f"recogniser confidence {transcript.confidence:.2f}"
            )
            if unfinished:
                return EndOfTurnChoice(
                    EndOfTurnRule.SOUNDS_UNFINISHED, options.default_silence_ms, f"{words}, but {unfinished}"
                )
            silence, counted = self._complete_silence(voiced_tail_ms)
            return EndOfTurnChoice(EndOfTurnRule.COMPLETE_REQUEST, silence, words + sound + counted)
        score = f"{preview.intent} {preview.confidence:.2f}" if preview is not None and preview.intent else "no intent"
        asr = f"recogniser confidence {transcript.confidence:.2f}"
        # A transfer or goodbye is never hurried on the sound alone: a half sentence may name the wrong department.
        replying = preview is None or preview.action is Action.REPLY
        if replying and finished is not None and finished >= options.sure_finished_probability:
            return EndOfTurnChoice(
                EndOfTurnRule.SOUNDS_FINISHED,
                options.finished_silence_ms,
                f"not clearly a complete request ({score}, {asr}), but it sounds finished "
                f"(Smart Turn {finished:.2f} >= {options.sure_finished_probability:.2f})",
            )
        if unfinished:
            return EndOfTurnChoice(
                EndOfTurnRule.SOUNDS_UNFINISHED,
                options.trailing_silence_ms,
                f"not clearly a complete request ({score}, {asr}), and {unfinished}",
            )
        return EndOfTurnChoice(
            EndOfTurnRule.UNCLEAR, options.default_silence_ms, f"not clearly a complete request ({score}, {asr}{sound})"
        )

    def _complete_silence(self, voiced_tail_ms: float | None) -> tuple[int, str]:
        """The complete-request silence as the VAD counts it, and how it was counted (for the reason)."""
        options = self.options
        silence = options.complete_silence_ms
        if not options.complete_from_last_loud or voiced_tail_ms is None or voiced_tail_ms <= 0:
            return silence, ""
        tail = round(voiced_tail_ms)
        if tail > options.longest_credited_tail_ms:
            return silence, (
                f"; counted from the VAD: its voiced windows outlasted the last loud frame by {tail} ms "
                f"(> {options.longest_credited_tail_ms} ms, quiet speech)"
            )
        return max(1, silence - tail), f"; {silence} ms from the last loud frame, {tail} ms before the VAD's silence"


@dataclass(frozen=True, slots=True)
class EndOfTurn:
    """Why a caller's turn was taken as over, for the turn record: the rule, the silence, the transcript used."""

    rule: EndOfTurnRule
    """The rule that chose the silence."""
    silence_ms: int | None
    """The silence that ended the turn; None when it was cut at the longest turn or the stream ended."""
    reason: str
    """Why, in plain words."""
    speculative_asr: bool = False
    """The transcript was made while the pause began (speculative ASR) and kept, rather than after the turn."""

    def describe(self) -> str:
        """One line for the decision's reasons."""
        silence = f"after {duration(self.silence_ms)} of silence" if self.silence_ms is not None else "without silence"
        source = "; transcript from the pause (speculative ASR)" if self.speculative_asr else ""
        return f"end of turn {silence}: rule {self.rule.value} ({self.reason}){source}"
