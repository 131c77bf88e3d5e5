"""The handoff made for the person who takes a transferred call."""

from __future__ import annotations

import pytest

from voice.events import Action, Decision, Dtmf, Transcript
from voice.handoff import build_handoff, mask_caller_number, mask_digits


def test_caller_number_keeps_only_the_last_two_digits():
    assert mask_caller_number("+31 6 1234 5678") == "*********78"
    assert mask_caller_number(None) == "unknown"
    assert mask_caller_number("anonymous") == "unknown"


def test_long_digit_runs_are_masked_short_ones_kept():
    assert mask_digits("my card is 4111 1111 1111 1111 thanks") == "my card is [number] thanks"
    assert mask_digits("account 12345678 since 2019") == "account [number] since [number]"
    assert mask_digits("press 1 or 22") == "press 1 or 22"


def test_handoff_carries_reason_intent_facts_and_masked_transcript(engine_en):
    state, greeting = engine_en.start()
    exchanges = [(None, greeting)]
    for turn in (Transcript("i have a question about my bill, account 99887766"), Dtmf("0")):
        state, decision = engine_en.step(state, turn)
        exchanges.append((turn, decision))
    handoff = build_handoff("CA1", exchanges, decision, "+15005550006")
    assert handoff.caller == "*********06"
    assert handoff.department == "billing"
    assert handoff.reason == "the caller pressed 0 for a person"
    assert "asked about: billing question" in handoff.facts
    assert "pressed: 0" in handoff.facts
    assert handoff.transcript[0].speaker == "agent"  # the greeting
    assert handoff.transcript[1].text == "i have a question about my bill, account [number]"
    assert "99887766" not in str(handoff)
    assert handoff.summary().startswith("Transferred caller about speak to person. Reason: the caller pressed 0")


def test_handoff_needs_a_transfer():
    decision = Decision(reply="Goodbye.", action=Action.END, rule="intent")
    with pytest.raises(ValueError, match="needs a transfer decision"):
        build_handoff("CA1", [], decision, None)
