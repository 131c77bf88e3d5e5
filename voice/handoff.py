"""The handoff: what the person who takes a transferred call needs to know, so the caller never repeats themselves.

Made when the engine decides to transfer: who is calling (number masked), the topics the caller raised and which of
them the agent already answered, why a person takes over, the key facts (keys pressed, turns not understood) and the
transcript so far. Its `summary` is two sentences in the call's language, made from the catalogue's templates
(``handoff`` in prompts/<lang>/replies.yaml, tone-checked like every reply): the whisper speaks it to the person who
answers and the desk card shows it as its headline. The caller's words arrive already redacted (`voice.redaction`);
as a second line of defence every digit run of four or more that is left is masked too, which covers card, account
and phone numbers in any form redaction missed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from voice.events import HAND_OVER_NOW_RULE, TECHNICAL_FAILURE_RULE, Action, Decision, Dtmf, Transcript
from voice.prompts import Catalogue, HandoffReason, Role

# Four or more digits, possibly separated by spaces or dashes as recognisers write them ("4111 1111 ...").
_DIGIT_RUN = re.compile(r"\d(?:[ \-]?\d){3,}")
_MASK = "[number]"
_VISIBLE_CALLER_DIGITS = 2
# Decisions whose intent is a topic the caller raised (the others are moves in the dialogue: an offer, a repeat).
_TOPIC_RULES = frozenset({"intent", "keypad", "sensitive", "emergency"})
# Transfers whose rule alone says why, whatever the intent.
_REASON_BY_RULE = {
    "dtmf_zero": HandoffReason.PERSON_KEY,
    "offer_accepted": HandoffReason.OFFER_ACCEPTED,
    "emergency": HandoffReason.EMERGENCY,
    "sensitive": HandoffReason.SENSITIVE,
    "not_understood_transfer": HandoffReason.NOT_UNDERSTOOD,
    TECHNICAL_FAILURE_RULE: HandoffReason.TECHNICAL_FAILURE,
    HAND_OVER_NOW_RULE: HandoffReason.ASSISTANT_UNAVAILABLE,
}
_REASON_BY_ROLE = {
    Role.HUMAN_REQUEST: HandoffReason.PERSON_REQUESTED,
    Role.SENSITIVE: HandoffReason.SENSITIVE,
    Role.EMERGENCY: HandoffReason.EMERGENCY,
}


@dataclass(frozen=True, slots=True)
class TranscriptLine:
    """One line of the conversation as the agent desk shows it."""

    speaker: str
    """"caller" or "agent"."""
    text: str
    """What was said (masked) or, for a key press, "pressed 3"."""


@dataclass(frozen=True, slots=True)
class Handoff:
    """The context passed to the person who takes the call."""

    call_sid: str
    """The call, for the agent desk and the API."""
    caller: str
    """The caller's number with all but the last two digits masked, or "unknown"."""
    intent: str | None
    """What the caller wanted when the transfer was decided."""
    department: str
    """Who takes the call."""
    reason: str
    """Why the engine transferred the call, as its decision recorded it (English, for accountability)."""
    kind: HandoffReason
    """Why a person takes over, as one of the reasons the handoff's second sentence names."""
    topics: tuple[str, ...]
    """The topics the caller raised, as the catalogue names them in the call's language ("a bill"), in order."""
    answered: tuple[str, ...]
    """Those of `topics` the agent already answered."""
    reason_text: str
    """Why a person takes over, one sentence in the call's language (the summary's second)."""
    summary: str
    """Two sentences in the call's language: what the caller raised, then why a person takes over. Spoken to the
    person who answers (the whisper) and shown as the desk card's headline."""
    facts: tuple[str, ...]
    """Key facts for the person: keys pressed, turns the agent did not understand, the intent at the transfer."""
    transcript: tuple[TranscriptLine, ...]
    """The conversation so far, masked."""


def mask_digits(text: str) -> str:
    """Replace every run of four or more digits in `text` (spaces and dashes allowed inside) with a marker."""
    return _DIGIT_RUN.sub(_MASK, text)


def mask_caller_number(number: str | None) -> str:
    """ "+31 6 1234 5678" -> "*********78": enough for the person to recognise a repeat caller, no more."""
    digits = re.sub(r"\D", "", number or "")
    if len(digits) <= _VISIBLE_CALLER_DIGITS:
        return "unknown"
    return "*" * (len(digits) - _VISIBLE_CALLER_DIGITS) + digits[-_VISIBLE_CALLER_DIGITS:]


def transfer_reason(catalogue: Catalogue, decision: Decision) -> HandoffReason:
    """Why a person takes over, from the transfer decision's rule and, failing that, its intent's role."""
    by_rule = _REASON_BY_RULE.get(decision.rule)
    if by_rule is not None:
        return by_rule
    intent = catalogue.intents.get(decision.intent) if decision.intent else None
    if intent is not None and intent.role in _REASON_BY_ROLE:
        return _REASON_BY_ROLE[intent.role]
    return HandoffReason.NEEDS_PERSON


def raised_topics(catalogue: Catalogue, decisions: Sequence[Decision]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The topic intents the caller raised, in order, and those the agent answered with the intent's own reply."""
    names = catalogue.handoff.topic_names
    topics: list[str] = []
    answered: list[str] = []
    for decision in decisions:
        if decision.intent not in names or decision.rule not in _TOPIC_RULES:
            continue
        if decision.intent not in topics:
            topics.append(decision.intent)
        if decision.action is Action.REPLY and decision.intent not in answered:
            answered.append(decision.intent)
    return tuple(topics), tuple(intent for intent in topics if intent in answered)


def build_handoff(
    catalogue: Catalogue,
    call_sid: str,
    exchanges: Sequence[tuple[Transcript | Dtmf | None, Decision]],
    decision: Decision,
    caller_number: str | None,
    kind: HandoffReason | None = None,
) -> Handoff:
    """Make the handoff for a transfer decision.

    Args:
        catalogue: the call's catalogue: the handoff's sentences in its language, and the intents' roles.
        call_sid: the call.
        exchanges: every (caller turn, decision) so far, greeting first, `decision` last.
        decision: the transfer decision.
        caller_number: the caller's number as the telephony provider gave it, if known.
        kind: why a person takes over, when the caller never reached the engine (a call turned away);
            otherwise read from the decision (`transfer_reason`).

    Raises:
        ValueError: `decision` is not a transfer.
    """
    if decision.action is not Action.TRANSFER or decision.department is None:
        raise ValueError(f"a handoff needs a transfer decision with a department, got {decision.action.value}")
    transcript: list[TranscriptLine] = []
    keys: list[str] = []
    not_understood = 0
    for turn, reply in exchanges:
        if isinstance(turn, Transcript):
            transcript.append(TranscriptLine("caller", mask_digits(turn.text)))
        elif isinstance(turn, Dtmf):
            transcript.append(TranscriptLine("caller", f"pressed {turn.digit}"))
            keys.append(turn.digit)
        transcript.append(TranscriptLine("agent", mask_digits(reply.reply)))
        if turn is not None and reply.intent is None:
            not_understood += 1
    topics, answered = raised_topics(catalogue, [reply for _, reply in exchanges])
    kind = kind or transfer_reason(catalogue, decision)
    words = catalogue.handoff
    facts = []
    if keys:
        facts.append("pressed: " + " ".join(keys))
    if not_understood:
        facts.append(f"turns the automated agent did not understand: {not_understood}")
    if decision.intent:
        facts.append(f"intent at transfer: {decision.intent.replace('_', ' ')} ({decision.confidence:.2f})")
    return Handoff(
        call_sid=call_sid,
        caller=mask_caller_number(caller_number),
        intent=decision.intent,
        department=decision.department,
        reason=decision.transfer_reason or "transfer",
        kind=kind,
        topics=tuple(words.topic_names[intent] for intent in topics),
        answered=tuple(words.topic_names[intent] for intent in answered),
        reason_text=words.reasons[kind],
        summary=words.text(topics, answered, kind),
        facts=tuple(facts),
        transcript=tuple(transcript),
    )
