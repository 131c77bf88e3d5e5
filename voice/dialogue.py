"""The dialogue engine: (state, caller turn) -> (state, decision), with the escalation policy of prompts/.

Pure: no I/O, no clock, no randomness. The same state and turn always give the same decision, and every decision
says why it was taken. The order of the rules below is the policy's precedence, highest first:

1. emergency (keyword or intent): give the emergency number, then transfer;
2. a key press: 0 always transfers; other keys select an intent from the keypad table;
3. "are you a robot?": the honest answer, in every state;
4. a request for a person (keyword or intent): transfer at once, no confirmation;
5. sensitive situations (complaint, bereavement, fraud, hardship, legal): transfer with the reason;
6. an answer to an offer of a person: yes transfers, no carries on;
7. frustration (keyword or intent): offer a person;
8. repeated low recogniser confidence: offer the keypad or a person;
9. the intent's own reply; the same request too often in a row: offer a person;
10. not understood: explain, then offer a person, then transfer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from voice.events import Action, CallerTurn, Decision, Dtmf, Transcript
from voice.heard_examples import load_heard_examples
from voice.intents import IntentClassifier, IntentScore
from voice.prompts import HUMAN_KEY, Catalogue, Intent, Policy, Role, load_catalogue
from voice.sound_alike import SoundAlike
from voice.text import contains_phrase, normalize

# Keyword precedence: a caller in danger outranks one asking for a person, who outranks a sensitive topic.
_KEYWORD_PRIORITY = {Role.EMERGENCY: 0, Role.HUMAN_REQUEST: 1, Role.SENSITIVE: 2, Role.FRUSTRATION: 3}


class Mode(StrEnum):
    """Where the conversation stands."""

    LISTENING = "listening"
    """Waiting for the caller's request."""
    OFFERED_PERSON = "offered_person"
    """A person was offered; "yes" transfers."""
    TRANSFERRED = "transferred"
    """Handed to a person (the caller may still speak until the handover happens)."""
    ENDED = "ended"
    """Goodbye said."""


@dataclass(frozen=True, slots=True)
class DialogueState:
    """What the engine remembers between turns. Small and finite, so every state can be enumerated in tests."""

    mode: Mode = Mode.LISTENING
    """Where the conversation stands."""
    last_reply: str = ""
    """What the agent said last, for "please repeat"."""
    topic_department: str | None = None
    """Department of the caller's current topic: who takes the call if they ask for a person."""
    offer_reason: str | None = None
    """Why a person was offered, while the offer stands."""
    not_understood_in_row: int = 0
    """Turns in a row not understood (capped at the transfer threshold)."""
    low_confidence_in_row: int = 0
    """Low recogniser-confidence turns in a row (capped at the keypad threshold)."""
    last_request: str | None = None
    """The last understood request intent."""
    same_request_in_row: int = 0
    """How many times in a row `last_request` was asked (capped at the repeated-request threshold)."""
    reply_interrupted: bool = False
    """The caller spoke over the last reply before it was fully played (barge-in)."""
    caller_told: bool = False
    """The caller has said something or chosen a topic by key: a transfer can promise to pass it on."""


@dataclass(frozen=True, slots=True)
class _Reading:
    """What a caller turn was read as, before the policy decides."""

    intent: Intent | None
    confidence: float
    reasons: tuple[str, ...]


class DialogueEngine:
    """Applies the catalogue's intents and escalation policy to caller turns."""

    def __init__(
        self,
        catalogue: Catalogue,
        classifier: IntentClassifier | None = None,
        *,
        heard_examples: bool = False,
        sound_alike: bool = False,
    ) -> None:
        """Build the engine; trains the intent classifier from the catalogue unless one is given.

        Args:
            catalogue: the validated catalogue.
            classifier: a trained classifier to use instead of training one.
            heard_examples: train on the catalogue's heard examples too (`voice.heard_examples`), when it has them.
            sound_alike: read a turn not understood again with its unknown words replaced by catalogue words that
                sound alike (`voice.sound_alike`).

        Raises:
            PromptError: the heard-examples file is malformed.
        """
        self.catalogue = catalogue
        if classifier is None:
            heard = load_heard_examples(catalogue) if heard_examples else {}
            classifier = IntentClassifier(
                {name: intent.examples + heard.get(name, ()) for name, intent in catalogue.intents.items()},
                catalogue.language,
            )
        self.classifier = classifier
        self._sound_alike = SoundAlike.from_catalogue(catalogue) if sound_alike else None
        self._policy = catalogue.policy
        self._replies = catalogue.replies
        self._keyword_intents = sorted(
            (intent for intent in catalogue.intents.values() if intent.keywords),
            key=lambda intent: _KEYWORD_PRIORITY.get(intent.role, len(_KEYWORD_PRIORITY)),
        )

    @classmethod
    def from_prompts(
        cls, prompts_dir: Path, language: str, *, heard_examples: bool = False, sound_alike: bool = False
    ) -> DialogueEngine:
        """Load and validate the catalogue in `prompts_dir` for `language`, then build the engine."""
        return cls(load_catalogue(prompts_dir, language), heard_examples=heard_examples, sound_alike=sound_alike)

    def start(self) -> tuple[DialogueState, Decision]:
        """The state at the start of a call and the greeting."""
        greeting = self._replies.greeting
        decision = Decision(
            reply=greeting,
            action=Action.REPLY,
            rule="greeting",
            confidence=1.0,
            reasons=("rule greeting: start of the call; discloses the automated AI assistant first",),
        )
        return DialogueState(last_reply=greeting), decision

    def step(self, state: DialogueState, turn: CallerTurn) -> tuple[DialogueState, Decision]:
        """Decide the reply to one caller turn.

        Args:
            state: the conversation so far (from `start` or the previous `step`).
            turn: what the caller said (a Transcript) or pressed (a Dtmf).

        Returns:
            The next state and the decision.
        """
        match turn:
            case Dtmf(digit=digit):
                next_state, decision = self._key_press(state, digit)
            case Transcript():
                next_state, decision = self._speech(state, turn)
            case _:
                raise TypeError(f"expected a Transcript or Dtmf, got {type(turn).__name__}")
        if state.reply_interrupted:
            decision = replace(decision, reasons=(*decision.reasons, "the caller spoke over the previous reply"))
        return replace(next_state, last_reply=decision.reply, reply_interrupted=False), decision

    def interrupted(self, state: DialogueState) -> DialogueState:
        """Record that the caller cut the last reply off (barge-in); the next decision's reasons say so."""
        return replace(state, reply_interrupted=True)

    # --- the rules --------------------------------------------------------------------------------------------

    def _key_press(self, state: DialogueState, digit: str) -> tuple[DialogueState, Decision]:
        state = replace(state, not_understood_in_row=0, low_confidence_in_row=0)
        if digit != HUMAN_KEY and digit in self._policy.keypad:
            state = replace(state, caller_told=True)
        if digit == HUMAN_KEY:
            return self._transfer_to_person(state, "dtmf_zero", "the caller pressed 0 for a person", ("key 0",))
        intent_name = self._policy.keypad.get(digit)
        if intent_name is None:
            decision = Decision(
                reply=self._replies.keypad_unknown,
                action=Action.REPLY,
                rule="keypad_unknown",
                reasons=(f"rule keypad_unknown: key {digit!r} is not in the keypad table",),
            )
            return state, decision
        reading = _Reading(
            intent=self.catalogue.intents[intent_name],
            confidence=1.0,
            reasons=(f"key {digit!r} selects intent {intent_name} (keypad table)",),
        )
        return self._understood(state, reading, rule="keypad")

    def _speech(self, state: DialogueState, turn: Transcript) -> tuple[DialogueState, Decision]:
        reading = self._read(turn.text)
        low_confidence = turn.confidence < self._policy.low_asr_confidence
        low_in_row = min(state.low_confidence_in_row + 1, self._policy.offer_keypad_after) if low_confidence else 0
        state = replace(
            state, low_confidence_in_row=low_in_row, caller_told=state.caller_told or bool(turn.text.strip())
        )
        reasons = reading.reasons
        if low_confidence:
            reasons += (
                f"recogniser confidence {turn.confidence:.2f} below {self._policy.low_asr_confidence:.2f}"
                f" ({_turns(low_in_row)} in a row)",
            )
            reading = replace(reading, reasons=reasons)
        role = reading.intent.role if reading.intent else None

        if role is Role.EMERGENCY:
            intent = reading.intent
            return self._transfer(state, intent, intent.reply, intent.department, "emergency", reading)
        if role is Role.AI_QUESTION:
            return self._reply(state, reading, reading.intent.reply, "ai_question", keep_offer=True)
        if role is Role.HUMAN_REQUEST:
            return self._transfer_to_person(
                state, "human_request", reading.intent.transfer_reason, reading.reasons, reading.confidence
            )
        if role is Role.SENSITIVE:
            intent = reading.intent
            return self._transfer(state, intent, intent.reply, intent.department, "sensitive", reading)
        if state.mode is Mode.OFFERED_PERSON and role is Role.AFFIRM:
            why = f"the caller accepted the offer of a person ({state.offer_reason})"
            return self._transfer_to_person(state, "offer_accepted", why, reading.reasons, reading.confidence)
        if state.mode is Mode.OFFERED_PERSON and role is Role.DENY:
            state = replace(state, mode=Mode.LISTENING, offer_reason=None)
            return self._reply(state, reading, reading.intent.reply, "offer_declined")

        if role is Role.FRUSTRATION:
            return self._offer_person(
                state,
                reading,
                reading.reasons,
                "frustration",
                "the caller sounded frustrated",
                reply=reading.intent.reply,
            )
        if low_in_row >= self._policy.offer_keypad_after:
            decision = self._decision(reading, self._replies.offer_keypad, Action.REPLY, "low_asr_confidence")
            return replace(state, low_confidence_in_row=0), decision
        if reading.intent is not None and role is not Role.OUT_OF_SCOPE:
            return self._understood(state, reading, rule="intent")
        return self._not_understood(state, reading)

    def _read(self, text: str) -> _Reading:
        """Read caller text as an intent (see `_read_words`); a turn not understood is read once more with its
        sound-alike words replaced, and that reading is taken when it is understood as an intent that answers."""
        normalized = normalize(text, self.catalogue.language)
        reading = self._read_words(normalized)
        if self._sound_alike is None or _understood_reading(reading):
            return reading
        rewrite = self._sound_alike.rewrite(normalized)
        if rewrite is None:
            return reading
        again = self._read_words(rewrite.text)
        # A guess at what was said may answer, never hand over or hang up: a wrong transfer costs the caller a
        # queue (an emergency one, more), a wrong answer only a "no, I meant ...". "Yes" would accept an offer.
        if (
            not _understood_reading(again)
            or again.intent.action is not Action.REPLY
            or again.intent.role is Role.AFFIRM
        ):
            return reading
        return replace(again, reasons=(f"sound-alike: heard {rewrite.describe()}", *again.reasons))

    def _read_words(self, normalized: str) -> _Reading:
        """Read normalised caller text as an intent: a keyword rule first, then the classifier above its threshold."""
        score = self.classifier.classify(normalized)
        score_reasons = _score_reasons(score)
        keyword_match = next(
            (
                (intent, phrase)
                for intent in self._keyword_intents
                for phrase in intent.keywords
                if contains_phrase(normalized, phrase)
            ),
            None,
        )
        classified, threshold, weak = None, self._policy.min_intent_confidence, None
        if score is not None:
            candidate = self.catalogue.intents[score.intent]
            # A handover chosen by the model alone needs more certainty than an answer: a wrong transfer
            # costs the caller a queue, a wrong answer only a "no, I meant ...".
            if candidate.action is Action.TRANSFER:
                threshold = max(threshold, self._policy.min_transfer_confidence)
            if score.confidence >= threshold:
                if candidate.action is Action.TRANSFER:
                    weak = _weak_transfer_evidence(score, self._policy)
                classified = candidate if weak is None else None
        if keyword_match is not None:
            intent, phrase = keyword_match
            # Asking whether the agent is a person ("are you a real person") must get the honest answer,
            # not a transfer; only an emergency outranks that.
            if not (classified and classified.role is Role.AI_QUESTION and intent.role is not Role.EMERGENCY):
                reasons = (f"keyword {phrase!r} selects intent {intent.name}",) + score_reasons
                return _Reading(intent=intent, confidence=1.0, reasons=reasons)
        if classified is None:
            below = weak or (f"below the threshold {threshold:.2f}" if score is not None else "no words")
            return _Reading(
                intent=None,
                confidence=score.confidence if score else 0.0,
                reasons=score_reasons + (f"not understood: {below}",),
            )
        return _Reading(intent=classified, confidence=score.confidence, reasons=score_reasons)

    def _understood(self, state: DialogueState, reading: _Reading, rule: str) -> tuple[DialogueState, Decision]:
        intent = reading.intent
        state = replace(state, not_understood_in_row=0)
        if intent.role is Role.HUMAN_REQUEST:
            return self._transfer_to_person(state, rule, intent.transfer_reason, reading.reasons, reading.confidence)
        if intent.role is Role.REPEAT:
            return self._reply(
                state, reading, state.last_reply or self._replies.nothing_to_repeat, "repeat", keep_offer=True
            )
        if intent.role is Role.AFFIRM:
            if state.mode is Mode.OFFERED_PERSON:
                why = f"the caller accepted the offer of a person ({state.offer_reason})"
                return self._transfer_to_person(state, rule, why, reading.reasons, reading.confidence)
            return self._reply(state, reading, self._replies.nothing_offered, "nothing_offered")
        if intent.role is Role.DENY:
            state = replace(state, mode=Mode.LISTENING, offer_reason=None)
            return self._reply(state, reading, intent.reply, rule)
        if intent.role is Role.AI_QUESTION:
            return self._reply(state, reading, intent.reply, "ai_question", keep_offer=True)
        if intent.role is Role.OUT_OF_SCOPE:
            return self._not_understood(state, reading)
        if intent.role is Role.FRUSTRATION:
            return self._offer_person(
                state, reading, reading.reasons, rule, "the caller sounded frustrated", reply=intent.reply
            )
        if intent.action is Action.TRANSFER:
            return self._transfer(state, intent, intent.reply, intent.department, rule, reading)

        if intent.action is Action.END:
            state = replace(state, mode=Mode.ENDED, offer_reason=None, last_request=None, same_request_in_row=0)
            return state, self._decision(reading, intent.reply, Action.END, rule)
        same = state.same_request_in_row + 1 if state.last_request == intent.name else 1
        same = min(same, self._policy.repeated_request_after)
        state = replace(
            state,
            last_request=intent.name,
            same_request_in_row=same,
            topic_department=intent.department or state.topic_department,
        )
        if same >= self._policy.repeated_request_after:
            reasons = reading.reasons + (f"the same request {intent.name} {same} times in a row",)
            return self._offer_person(
                state,
                reading,
                reasons,
                "repeated_request",
                f"the caller asked about {intent.name} {same} times",
                reply=self._replies.offer_person_repeated,
            )
        return self._reply(state, reading, intent.reply, rule)

    def _not_understood(self, state: DialogueState, reading: _Reading) -> tuple[DialogueState, Decision]:
        count = min(state.not_understood_in_row + 1, self._policy.transfer_after)
        state = replace(state, not_understood_in_row=count)
        reasons = reading.reasons + (f"not understood: {_turns(count)} in a row",)
        reading = replace(reading, reasons=reasons)
        if count >= self._policy.transfer_after:
            why = f"the agent did not understand the caller {count} times in a row"
            department = state.topic_department or self._policy.default_department
            return self._transfer(
                state,
                None,
                self._replies.transfer_not_understood,
                department,
                "not_understood_transfer",
                reading,
                why=why,
            )
        if count >= self._policy.offer_person_after:
            # "I did not understand" would be untrue for a turn understood as something the agent cannot do.
            out_of_scope = reading.intent is not None and reading.intent.role is Role.OUT_OF_SCOPE
            return self._offer_person(
                state,
                reading,
                reasons,
                "not_understood_offer",
                f"not understood or out of scope: {_turns(count)} in a row",
                reply=self._replies.offer_person_out_of_scope
                if out_of_scope
                else self._replies.offer_person_not_understood,
            )
        reply = reading.intent.reply if reading.intent else self._replies.not_understood
        return self._reply(state, reading, reply, "not_understood", keep_offer=True)

    # --- building decisions -----------------------------------------------------------------------------------

    def _decision(
        self,
        reading: _Reading,
        reply: str,
        action: Action,
        rule: str,
        *,
        department: str | None = None,
        why: str | None = None,
    ) -> Decision:
        return Decision(
            reply=reply,
            action=action,
            rule=rule,
            intent=reading.intent.name if reading.intent else None,
            confidence=round(reading.confidence, 4),
            department=department,
            transfer_reason=why,
            reasons=(f"rule {rule}",) + reading.reasons,
        )

    def _reply(
        self, state: DialogueState, reading: _Reading, reply: str, rule: str, *, keep_offer: bool = False
    ) -> tuple[DialogueState, Decision]:
        if not keep_offer:
            state = replace(state, mode=Mode.LISTENING, offer_reason=None)
        elif state.mode in (Mode.TRANSFERRED, Mode.ENDED):
            state = replace(state, mode=Mode.LISTENING)
        return state, self._decision(reading, reply, Action.REPLY, rule)

    def _offer_person(
        self,
        state: DialogueState,
        reading: _Reading,
        reasons: tuple[str, ...],
        rule: str,
        offer_reason: str,
        reply: str,
    ) -> tuple[DialogueState, Decision]:
        state = replace(state, mode=Mode.OFFERED_PERSON, offer_reason=offer_reason, same_request_in_row=0)
        return state, self._decision(replace(reading, reasons=reasons), reply, Action.REPLY, rule)

    def _transfer(
        self,
        state: DialogueState,
        intent: Intent | None,
        reply: str,
        department: str,
        rule: str,
        reading: _Reading,
        why: str | None = None,
    ) -> tuple[DialogueState, Decision]:
        why = why or (intent.transfer_reason if intent else None)
        reasons = reading.reasons + (f"transfer to {department}: {why}",)
        state = replace(
            state, mode=Mode.TRANSFERRED, offer_reason=None, not_understood_in_row=0, topic_department=department
        )
        decision = self._decision(
            replace(reading, reasons=reasons), reply, Action.TRANSFER, rule, department=department, why=why
        )
        return state, decision

    def _transfer_to_person(
        self, state: DialogueState, rule: str, why: str, evidence: tuple[str, ...], confidence: float = 1.0
    ) -> tuple[DialogueState, Decision]:
        """Hand over to a person at once: to the team of the caller's current topic, else the default."""
        department = state.topic_department or self._policy.default_department
        source = "the current topic" if state.topic_department else "the default department"
        human = self.catalogue.with_role(Role.HUMAN_REQUEST)
        reasons = evidence + (f"department {department} from {source}",)
        reading = _Reading(intent=human, confidence=confidence, reasons=reasons)
        reply = self._replies.transfer_to(department, caller_told=state.caller_told)
        return self._transfer(state, human, reply, department, rule, reading, why=why)


def _understood_reading(reading: _Reading) -> bool:
    return reading.intent is not None and reading.intent.role is not Role.OUT_OF_SCOPE


def _turns(count: int) -> str:
    """ "1 turn", "2 turns": the reasons are read by people."""
    return f"{count} turn" if count == 1 else f"{count} turns"


def _weak_transfer_evidence(score: IntentScore, policy: Policy) -> str | None:
    """Why a transfer the model chose is too weakly supported to take, or None when it is not."""
    if score.confidence >= policy.weak_transfer_below or score.similarity >= policy.weak_transfer_min_similarity:
        return None
    return (
        f"weak evidence for a transfer: confidence {score.confidence:.2f} below {policy.weak_transfer_below:.2f} "
        f"and similarity {score.similarity:.2f} to the nearest example below "
        f"{policy.weak_transfer_min_similarity:.2f}"
    )


def _score_reasons(score: IntentScore | None) -> tuple[str, ...]:
    if score is None:
        return ()
    reasons = [
        f"classifier: {score.intent} {score.confidence:.2f} (next {score.runner_up} {score.runner_up_confidence:.2f})",
        f"nearest example {score.nearest_example!r} (similarity {score.similarity:.2f})",
    ]
    if score.key_words:
        reasons.append("key words: " + ", ".join(score.key_words))
    return tuple(reasons)
