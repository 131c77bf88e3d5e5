"""The handoff made for the person who takes a transferred call."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import pytest

from telephony.call_record import call_record
from telephony.calls import CallInfo
from telephony.settings import DEFAULT_DEPLOYMENT_FILE
from telephony.twilio.deployment import load_transfer_targets
from telephony.twilio.transfer import Transfers
from voice.dialogue import DialogueEngine
from voice.events import TECHNICAL_FAILURE_RULE, Action, Decision, Dtmf, Transcript
from voice.handoff import build_handoff, mask_caller_number, mask_digits
from voice.prompts import HandoffReason
from voice.tone import reply_problems, sentences


def test_caller_number_keeps_only_the_last_two_digits():
    assert mask_caller_number("+31 6 1234 5678") == "*********78"
    assert mask_caller_number(None) == "unknown"
    assert mask_caller_number("anonymous") == "unknown"


def test_long_digit_runs_are_masked_short_ones_kept():
    assert mask_digits("my card is 4111 1111 1111 1111 thanks") == "my card is [number] thanks"
    assert mask_digits("account 12345678 since 2019") == "account [number] since [number]"
    assert mask_digits("press 1 or 22") == "press 1 or 22"


def _call(engine: DialogueEngine, *turns: Transcript | Dtmf) -> tuple[list, Decision]:
    state, greeting = engine.start()
    exchanges = [(None, greeting)]
    for turn in turns:
        state, decision = engine.step(state, turn)
        exchanges.append((turn, decision))
    return exchanges, decision


def test_handoff_carries_topic_reason_facts_and_masked_transcript(engine_en):
    exchanges, decision = _call(engine_en, Transcript("i have a question about my bill, account 99887766"), Dtmf("0"))
    handoff = build_handoff(engine_en.catalogue, "CA1", exchanges, decision, "+15005550006")
    assert handoff.caller == "*********06"
    assert handoff.department == "billing"
    assert handoff.reason == "the caller pressed 0 for a person"  # the engine's record, unchanged
    assert handoff.kind is HandoffReason.PERSON_KEY
    assert handoff.topics == ("a bill",) and handoff.answered == ("a bill",)
    assert handoff.summary == (
        "The caller asked about a bill and already heard the automated answer. They pressed 0 to speak to a person."
    )
    assert handoff.reason_text == "They pressed 0 to speak to a person."
    assert "pressed: 0" in handoff.facts
    assert handoff.transcript[0].speaker == "agent"  # the greeting
    assert handoff.transcript[1].text == "i have a question about my bill, account [number]"
    assert "99887766" not in str(handoff)


def test_the_issue_call_a_bill_then_a_person_says_so_in_sentences(engine_en, engine_nl):
    """The call from issue 14: a question about a bill, then a request for a person."""
    exchanges, decision = _call(engine_en, Transcript("i have a question about my bill"), Transcript("agent"))
    handoff = build_handoff(engine_en.catalogue, "CA1", exchanges, decision, None)
    assert handoff.summary == (
        "The caller asked about a bill and already heard the automated answer. They asked to speak to a person."
    )
    exchanges, decision = _call(engine_nl, Transcript("ik heb een vraag over mijn rekening"), Transcript("medewerker"))
    handoff = build_handoff(engine_nl.catalogue, "CA2", exchanges, decision, None)
    assert handoff.summary == (
        "De beller vroeg naar een rekening en heeft het automatische antwoord daarop al gehoord. "
        "De beller vroeg om een medewerker."
    )


def test_topics_keep_their_order_and_say_which_were_answered(engine_en):
    # Opening hours are answered; cancelling is a transfer, so not answered by the agent.
    exchanges, decision = _call(engine_en, Transcript("what are your opening hours"), Dtmf("5"))
    handoff = build_handoff(engine_en.catalogue, "CA1", exchanges, decision, None)
    assert handoff.kind is HandoffReason.NEEDS_PERSON
    assert handoff.summary == (
        "The caller asked about opening hours and cancelling their contract, and already heard the automated answer "
        "about opening hours. This is something only a person can handle."
    )


@pytest.mark.parametrize(
    ("turns", "kind"),
    [
        ((Transcript("agent"),), HandoffReason.PERSON_REQUESTED),
        ((Dtmf("0"),), HandoffReason.PERSON_KEY),
        ((Transcript("blah"), Transcript("blah blah"), Transcript("yes")), HandoffReason.OFFER_ACCEPTED),
        ((Transcript("my husband died last week"),), HandoffReason.SENSITIVE),
        ((Transcript("someone is threatening to hurt me"),), HandoffReason.EMERGENCY),
        ((Dtmf("5"),), HandoffReason.NEEDS_PERSON),
        ((Transcript("blah"), Transcript("blah blah"), Transcript("blah blah blah")), HandoffReason.NOT_UNDERSTOOD),
    ],
    ids=lambda value: value.value if isinstance(value, HandoffReason) else None,
)
def test_each_engine_transfer_gets_its_reason(engine_en, turns, kind):
    exchanges, decision = _call(engine_en, *turns)
    handoff = build_handoff(engine_en.catalogue, "CA1", exchanges, decision, None)
    assert handoff.kind is kind
    assert handoff.summary.endswith(engine_en.catalogue.handoff.reasons[kind])


def test_a_technical_failure_and_a_call_turned_away_get_theirs(engine_en):
    failure = Decision(
        reply="...", action=Action.TRANSFER, rule=TECHNICAL_FAILURE_RULE, department="billing", transfer_reason="asr"
    )
    assert build_handoff(engine_en.catalogue, "CA1", [(None, failure)], failure, None).kind is (
        HandoffReason.TECHNICAL_FAILURE
    )
    away = Decision(reply="...", action=Action.TRANSFER, rule="over_capacity", department="customer_service")
    handoff = build_handoff(
        engine_en.catalogue, "CA2", [(None, away)], away, None, kind=HandoffReason.ASSISTANT_UNAVAILABLE
    )
    assert handoff.summary == (
        "The caller did not say what the call is about. "
        "The automated assistant could not take or keep the call, so they may need to explain."
    )


@pytest.mark.parametrize("language", ["en", "nl"])
def test_every_transfer_reason_has_a_handoff_that_passes_the_tone_check(engines, language):
    """Every reason, with no topic, one, two answered and many partly answered: calm, honest, at most two sentences."""
    handoff = engines[language].catalogue.handoff
    texts = handoff.examples()
    for reason in HandoffReason:
        listed = {key: text for key, text in texts.items() if key.startswith(f"handoff.{reason.value}.")}
        assert len(listed) == 4, reason
        for key, text in listed.items():
            print(f"{language} {key}: {text}")
            assert reply_problems(text, language) == [], (key, text)
            assert len(sentences(text)) == 2 and text.endswith(handoff.reasons[reason])
    assert reply_problems(handoff.missing, language) == []


def test_handoff_needs_a_transfer(engine_en):
    decision = Decision(reply="Goodbye.", action=Action.END, rule="intent")
    with pytest.raises(ValueError, match="needs a transfer decision"):
        build_handoff(engine_en.catalogue, "CA1", [], decision, None)


@pytest.mark.parametrize(("language", "say_language"), [("en", "en-US"), ("nl", "nl-NL")])
def test_the_whisper_is_the_desk_cards_headline_in_the_deployments_language(engines, language, say_language):
    engine = engines[language]
    said = {
        "en": ("i have a question about my bill", "agent"),
        "nl": ("ik heb een vraag over mijn rekening", "medewerker"),
    }
    exchanges, decision = _call(engine, *(Transcript(text) for text in said[language]))
    info = CallInfo(call_sid="CA-whisper", stream_sid="MZ-whisper")
    info.handoff = build_handoff(engine.catalogue, info.call_sid, exchanges, decision, None)
    info.outcome = decision
    record = call_record(info)
    targets = load_transfer_targets(DEFAULT_DEPLOYMENT_FILE, engine.catalogue.departments)
    say = ElementTree.fromstring(Transfers(targets, engine.catalogue).whisper(record)).find("Say")
    assert say.attrib["language"] == say_language
    assert say.text == record.handoff.summary == info.handoff.summary
    assert say.text.endswith(engine.catalogue.handoff.reasons[HandoffReason.PERSON_REQUESTED])
