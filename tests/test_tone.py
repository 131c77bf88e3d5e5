"""The tone check over the whole catalogue, and the check itself on replies that break it."""

from __future__ import annotations

import pytest

from voice.prompts import LANGUAGES, load_catalogue
from voice.tone import lint_catalogue, reply_problems, sentences

from .helpers import PROMPTS_DIR


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_reply_in_the_catalogue_passes_the_tone_check(language):
    problems = lint_catalogue(load_catalogue(PROMPTS_DIR, language))
    assert problems == [], "\n".join(map(str, problems))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Great news! Your bill is ready.", "exclamation mark"),
        ("One. Two. Three.", "3 sentences"),
        ("I feel your pain. Let me help.", "claims a feeling ('i feel')"),
        ("I'm so sorry to hear that.", "claims a feeling"),
        ("I am excited to help you today.", "claims a feeling ('i am excited')"),
        ("I love helping customers.", "claims a feeling ('i love')"),
        ("I understand how you feel.", "claims a feeling ('i understand how you feel')"),
        ("I am a real person, you can trust me.", "claims to be human"),
        ("Don't worry, I'm not a robot.", "claims to be human"),
        ("I am connecting you to billing. It usually takes less than two minutes.", "promises a waiting time"),
        ("A person will answer within a few minutes.", "promises a waiting time"),
        ("Someone will be with you in a moment.", "promises a waiting time"),
        ("Please hold, it won't be long.", "promises a waiting time"),
    ],
)
def test_english_replies_that_break_the_rules_are_caught(text, problem):
    assert any(found.startswith(problem) for found in reply_problems(text, "en")), reply_problems(text, "en")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Het spijt me zo.", "claims a feeling"),
        ("Ik voel met u mee.", "claims a feeling"),
        ("Ik ben blij dat u belt.", "claims a feeling"),
        ("Ik begrijp hoe u zich voelt.", "claims a feeling"),
        ("Ik ben een echte medewerker van vlees en bloed, geen robot.", "claims to be human"),
        ("Welkom!", "exclamation mark"),
        ("Ik verbind u door. Dat duurt meestal minder dan twee minuten.", "promises a waiting time"),
        ("U wordt binnen enkele minuten geholpen.", "promises a waiting time"),
        ("Een medewerker is zo meteen bij u.", "promises a waiting time"),
    ],
)
def test_dutch_replies_that_break_the_rules_are_caught(text, problem):
    assert any(found.startswith(problem) for found in reply_problems(text, "nl")), reply_problems(text, "nl")


def test_honest_denial_is_allowed():
    assert reply_problems("I am an automated AI assistant, not a person.", "en") == []
    assert reply_problems("U spreekt met een AI-assistent, niet met een mens.", "nl") == []


def test_instructions_with_a_duration_are_not_waiting_time_promises():
    # How long to do something is an instruction; only how long the caller will wait is a promise.
    assert reply_problems("Please restart your router by unplugging it for 30 seconds.", "en") == []
    assert reply_problems("Haal de stekker van uw modem 30 seconden uit het stopcontact.", "nl") == []


def test_a_waiting_time_in_a_transfer_reply_names_file_and_intent(prompts_copy):
    path = prompts_copy / "en" / "intents.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("Please stay on the line.", "It usually takes less than two minutes.", 1))
    problems = lint_catalogue(load_catalogue(prompts_copy, "en"))
    assert [p.problem for p in problems] == ["promises a waiting time ('less than two minutes')"]
    assert problems[0].where.endswith("en/intents.yaml: cancel_contract.reply")


def test_sentences_do_not_split_on_dots_inside_words_or_times():
    assert len(sentences("Visit brightline.example for details. We open at 8:00.")) == 2


def test_greeting_without_disclosure_is_reported(prompts_copy):
    path = prompts_copy / "en" / "replies.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("automated AI assistant", "assistant"), encoding="utf-8")
    problems = lint_catalogue(load_catalogue(prompts_copy, "en"))
    assert [p.problem for p in problems] == ["the first sentence must say it is an automated AI assistant"]


def test_feeling_in_an_intent_reply_names_file_and_intent(prompts_copy):
    path = prompts_copy / "nl" / "intents.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("goodbye:\n  reply: >-\n", "goodbye:\n  reply: >-\n    Het spijt me.\n", 1))
    problems = lint_catalogue(load_catalogue(prompts_copy, "nl"))
    assert len(problems) >= 1
    assert problems[0].where.endswith("nl/intents.yaml: goodbye.reply")
