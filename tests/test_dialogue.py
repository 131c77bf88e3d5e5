"""The engine's behaviours, one test per rule of the escalation policy."""

from __future__ import annotations

import pytest

from voice.dialogue import DialogueEngine, DialogueState, Mode
from voice.events import Action, Decision, Dtmf, Transcript
from voice.prompts import Role
from voice.tone import sentences


def talk(engine: DialogueEngine, *turns: str | Transcript | Dtmf) -> tuple[DialogueState, list[Decision]]:
    """Run a conversation; plain strings are speech, ``DTMF:x`` a key press."""
    state, greeting = engine.start()
    decisions = [greeting]
    for turn in turns:
        if isinstance(turn, str):
            turn = Dtmf(turn[5:]) if turn.startswith("DTMF:") else Transcript(turn)
        state, decision = engine.step(state, turn)
        decisions.append(decision)
    return state, decisions


# --- transparency ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("language", "words"), [("en", "automated AI assistant"), ("nl", "geautomatiseerde AI")])
def test_greeting_discloses_the_ai_in_its_first_sentence(engines, language, words):
    _, greeting = engines[language].start()
    assert words in sentences(greeting.reply)[0]
    assert greeting.action is Action.REPLY
    assert "0" in greeting.reply


def test_greeting_is_short_and_says_how_to_reach_a_person(engine_en):
    _, greeting = engine_en.start()
    assert "Say agent or press 0" in greeting.reply
    # Callers wait through it: what the agent can do is said when needed (benchmarks/greeting_to_person.py times it).
    assert len(greeting.reply.split()) <= 20


def test_what_the_agent_can_do_is_said_when_the_caller_is_not_understood(engine_en):
    _, decisions = talk(engine_en, "zorp flibber quax")
    for topic in ("bills", "payments", "orders", "opening hours"):
        assert topic in decisions[-1].reply


@pytest.mark.parametrize("question", ["are you a robot", "is this a real person", "am i talking to a computer"])
def test_asked_if_it_is_a_person_it_answers_honestly(engine_en, question):
    _, decisions = talk(engine_en, question)
    assert decisions[-1].rule == "ai_question"
    assert "not a person" in decisions[-1].reply
    assert decisions[-1].action is Action.REPLY


# --- a person one step away -------------------------------------------------------------------------------------


@pytest.mark.parametrize("words", ["agent", "i want to talk to a person", "operator please", "representative"])
def test_asking_for_a_person_transfers_at_once(engine_en, words):
    state, decisions = talk(engine_en, words)
    decision = decisions[-1]
    assert decision.action is Action.TRANSFER
    assert decision.rule == "human_request"
    assert decision.intent == "speak_to_person"
    assert decision.department == "customer_service"
    assert state.mode is Mode.TRANSFERRED


def test_dtmf_zero_transfers_at_once(engine_en):
    _, decisions = talk(engine_en, "DTMF:0")
    assert decisions[-1].action is Action.TRANSFER
    assert decisions[-1].rule == "dtmf_zero"
    assert decisions[-1].transfer_reason == "the caller pressed 0 for a person"


def test_person_request_goes_to_the_team_of_the_current_topic(engine_en):
    _, decisions = talk(engine_en, "my internet is not working", "agent")
    assert decisions[1].intent == "technical_problem"
    assert decisions[-1].department == "technical_support"
    assert "technical support" in decisions[-1].reply
    assert "department technical_support from the current topic" in decisions[-1].reasons


# --- escalation policy ------------------------------------------------------------------------------------------

SENSITIVE = [
    ("i want to make a formal complaint", "complaint", "complaints"),
    ("my husband passed away last week and the contract is in his name", "bereavement", "care"),
    ("my phone was stolen this morning", "fraud_or_theft", "fraud"),
    ("someone opened an account in my name, i think it's identity theft", "fraud_or_theft", "fraud"),
    ("i lost my job and i cannot afford to pay this month", "financial_hardship", "care"),
    ("if this isn't fixed my lawyer will be in touch", "legal_threat", "complaints"),
]


@pytest.mark.parametrize(("text", "intent", "department"), SENSITIVE)
def test_sensitive_situations_transfer_with_the_reason_recorded(engine_en, text, intent, department):
    _, decisions = talk(engine_en, text)
    decision = decisions[-1]
    assert decision.action is Action.TRANSFER
    assert decision.rule == "sensitive"
    assert decision.intent == intent
    assert decision.department == department
    assert decision.transfer_reason == engine_en.catalogue.intents[intent].transfer_reason
    assert any(reason.startswith("transfer to ") for reason in decision.reasons)


@pytest.mark.parametrize(
    ("language", "text", "number"),
    [
        ("en", "my father is having a heart attack", "911"),
        ("en", "i am going to hurt myself", "911"),
        ("nl", "mijn vader heeft een hartaanval", "112"),
    ],
)
def test_emergency_gives_the_emergency_number_first_then_transfers(engines, language, text, number):
    _, decisions = talk(engines[language], text)
    decision = decisions[-1]
    assert decision.rule == "emergency"
    assert decision.action is Action.TRANSFER
    assert number in sentences(decision.reply)[0]


@pytest.mark.parametrize(
    ("language", "text"),
    [
        # Heard from a recording of a speech: the classifier's best guess is an emergency at 0.31, on words like no
        # example (nearest "i fell in the bathroom ...", similarity 0.25).
        ("en", "And so my fellow American."),
        ("nl", "ik wil een taxi naar schiphol"),
    ],
)
def test_a_weakly_supported_transfer_is_not_taken(engines, language, text):
    engine = engines[language]
    score = engine.classifier.classify(text)
    intent = engine.catalogue.intents[score.intent]
    # The guard is what stops it: the model alone would hand this call over.
    assert intent.action is Action.TRANSFER
    assert score.confidence >= engine.catalogue.policy.min_transfer_confidence
    _, decisions = talk(engine, text)
    decision = decisions[-1]
    assert decision.action is Action.REPLY
    assert decision.rule == "not_understood"
    assert any("weak evidence for a transfer" in reason for reason in decision.reasons)


def test_a_transfer_the_model_is_sure_of_needs_no_resemblance(engine_en):
    # Worded like no example (similarity below the bar), but the model is confident: the caller reaches a person.
    text = "i've got serious money problems and i can't pay what i owe you"
    score = engine_en.classifier.classify(text)
    assert score.similarity < engine_en.catalogue.policy.weak_transfer_min_similarity
    _, decisions = talk(engine_en, text)
    assert decisions[-1].action is Action.TRANSFER
    assert decisions[-1].intent == "financial_hardship"


def test_not_understood_twice_offers_a_person_and_a_third_time_transfers(engine_en):
    state, decisions = talk(engine_en, "zorp flibber quax", "blorp quinn vex", "snargle wump")
    assert [d.rule for d in decisions[1:]] == ["not_understood", "not_understood_offer", "not_understood_transfer"]
    assert [d.action for d in decisions[1:]] == [Action.REPLY, Action.REPLY, Action.TRANSFER]
    assert decisions[-1].transfer_reason == "the agent did not understand the caller 3 times in a row"
    assert state.mode is Mode.TRANSFERRED


def test_understood_turn_resets_the_not_understood_count(engine_en):
    _, decisions = talk(engine_en, "zorp flibber quax", "what are your opening hours", "blorp quinn vex")
    assert decisions[-1].rule == "not_understood"


def test_accepting_the_offer_transfers_and_declining_carries_on(engine_en):
    _, accepted = talk(engine_en, "zorp flibber quax", "blorp quinn vex", "yes please")
    assert accepted[-1].action is Action.TRANSFER
    assert accepted[-1].rule == "offer_accepted"
    assert "not understood or out of scope: 2 turns in a row" in accepted[-1].transfer_reason

    state, declined = talk(engine_en, "zorp flibber quax", "blorp quinn vex", "no thanks")
    assert declined[-1].action is Action.REPLY
    assert declined[-1].rule == "offer_declined"
    assert state.mode is Mode.LISTENING


def test_yes_without_an_offer_transfers_nobody(engine_en):
    _, decisions = talk(engine_en, "yes")
    assert decisions[-1].action is Action.REPLY
    assert decisions[-1].rule == "nothing_offered"


@pytest.mark.parametrize("words", ["this is useless", "you are not helping at all", "oh for god's sake"])
def test_frustration_offers_a_person_right_away(engine_en, words):
    state, decisions = talk(engine_en, words)
    assert decisions[-1].rule == "frustration"
    assert decisions[-1].action is Action.REPLY
    assert state.mode is Mode.OFFERED_PERSON
    _, accepted = engine_en.step(state, Transcript("yes"))
    assert accepted.action is Action.TRANSFER


def test_swearing_offers_a_person(engine_nl):
    _, decisions = talk(engine_nl, "verdomme het werkt weer niet")
    assert decisions[-1].rule == "frustration"


def test_the_same_request_three_times_offers_a_person(engine_en):
    ask = "how do i pay my bill"
    state, decisions = talk(engine_en, ask, ask, ask)
    assert [d.rule for d in decisions[1:]] == ["intent", "intent", "repeated_request"]
    assert decisions[-1].intent == "payment"
    assert state.mode is Mode.OFFERED_PERSON


def test_goodbye_ends_the_call_however_often_it_is_said(engine_en):
    state, decisions = talk(engine_en, "bye", "bye", "bye")
    assert all(d.action is Action.END for d in decisions[1:])
    assert state.mode is Mode.ENDED


def test_repeated_low_recogniser_confidence_offers_the_keypad(engine_en):
    unclear = Transcript("my bill", confidence=0.2)
    state, decisions = talk(engine_en, unclear, unclear)
    assert decisions[1].rule == "intent"
    assert decisions[2].rule == "low_asr_confidence"
    assert "keypad" in decisions[2].reply and "0 for a person" in decisions[2].reply
    assert any("recogniser confidence 0.20 below" in reason for reason in decisions[2].reasons)
    assert state.low_confidence_in_row == 0


def test_keypad_selects_intents_and_unknown_keys_are_explained(engine_en):
    _, decisions = talk(engine_en, "DTMF:7", "DTMF:#")
    assert decisions[1].intent == "opening_hours"
    assert decisions[1].rule == "keypad"
    assert decisions[2].rule == "keypad_unknown"


def test_cancelling_transfers_to_the_contracts_team(engine_en):
    _, decisions = talk(engine_en, "i want to cancel my contract")
    assert decisions[-1].action is Action.TRANSFER
    assert decisions[-1].department == "retention"


# --- please repeat, predictability and reasons -------------------------------------------------------------------


def test_please_repeat_says_the_last_reply_again(engine_en):
    _, decisions = talk(engine_en, "when are you open", "sorry can you say that again")
    assert decisions[-1].rule == "repeat"
    assert decisions[-1].reply == decisions[-2].reply


def test_please_repeat_right_after_the_greeting_repeats_the_greeting(engine_en):
    _, decisions = talk(engine_en, "DTMF:*")
    assert decisions[-1].reply == decisions[0].reply


def test_same_input_and_state_give_the_same_decision(engines):
    for engine in engines.values():
        state, _ = engine.start()
        for text in ("my bill is too high", "zorp flibber", "agent", "ik wil opzeggen"):
            first = engine.step(state, Transcript(text, confidence=0.9))
            again = engine.step(state, Transcript(text, confidence=0.9))
            assert first == again


def test_a_fresh_engine_decides_exactly_as_the_first(engine_en):
    rebuilt = DialogueEngine(engine_en.catalogue)
    state, _ = engine_en.start()
    for text in ("i was charged twice on my last bill", "my wifi keeps dropping", "where is my parcel"):
        assert engine_en.step(state, Transcript(text)) == rebuilt.step(state, Transcript(text))


def test_every_decision_records_rule_intent_score_and_evidence(engine_en):
    _, decisions = talk(engine_en, "i was charged twice on my last bill")
    decision = decisions[-1]
    assert decision.reasons[0] == "rule intent"
    assert decision.intent == "billing_question"
    assert 0.0 < decision.confidence <= 1.0
    assert any(r.startswith("classifier: billing_question") for r in decision.reasons)
    assert any(r.startswith("nearest example") for r in decision.reasons)
    assert any(r.startswith("key words:") for r in decision.reasons)


def test_keyword_decisions_name_the_keyword(engine_en):
    _, decisions = talk(engine_en, "put me through to an agent now")
    assert "keyword 'agent' selects intent speak_to_person" in decisions[-1].reasons


def test_transfer_replies_say_who_is_next_and_that_information_is_passed_on(engine_en):
    _, decisions = talk(engine_en, "agent")
    reply = decisions[-1].reply
    assert "customer service" in reply and "passing on what you told me" in reply and "stay on the line" in reply


def test_key_zero_before_anything_was_said_promises_to_pass_nothing_on(engine_en):
    _, decisions = talk(engine_en, Dtmf("0"))
    assert decisions[-1].reply == "I am connecting you to our customer service team. Please stay on the line."
    # Once the caller has told something (in words or by choosing a topic with a key), it is passed on.
    _, decisions = talk(engine_en, Dtmf("1"), Dtmf("0"))
    assert "passing on what you told me" in decisions[-1].reply


def test_reasons_count_one_turn_in_the_singular(engine_en):
    _, decisions = talk(engine_en, "zorp flibber quax", "blorp quinn vex")
    assert "not understood: 1 turn in a row" in decisions[1].reasons
    assert "not understood: 2 turns in a row" in decisions[2].reasons
    assert not any("1 turns" in reason for decision in decisions for reason in decision.reasons)


def test_after_an_out_of_scope_turn_the_offer_does_not_say_still(engine_en):
    _, decisions = talk(engine_en, "tell me a joke", "zorp flibber quax")
    assert decisions[1].intent == "out_of_scope"
    offer = decisions[2].reply
    assert decisions[2].rule == "not_understood_offer" and "still" not in offer
    assert offer == engine_en.catalogue.replies.offer_person_not_understood
    # Two turns the agent cannot help with: it says so rather than claiming not to understand.
    _, decisions = talk(engine_en, "tell me a joke", "what is the capital of france")
    assert decisions[2].reply == engine_en.catalogue.replies.offer_person_out_of_scope
    assert decisions[2].reply.startswith("That is not something I can help with")


def test_step_rejects_unknown_turn_types(engine_en):
    state, _ = engine_en.start()
    with pytest.raises(TypeError, match="expected a Transcript or Dtmf"):
        engine_en.step(state, "agent")  # type: ignore[arg-type]


def test_empty_transcript_is_not_understood(engine_en):
    _, decisions = talk(engine_en, Transcript("  "))
    assert decisions[-1].rule == "not_understood"
    assert decisions[-1].intent is None


def test_roles_used_by_the_engine_exist_in_both_languages(engines):
    for engine in engines.values():
        for role in (Role.HUMAN_REQUEST, Role.AI_QUESTION, Role.EMERGENCY, Role.REPEAT):
            assert engine.catalogue.with_role(role)
