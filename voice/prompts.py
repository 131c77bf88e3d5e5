"""Load and validate the catalogue in ``prompts/``: intents, replies, departments and the escalation policy.

The catalogue is data that call-centre leads edit; a mistake in it must stop start-up with a message that names
the file and the entry, never surface mid-call. Layout::

    prompts/departments.yaml    departments a call can be handed to
    prompts/intents.yaml        per intent: action, department, role, transfer reason (language-independent)
    prompts/policy.yaml         thresholds and keypad of the escalation policy
    prompts/<lang>/intents.yaml per intent: reply, examples, keywords
    prompts/<lang>/replies.yaml greeting, policy replies, what the caller hears when a transfer is not
                                answered or waits in a queue, department names, and the handoff's sentences for
                                the person who takes a transferred call
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from voice.events import Action
from voice.text import normalize

LANGUAGES = ("en", "nl")
MIN_EXAMPLES_PER_INTENT = 15
DTMF_KEYS = frozenset("0123456789*#")
HUMAN_KEY = "0"


class PromptError(ValueError):
    """The catalogue in prompts/ is missing, malformed or inconsistent."""


class Role(StrEnum):
    """A special meaning an intent has in the escalation policy."""

    HUMAN_REQUEST = "human_request"
    AI_QUESTION = "ai_question"
    SENSITIVE = "sensitive"
    EMERGENCY = "emergency"
    REPEAT = "repeat"
    AFFIRM = "affirm"
    DENY = "deny"
    FRUSTRATION = "frustration"
    OUT_OF_SCOPE = "out_of_scope"


# Roles the engine relies on: each must belong to exactly one intent.
SINGLE_ROLES = (
    Role.HUMAN_REQUEST,
    Role.AI_QUESTION,
    Role.EMERGENCY,
    Role.REPEAT,
    Role.AFFIRM,
    Role.DENY,
    Role.FRUSTRATION,
    Role.OUT_OF_SCOPE,
)


@dataclass(frozen=True, slots=True)
class Intent:
    """One thing a caller may want, with what the agent says and does about it."""

    name: str
    """Identifier, the same in every language."""
    action: Action
    """What the call does after the reply."""
    department: str | None
    """For transfers, who takes the call; otherwise who takes it if the caller then asks for a person."""
    role: Role | None
    """Special meaning in the escalation policy, if any."""
    transfer_reason: str | None
    """Why the call is transferred, in plain words (transfers only)."""
    reply: str
    """What the agent says."""
    examples: tuple[str, ...]
    """Caller phrasings the classifier learns from."""
    keywords: tuple[str, ...]
    """Normalised phrases that select this intent whenever they occur."""


@dataclass(frozen=True, slots=True)
class Policy:
    """Numbers of the escalation policy."""

    min_intent_confidence: float
    """Below this intent confidence a turn is not understood."""
    min_transfer_confidence: float
    """Intents that transfer need at least this confidence when no keyword selected them."""
    weak_transfer_below: float
    """Below this confidence a transfer chosen by the model alone also needs `weak_transfer_min_similarity`."""
    weak_transfer_min_similarity: float
    """Similarity to the intent's nearest example needed by a transfer chosen on a confidence below
    `weak_transfer_below`."""
    offer_person_after: int
    """Not-understood turns in a row before a person is offered."""
    transfer_after: int
    """Not-understood turns in a row before the call is transferred."""
    low_asr_confidence: float
    """Transcripts below this recogniser confidence are low-confidence turns."""
    offer_keypad_after: int
    """Low-confidence turns in a row before the keypad or a person is offered."""
    repeated_request_after: int
    """The same request this many times in a row: offer a person."""
    default_department: str
    """Who takes a transfer when nothing points to a more specific department."""
    keypad: Mapping[str, str]
    """Key -> intent name."""


# The plain-text replies in prompts/<lang>/replies.yaml (the transfer template is filled in per department).
_REPLY_TEXT_FIELDS = (
    "greeting",
    "not_understood",
    "offer_person_not_understood",
    "offer_person_out_of_scope",
    "transfer_not_understood",
    "offer_person_repeated",
    "offer_keypad",
    "keypad_unknown",
    "transfer_to_department",
    "transfer_to_department_silent",
    "nothing_offered",
    "nothing_to_repeat",
    "technical_problem",
    "call_limit",
    "transfer_unanswered",
    "callback_confirmed",
    "leave_message",
    "message_thanks",
    "queue_wait",
    "over_capacity",
)


@dataclass(frozen=True, slots=True)
class Replies:
    """What the agent says outside the intents' own replies, in one language."""

    greeting: str
    not_understood: str
    offer_person_not_understood: str
    offer_person_out_of_scope: str
    """A person is offered after turns the agent cannot help with (out of scope), not ones it failed to follow."""
    transfer_not_understood: str
    offer_person_repeated: str
    offer_keypad: str
    keypad_unknown: str
    transfer_to_department: str
    """Template with a ``{department}`` placeholder."""
    transfer_to_department_silent: str
    """The same for a caller who has told nothing yet (key 0 at once): nothing to pass on, so it promises nothing."""
    nothing_offered: str
    nothing_to_repeat: str
    technical_problem: str
    """Speech recognition or synthesis failed: the caller is told and handed to a person (from memory, preloaded)."""
    call_limit: str
    """The call reached its longest length or its most exchanges: handed to a person without claiming a fault."""
    transfer_unanswered: str
    """Nobody took the transferred call: offers a call-back (key 1) or a message (key 2)."""
    callback_confirmed: str
    """A call-back was recorded (key 1, or no key); the call then ends."""
    leave_message: str
    """Before the caller records a message (key 2)."""
    message_thanks: str
    """After the message was recorded; the call then ends."""
    queue_wait: str
    """Said while the caller waits in a department's queue, repeated between pauses."""
    over_capacity: str
    """The agent already has as many calls as it may take: said before the new call is dialled to a person."""
    department_names: Mapping[str, str]
    """Department id -> how the agent names it to the caller."""

    def transfer_to(self, department: str, caller_told: bool = True) -> str:
        """The transfer sentence for `department`; `caller_told` False when the caller has told nothing yet."""
        template = self.transfer_to_department if caller_told else self.transfer_to_department_silent
        return template.format(department=self.department_names[department])

    def texts(self) -> dict[str, str]:
        """Every fixed reply by key, with the transfer templates filled in for each department."""
        fixed = {name: getattr(self, name) for name in _REPLY_TEXT_FIELDS if name not in _TRANSFER_TEMPLATES}
        for department in self.department_names:
            fixed[f"transfer_to:{department}"] = self.transfer_to(department)
            fixed[f"transfer_to_silent:{department}"] = self.transfer_to(department, caller_told=False)
        return fixed


_TRANSFER_TEMPLATES = ("transfer_to_department", "transfer_to_department_silent")


class HandoffReason(StrEnum):
    """Why a call was handed to a person, as the handoff's second sentence says it."""

    PERSON_REQUESTED = "person_requested"
    """The caller asked for a person in words."""
    PERSON_KEY = "person_key"
    """The caller pressed 0."""
    OFFER_ACCEPTED = "offer_accepted"
    """The agent offered a person (not understood, frustration, a repeated request) and the caller said yes."""
    SENSITIVE = "sensitive"
    """A sensitive situation: bereavement, fraud, hardship, a complaint or legal action."""
    EMERGENCY = "emergency"
    """The caller may be in danger; they were given the emergency number first."""
    NEEDS_PERSON = "needs_person"
    """A request that only a person handles (an intent whose action is a transfer, such as cancelling)."""
    NOT_UNDERSTOOD = "not_understood"
    """The agent did not understand the caller too many times in a row."""
    TECHNICAL_FAILURE = "technical_failure"
    """Speech recognition or synthesis failed."""
    ASSISTANT_UNAVAILABLE = "assistant_unavailable"
    """The agent could not take or keep the call: all its calls taken, or the server stopping."""


@dataclass(frozen=True, slots=True)
class HandoffWords:
    """The handoff's two sentences in one language: what the caller raised, then why a person takes over.

    Spoken to the person who answers (the whisper) and shown at the top of the desk card, so both say the same.
    """

    topics: str
    """``{topics}``: the caller raised topics the agent did not answer."""
    topics_answered: str
    """``{topics}``: the agent answered every topic the caller raised."""
    topics_partly_answered: str
    """``{topics}`` and ``{answered}``: the agent answered some of them."""
    no_topic: str
    """The caller raised no topic the agent recognised."""
    missing: str
    """Whispered when a transfer has no handoff (the call's record is not found)."""
    and_word: str
    """Joins the last two topics of a list ("a bill and a payment")."""
    reasons: Mapping[HandoffReason, str]
    """The second sentence, per reason."""
    topic_names: Mapping[str, str]
    """Intent name -> how the handoff names the topic ("a bill")."""

    def listed(self, intents: Sequence[str]) -> str:
        """Topic names as a list in words: "a bill", "a bill and a payment", "a bill, a payment and an order"."""
        names = [self.topic_names[intent] for intent in intents]
        if len(names) <= 1:
            return "".join(names)
        return f"{', '.join(names[:-1])} {self.and_word} {names[-1]}"

    def raised(self, topics: Sequence[str], answered: Sequence[str]) -> str:
        """The first sentence: the topics (intent names) the caller raised and which of them the agent answered."""
        if not topics:
            return self.no_topic
        if not answered:
            return self.topics.format(topics=self.listed(topics))
        if list(answered) == list(topics):
            return self.topics_answered.format(topics=self.listed(topics))
        return self.topics_partly_answered.format(topics=self.listed(topics), answered=self.listed(answered))

    def text(self, topics: Sequence[str], answered: Sequence[str], reason: HandoffReason) -> str:
        """The whole handoff: what was raised, then why the call was handed over."""
        return f"{self.raised(topics, answered)} {self.reasons[reason]}"

    def examples(self) -> dict[str, str]:
        """A handoff for every reason and every way of listing topics, by key: what the tone check reads."""
        topics = list(self.topic_names)
        shapes = {
            "no_topic": ([], []),
            "topics": (topics[:1], []),
            "topics_answered": (topics[:2], topics[:2]),
            "topics_partly_answered": (topics, topics[:1]),
        }
        texts = {
            f"handoff.{reason.value}.{shape}": self.text(raised, answered, reason)
            for reason in HandoffReason
            for shape, (raised, answered) in shapes.items()
        }
        return {**texts, "handoff.missing": self.missing}


@dataclass(frozen=True, slots=True)
class Catalogue:
    """Everything the dialogue engine needs for one language."""

    language: str
    intents: Mapping[str, Intent]
    """By name, in file order."""
    departments: Mapping[str, str]
    """Department id -> description."""
    policy: Policy
    replies: Replies
    handoff: HandoffWords
    """The handoff's sentences for the person who takes a transferred call."""
    source_dir: Path

    def with_role(self, role: Role) -> Intent:
        """The intent that plays `role` (one of SINGLE_ROLES)."""
        return next(intent for intent in self.intents.values() if intent.role is role)


# --- file schemas: pydantic models that reject unknown keys, so typos are caught ----------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _DepartmentFile(_Strict):
    class _Department(_Strict):
        description: str = Field(min_length=1)

    departments: dict[str, _Department] = Field(min_length=1)


class _RouteFile(_Strict):
    class _Route(_Strict):
        action: Action
        department: str | None = None
        role: Role | None = None
        reason: str | None = None

    intents: dict[str, _Route] = Field(min_length=1)


class _PolicyFile(_Strict):
    class _Understanding(_Strict):
        min_intent_confidence: float = Field(ge=0.0, le=1.0)
        min_transfer_confidence: float = Field(ge=0.0, le=1.0)
        weak_transfer_below: float = Field(ge=0.0, le=1.0)
        weak_transfer_min_similarity: float = Field(ge=0.0, le=1.0)
        offer_person_after: int = Field(ge=1)
        transfer_after: int = Field(ge=1)

    class _Asr(_Strict):
        low_confidence: float = Field(ge=0.0, le=1.0)
        offer_keypad_after: int = Field(ge=1)

    class _Frustration(_Strict):
        repeated_request_after: int = Field(ge=2)

    understanding: _Understanding
    asr: _Asr
    frustration: _Frustration
    default_department: str
    keypad: dict[str, str]


class _LanguageIntent(_Strict):
    reply: str = Field(min_length=1)
    examples: list[str] = Field(min_length=MIN_EXAMPLES_PER_INTENT)
    keywords: list[str] = Field(default_factory=list)

    @field_validator("examples", "keywords")
    @classmethod
    def _no_blank_entries(cls, values: list[str]) -> list[str]:
        for index, value in enumerate(values):
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"entry {index} must be a non-empty string")
        return values


class _HandoffSection(_Strict):
    topics: str = Field(min_length=1)
    topics_answered: str = Field(min_length=1)
    topics_partly_answered: str = Field(min_length=1)
    no_topic: str = Field(min_length=1)
    missing: str = Field(min_length=1)
    and_word: str = Field(min_length=1, alias="and")
    reasons: dict[HandoffReason, str]
    topic_names: dict[str, str]


class _RepliesFile(_Strict):
    greeting: str = Field(min_length=1)
    not_understood: str = Field(min_length=1)
    offer_person_not_understood: str = Field(min_length=1)
    offer_person_out_of_scope: str = Field(min_length=1)
    transfer_not_understood: str = Field(min_length=1)
    offer_person_repeated: str = Field(min_length=1)
    offer_keypad: str = Field(min_length=1)
    keypad_unknown: str = Field(min_length=1)
    transfer_to_department: str = Field(min_length=1)
    transfer_to_department_silent: str = Field(min_length=1)
    nothing_offered: str = Field(min_length=1)
    nothing_to_repeat: str = Field(min_length=1)
    technical_problem: str = Field(min_length=1)
    call_limit: str = Field(min_length=1)
    transfer_unanswered: str = Field(min_length=1)
    callback_confirmed: str = Field(min_length=1)
    leave_message: str = Field(min_length=1)
    message_thanks: str = Field(min_length=1)
    queue_wait: str = Field(min_length=1)
    over_capacity: str = Field(min_length=1)
    departments: dict[str, str]
    handoff: _HandoffSection


def _read_yaml(path: Path) -> Any:
    if not path.is_file():
        raise PromptError(f"{path}: file not found")
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except yaml.YAMLError as error:
        raise PromptError(f"{path}: not valid YAML: {error}") from error


_Model = TypeVar("_Model", bound=BaseModel)


def _parse(model: type[_Model], data: Any, where: Path | str, prefix: str = "") -> _Model:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        location = ".".join([prefix, *(str(part) for part in first["loc"])]).strip(".") or "(top level)"
        more = f" (and {error.error_count() - 1} more problems)" if error.error_count() > 1 else ""
        raise PromptError(f"{where}: {location}: {first['msg']}{more}") from error


def _parse_language_intents(data: Any, path: Path) -> dict[str, _LanguageIntent]:
    if not isinstance(data, dict):
        raise PromptError(f"{path}: expected a mapping of intent name to reply and examples")
    return {name: _parse(_LanguageIntent, entry, path, prefix=str(name)) for name, entry in data.items()}


def _check_same_names(expected: Mapping[str, Any], actual: Mapping[str, Any], where: Path, what: str) -> None:
    missing = [name for name in expected if name not in actual]
    unknown = [name for name in actual if name not in expected]
    if missing:
        raise PromptError(f"{where}: missing {what}: {', '.join(missing)}")
    if unknown:
        raise PromptError(f"{where}: unknown {what}: {', '.join(unknown)}")


def _check_placeholders(template: str, allowed: set[str], where: str) -> None:
    fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    if fields != allowed:
        raise PromptError(f"{where}: must use exactly the placeholders {sorted(allowed)}, found {sorted(fields)}")


def load_catalogue(prompts_dir: Path, language: str) -> Catalogue:
    """Load and validate the catalogue for one language.

    Args:
        prompts_dir: the ``prompts/`` folder.
        language: one of LANGUAGES.

    Returns:
        The validated catalogue.

    Raises:
        PromptError: naming the file and the entry at fault.
    """
    if language not in LANGUAGES:
        raise PromptError(f"unknown language {language!r}, expected one of {', '.join(LANGUAGES)}")
    prompts_dir = Path(prompts_dir)
    if not prompts_dir.is_dir():
        raise PromptError(f"{prompts_dir}: prompts folder not found")

    departments_path = prompts_dir / "departments.yaml"
    routes_path = prompts_dir / "intents.yaml"
    policy_path = prompts_dir / "policy.yaml"
    words_path = prompts_dir / language / "intents.yaml"
    replies_path = prompts_dir / language / "replies.yaml"

    departments = _parse(_DepartmentFile, _read_yaml(departments_path), departments_path).departments
    routes = _parse(_RouteFile, _read_yaml(routes_path), routes_path).intents
    policy_file = _parse(_PolicyFile, _read_yaml(policy_path), policy_path)
    words = _parse_language_intents(_read_yaml(words_path), words_path)
    replies_file = _parse(_RepliesFile, _read_yaml(replies_path), replies_path)

    _check_routes(routes, departments, routes_path)
    _check_same_names(routes, words, words_path, "intents (they must match prompts/intents.yaml)")
    _check_same_names(departments, replies_file.departments, replies_path, "departments")
    for name in _TRANSFER_TEMPLATES:
        _check_placeholders(getattr(replies_file, name), {"department"}, f"{replies_path}: {name}")
    policy = _build_policy(policy_file, routes, departments, policy_path)
    intents = _build_intents(routes, words, language, words_path)

    replies = Replies(
        **{name: " ".join(getattr(replies_file, name).split()) for name in _REPLY_TEXT_FIELDS},
        department_names=MappingProxyType(dict(replies_file.departments)),
    )
    return Catalogue(
        language=language,
        intents=MappingProxyType(intents),
        departments=MappingProxyType({name: entry.description for name, entry in departments.items()}),
        policy=policy,
        replies=replies,
        handoff=_build_handoff_words(replies_file.handoff, routes, replies_path),
        source_dir=prompts_dir,
    )


def _is_topic(route: _RouteFile._Route) -> bool:
    """Whether an intent is something a caller calls about (a topic a handoff names), not a move in the dialogue."""
    return route.role in (None, Role.SENSITIVE, Role.EMERGENCY) and route.action is not Action.END


def _build_handoff_words(section: _HandoffSection, routes: Mapping[str, _RouteFile._Route], path: Path) -> HandoffWords:
    where = f"{path}: handoff"
    missing = [reason.value for reason in HandoffReason if reason not in section.reasons]
    if missing:
        raise PromptError(f"{where}.reasons: missing {', '.join(missing)}")
    topics = [name for name, route in routes.items() if _is_topic(route)]
    _check_same_names(
        dict.fromkeys(topics), section.topic_names, path, "handoff.topic_names (one per topic intent of intents.yaml)"
    )
    for name in ("topics", "topics_answered"):
        _check_placeholders(getattr(section, name), {"topics"}, f"{where}.{name}")
    _check_placeholders(section.topics_partly_answered, {"topics", "answered"}, f"{where}.topics_partly_answered")
    for name in ("no_topic", "missing"):
        _check_placeholders(getattr(section, name), set(), f"{where}.{name}")
    for reason, text in section.reasons.items():
        _check_placeholders(text, set(), f"{where}.reasons.{reason.value}")
    clean = " ".join
    return HandoffWords(
        topics=clean(section.topics.split()),
        topics_answered=clean(section.topics_answered.split()),
        topics_partly_answered=clean(section.topics_partly_answered.split()),
        no_topic=clean(section.no_topic.split()),
        missing=clean(section.missing.split()),
        and_word=section.and_word.strip(),
        reasons=MappingProxyType({reason: clean(text.split()) for reason, text in section.reasons.items()}),
        topic_names=MappingProxyType({name: clean(section.topic_names[name].split()) for name in topics}),
    )


def _check_routes(routes: Mapping[str, _RouteFile._Route], departments: Mapping[str, Any], path: Path) -> None:
    for name, route in routes.items():
        if route.department is not None and route.department not in departments:
            raise PromptError(
                f"{path}: intents.{name}.department: unknown department {route.department!r}, "
                f"expected one of {', '.join(departments)}"
            )
        if route.action is Action.TRANSFER and (route.department is None or not route.reason):
            raise PromptError(f"{path}: intents.{name}: a transfer needs a department and a reason")
    for role in SINGLE_ROLES:
        holders = [name for name, route in routes.items() if route.role is role]
        if len(holders) != 1:
            raise PromptError(f"{path}: exactly one intent must have role {role.value}, found {holders or 'none'}")
    for name, route in routes.items():
        if route.role in (Role.HUMAN_REQUEST, Role.SENSITIVE, Role.EMERGENCY) and route.action is not Action.TRANSFER:
            raise PromptError(f"{path}: intents.{name}: role {route.role.value} needs action transfer")


def _build_policy(policy: _PolicyFile, routes: Mapping[str, Any], departments: Mapping[str, Any], path: Path) -> Policy:
    if policy.default_department not in departments:
        raise PromptError(f"{path}: default_department: unknown department {policy.default_department!r}")
    if policy.understanding.transfer_after <= policy.understanding.offer_person_after:
        raise PromptError(f"{path}: understanding.transfer_after must be greater than offer_person_after")
    for key, intent in policy.keypad.items():
        if key not in DTMF_KEYS:
            raise PromptError(f"{path}: keypad.{key}: not a telephone key, expected one of 0-9, * or #")
        if intent not in routes:
            raise PromptError(f"{path}: keypad.{key}: unknown intent {intent!r}")
    if HUMAN_KEY in policy.keypad and routes[policy.keypad[HUMAN_KEY]].role is not Role.HUMAN_REQUEST:
        raise PromptError(f"{path}: keypad.0: must reach a person (an intent with role human_request)")
    return Policy(
        min_intent_confidence=policy.understanding.min_intent_confidence,
        min_transfer_confidence=policy.understanding.min_transfer_confidence,
        weak_transfer_below=policy.understanding.weak_transfer_below,
        weak_transfer_min_similarity=policy.understanding.weak_transfer_min_similarity,
        offer_person_after=policy.understanding.offer_person_after,
        transfer_after=policy.understanding.transfer_after,
        low_asr_confidence=policy.asr.low_confidence,
        offer_keypad_after=policy.asr.offer_keypad_after,
        repeated_request_after=policy.frustration.repeated_request_after,
        default_department=policy.default_department,
        keypad=MappingProxyType(dict(policy.keypad)),
    )


def _normalized_phrases(phrases: list[str], language: str, where: str) -> tuple[str, ...]:
    normalized = []
    for phrase in phrases:
        words = normalize(phrase, language)
        if not words:
            raise PromptError(f"{where}: {phrase!r} has no words")
        normalized.append(words)
    return tuple(dict.fromkeys(normalized))


def _build_intents(
    routes: Mapping[str, _RouteFile._Route], words: Mapping[str, _LanguageIntent], language: str, path: Path
) -> dict[str, Intent]:
    example_owner: dict[str, str] = {}
    keyword_owner: dict[str, str] = {}
    intents = {}
    for name, route in routes.items():
        entry = words[name]
        for example in entry.examples:
            key = normalize(example, language)
            if not key:
                raise PromptError(f"{path}: {name}.examples: {example!r} has no words")
            owner = example_owner.setdefault(key, name)
            if owner != name:
                raise PromptError(f"{path}: {name}.examples: {example!r} is also an example of {owner}")
        keywords = _normalized_phrases(entry.keywords, language, f"{path}: {name}.keywords")
        for keyword in keywords:
            owner = keyword_owner.setdefault(keyword, name)
            if owner != name:
                raise PromptError(f"{path}: {name}.keywords: {keyword!r} is also a keyword of {owner}")
        intents[name] = Intent(
            name=name,
            action=route.action,
            department=route.department,
            role=route.role,
            transfer_reason=route.reason,
            reply=" ".join(entry.reply.split()),
            examples=tuple(entry.examples),
            keywords=keywords,
        )
    return intents
