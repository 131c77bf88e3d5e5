"""The tone check: every reply is short, calm and honest, in both languages.

Run by the test suite and by ``voice-agent lint-prompts``. The patterns are the product's promise (no simulated
feelings, no exclamation marks, never a claim to be human, never a waiting time it cannot know), so they live in
code, not in the catalogue they check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from voice.prompts import Catalogue, Role

MAX_SENTENCES = 2

_SENTENCE_END = re.compile(r"(?<=[.?!])\s+")

# Claimed feelings. "Sorry" is included: an apology-as-feeling is what callers distrust in bots.
_FEELINGS = {
    "en": [
        r"\bi feel\b",
        r"\bi(?:'m| am) (?:\w+ )?sorry\b",
        r"\bsorry\b",
        r"\bi(?:'m| am) (?:so |very |really |truly )?(?:excited|happy|glad|thrilled|delighted|sad|upset|worried)\b",
        r"\bi love\b",
        r"\bi care\b",
        r"\bi understand how you feel\b",
        r"\bi (?:know|understand) how (?:frustrating|hard|difficult|upsetting)\b",
        r"\bmy heart\b",
        r"\bi(?:'m| am) afraid\b",
    ],
    "nl": [
        r"\bik voel\b",
        r"\bhet spijt me\b",
        r"\bsorry\b",
        r"\bexcuses\b",
        r"\bik ben (?:zo |heel |erg )?(?:blij|enthousiast|verheugd|verdrietig|bezorgd)\b",
        r"\bik hou van\b",
        r"\bik houd van\b",
        r"\bik begrijp hoe u zich voelt\b",
        r"\bik begrijp hoe je je voelt\b",
        r"\bik vind het (?:zo |heel |erg )?(?:vervelend|jammer|fijn|leuk)\b",
        r"\bhelaas\b",
    ],
}

# Claims to be a person. "I am not a person" stays allowed: the negation breaks the pattern.
_HUMAN_CLAIMS = {
    "en": [
        r"\bi(?:'m| am) (?:a |an )?(?:real |actual )?(?:human|person|man|woman|employee|staff member)\b",
        r"\bas a (?:human|person)\b",
        r"\bi(?:'m| am) not (?:a |an )?(?:robot|machine|computer|bot|ai)\b",
    ],
    "nl": [
        r"\bik ben (?:een )?(?:echt(?:e)? )?(?:mens|persoon|man|vrouw|medewerker)\b",
        r"\bals mens\b",
        r"\bik ben geen (?:robot|computer|machine|bot|ai)\b",
    ],
}

# Promised waiting times. The agent cannot know how long a person takes to answer (a queue, nobody free), so a reply
# never says how long anything on the line will take.
_DURATION = r"(?:\w+ |a few |a couple of )?(?:seconds?|minutes?|hours?)\b"
_WAIT_PROMISES = {
    "en": [
        rf"\b(?:less than|no more than|at most|under|within|only|about|around|in) {_DURATION}",
        r"\b(?:shortly|right away|in a moment|(?:won't|will not) (?:be|take) long)\b",
    ],
    "nl": [
        r"\b(?:minder dan|niet meer dan|hooguit|maximaal|binnen|slechts|ongeveer|over|nog maar) "
        r"(?:\w+ |enkele |een paar )?(?:seconden?|minuten|minuut|uur)\b",
        r"\b(?:zometeen|zo meteen|zo dadelijk|duurt niet lang|niet lang wachten)\b",
    ],
}

# What the greeting's first sentence and the honest answer must contain.
_AI_DISCLOSURE = {"en": r"\bautomated\b.*\bAI\b", "nl": r"\bgeautomatiseerde\b.*\bAI\b"}
_PERSON_WORD = {"en": r"\bagent\b", "nl": r"\bmedewerker\b"}
_NOT_A_PERSON = {
    "en": r"\bnot (?:a |an )?(?:real )?(?:person|human)\b",
    "nl": r"\b(?:geen|niet met een) (?:echt(?:e)? )?(?:mens|persoon)\b",
}


@dataclass(frozen=True, slots=True)
class ToneProblem:
    """One reply that breaks the tone rules."""

    where: str
    """Which reply: the file and the entry."""
    text: str
    """The reply."""
    problem: str
    """What is wrong, in plain words."""

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}: {self.text!r}"


def sentences(text: str) -> list[str]:
    """Split a reply into sentences (a full stop, question mark or exclamation mark followed by a space)."""
    return [part for part in _SENTENCE_END.split(text.strip()) if part]


def discloses_ai(sentence: str, language: str) -> bool:
    """Whether `sentence` says that the caller is talking to an automated AI assistant (the greeting's promise)."""
    return re.search(_AI_DISCLOSURE[language], sentence) is not None


def reply_problems(text: str, language: str) -> list[str]:
    """The tone rules `text` breaks, as short descriptions; empty when it is fine.

    Args:
        text: one reply.
        language: "en" or "nl".
    """
    problems = []
    count = len(sentences(text))
    if count > MAX_SENTENCES:
        problems.append(f"{count} sentences, at most {MAX_SENTENCES}")
    if "!" in text:
        problems.append("exclamation mark")
    lowered = text.lower()
    for pattern in _FEELINGS[language]:
        if match := re.search(pattern, lowered):
            problems.append(f"claims a feeling ({match.group()!r})")
    for pattern in _HUMAN_CLAIMS[language]:
        if match := re.search(pattern, lowered):
            problems.append(f"claims to be human ({match.group()!r})")
    for pattern in _WAIT_PROMISES[language]:
        if match := re.search(pattern, lowered):
            problems.append(f"promises a waiting time ({match.group()!r})")
    return problems


def lint_catalogue(catalogue: Catalogue) -> list[ToneProblem]:
    """Check every reply and handoff text of `catalogue`, and the disclosure rules of the greeting and honest answer.

    Returns:
        Every problem found; empty when the catalogue passes.
    """
    language = catalogue.language
    base = catalogue.source_dir / language
    texts = {f"{base / 'intents.yaml'}: {name}.reply": intent.reply for name, intent in catalogue.intents.items()}
    texts.update({f"{base / 'replies.yaml'}: {key}": text for key, text in catalogue.replies.texts().items()})
    # The handoff is read to the person who answers: the same rules, checked on every reason and way of listing.
    texts.update({f"{base / 'replies.yaml'}: {key}": text for key, text in catalogue.handoff.examples().items()})
    found = [
        ToneProblem(where, text, problem) for where, text in texts.items() for problem in reply_problems(text, language)
    ]

    greeting = catalogue.replies.greeting
    where = f"{base / 'replies.yaml'}: greeting"
    first = sentences(greeting)[0] if sentences(greeting) else ""
    if not discloses_ai(first, language):
        found.append(ToneProblem(where, greeting, "the first sentence must say it is an automated AI assistant"))
    if not (re.search(_PERSON_WORD[language], greeting) and "0" in greeting):
        found.append(ToneProblem(where, greeting, "must say how to reach a person (the word and key 0)"))

    honest = catalogue.with_role(Role.AI_QUESTION)
    where = f"{base / 'intents.yaml'}: {honest.name}.reply"
    if not (re.search(r"\bAI\b", honest.reply) and re.search(_NOT_A_PERSON[language], honest.reply)):
        found.append(ToneProblem(where, honest.reply, "must say honestly that it is an AI and not a person"))
    if not re.search(_PERSON_WORD[language], honest.reply):
        found.append(ToneProblem(where, honest.reply, "must say how to reach a person"))
    return found
