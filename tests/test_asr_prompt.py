"""The recogniser's prompts come from the catalogue: the greeting for the server; for the benchmark, domain terms
(caller words the agent also uses, never its typos)."""

from __future__ import annotations

from pathlib import Path

from qa.domain_terms import MAX_INTENTS_PER_TERM, domain_terms, prompt_from_terms, terms_prompt
from voice.asr_prompt import catalogue_prompt
from voice.prompts import load_catalogue
from voice.text import normalize

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"


def test_terms_are_caller_words_the_agent_spells_too():
    examples = {
        "billing": ["my billing is wrong", "the bell is too high", "question about billing"],
        "tech": ["my router is broken", "router keeps restarting"],
    }
    replies = ["Your billing is in the app.", "Restart the router and the modem."]
    examples["tech"].append("the modem")
    terms = domain_terms(examples, replies, "en")
    # "bell" is a recogniser mistake kept in the examples on purpose: no reply spells it, so it is not taught.
    assert terms == ["billing", "router", "modem"]  # most frequent first, ties alphabetically
    assert "the" not in terms  # a stop word is never a term, though the agent says it


def test_words_every_intent_uses_are_not_domain_terms():
    intents = [f"intent{i}" for i in range(MAX_INTENTS_PER_TERM + 1)]
    examples = {name: [f"please help with {name}"] for name in intents}
    examples["intent0"].append("my modem")
    terms = domain_terms(examples, ["please say help about the modem"], "en")
    assert terms == ["modem"]


def test_terms_are_reproducible_and_bounded():
    catalogue = load_catalogue(PROMPTS_DIR, "en")
    prompt = terms_prompt(catalogue)
    assert prompt == terms_prompt(load_catalogue(PROMPTS_DIR, "en"))
    terms = prompt.rstrip(".").split(", ")
    assert 10 <= len(terms) <= 40
    assert len(set(terms)) == len(terms)
    caller_words = {w for i in catalogue.intents.values() for e in i.examples for w in normalize(e, "en").split()}
    agent_words = {w for i in catalogue.intents.values() for w in normalize(i.reply, "en").split()}
    agent_words |= {w for i in catalogue.intents.values() for k in i.keywords for w in normalize(k, "en").split()}
    assert set(terms) <= caller_words & agent_words
    # The catalogue's deliberate misrecognitions ("why is my bull so high", "the pavement page") stay out.
    assert not {"bull", "bell", "build", "pavement"} & set(terms)
    assert terms_prompt(catalogue, max_terms=5) == prompt_from_terms(terms[:5])


def test_server_prompt_is_the_greeting_the_caller_heard():
    for language in ("en", "nl"):
        catalogue = load_catalogue(PROMPTS_DIR, language)
        prompt = catalogue_prompt(catalogue)
        assert prompt == " ".join(catalogue.replies.greeting.split())
        assert "\n" not in prompt and "  " not in prompt


def test_empty_catalogue_words_give_no_prompt():
    assert prompt_from_terms([]) == ""
    assert domain_terms({"a": ["hello there"]}, ["goodbye"], "en") == []
