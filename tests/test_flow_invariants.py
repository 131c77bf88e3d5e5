"""Invariants over every reachable state of the engine, not one example conversation.

The states are enumerated breadth-first from the start of a call, applying a set of caller turns that exercises
every rule: one example of each intent, nonsense, a low-confidence turn, frustration and the keypad. The engine's
state is small and finite (counters are capped), so the search ends; from each state found, "agent", "person",
key 0 and "are you a robot" are checked.
"""

from __future__ import annotations

from collections import deque

import pytest

from voice.dialogue import DialogueEngine, DialogueState, Mode
from voice.events import Action, Dtmf, Transcript
from voice.prompts import Role

HUMAN_WORDS = {"en": ["agent", "person", "operator"], "nl": ["medewerker", "mens", "agent"]}
ROBOT_QUESTIONS = {
    "en": ["are you a robot", "am i talking to a real person", "is this a computer"],
    "nl": ["ben jij een robot", "praat ik met een echt mens", "is dit een computer"],
}
NONSENSE = {"en": "zorp flibber quax", "nl": "zorp flibber quax"}
FRUSTRATION = {"en": "this is useless", "nl": "dit is waardeloos"}
MAX_STATES = 50_000


def _exploring_turns(engine: DialogueEngine) -> list[Transcript | Dtmf]:
    language = engine.catalogue.language
    turns: list[Transcript | Dtmf] = [Transcript(intent.examples[0]) for intent in engine.catalogue.intents.values()]
    billing = engine.catalogue.intents["billing_question"].examples[1]
    turns += [
        Transcript(NONSENSE[language]),
        Transcript(NONSENSE[language], confidence=0.1),
        Transcript(billing, confidence=0.1),
        Transcript(FRUSTRATION[language]),
        Transcript(""),
    ]
    turns += [Dtmf(key) for key in "123456789*#"]
    return turns


def reachable_states(engine: DialogueEngine) -> set[DialogueState]:
    start, _ = engine.start()
    seen = {start}
    queue = deque([start])
    turns = _exploring_turns(engine)
    while queue:
        state = queue.popleft()
        for turn in turns:
            following, _ = engine.step(state, turn)
            if following not in seen:
                seen.add(following)
                queue.append(following)
                assert len(seen) < MAX_STATES, "state space unexpectedly large: is a counter uncapped?"
    return seen


@pytest.fixture(scope="module")
def states(engines) -> dict[str, set[DialogueState]]:
    return {language: reachable_states(engine) for language, engine in engines.items()}


@pytest.mark.parametrize("language", ["en", "nl"])
def test_exploration_reaches_every_mode(states, language):
    assert {state.mode for state in states[language]} == set(Mode)
    # Counters and offers really vary, so the invariants below are not checked on a handful of states.
    assert len(states[language]) > 100


@pytest.mark.parametrize("language", ["en", "nl"])
def test_saying_agent_or_person_transfers_from_every_reachable_state(engines, states, language):
    engine = engines[language]
    for state in states[language]:
        for word in HUMAN_WORDS[language]:
            for confidence in (1.0, 0.1):
                _, decision = engine.step(state, Transcript(word, confidence=confidence))
                assert decision.action is Action.TRANSFER, (state, word, decision)
                assert decision.department in engine.catalogue.departments


@pytest.mark.parametrize("language", ["en", "nl"])
def test_dtmf_zero_transfers_from_every_reachable_state(engines, states, language):
    engine = engines[language]
    for state in states[language]:
        _, decision = engine.step(state, Dtmf("0"))
        assert decision.action is Action.TRANSFER, state
        assert decision.rule == "dtmf_zero"


@pytest.mark.parametrize("language", ["en", "nl"])
def test_are_you_a_robot_gets_the_honest_answer_from_every_reachable_state(engines, states, language):
    engine = engines[language]
    honest = engine.catalogue.with_role(Role.AI_QUESTION).reply
    for state in states[language]:
        for question in ROBOT_QUESTIONS[language]:
            _, decision = engine.step(state, Transcript(question))
            assert decision.reply == honest, (state, question, decision)
            assert decision.action is Action.REPLY
