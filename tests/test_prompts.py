"""The catalogue loads, and a broken one stops start-up with an error naming the file and the entry."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from voice.events import Action
from voice.prompts import LANGUAGES, MIN_EXAMPLES_PER_INTENT, PromptError, Role, load_catalogue

from .helpers import PROMPTS_DIR

REQUIRED_INTENTS = (
    "billing_question",
    "payment",
    "technical_problem",
    "order_status",
    "cancel_contract",
    "change_personal_details",
    "opening_hours",
    "speak_to_person",
    "ask_if_ai",
    "repeat",
    "goodbye",
)


def _edit(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


@pytest.mark.parametrize("language", LANGUAGES)
def test_sample_catalogue_has_the_required_intents_with_enough_examples(language):
    catalogue = load_catalogue(PROMPTS_DIR, language)
    for name in REQUIRED_INTENTS:
        assert name in catalogue.intents
    for intent in catalogue.intents.values():
        assert len(intent.examples) >= MIN_EXAMPLES_PER_INTENT, intent.name
        assert intent.reply


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_route_is_a_self_service_answer_or_a_known_department(language):
    catalogue = load_catalogue(PROMPTS_DIR, language)
    for intent in catalogue.intents.values():
        if intent.action is Action.TRANSFER:
            assert intent.department in catalogue.departments
            assert intent.transfer_reason


def test_sensitive_situations_are_all_configured_to_transfer():
    catalogue = load_catalogue(PROMPTS_DIR, "en")
    sensitive = {i.name for i in catalogue.intents.values() if i.role is Role.SENSITIVE}
    assert sensitive == {"complaint", "bereavement", "fraud_or_theft", "financial_hardship", "legal_threat"}
    assert catalogue.with_role(Role.EMERGENCY).action is Action.TRANSFER


def test_unknown_key_names_file_and_entry(prompts_copy):
    _edit(prompts_copy / "en" / "intents.yaml", lambda d: d["payment"].update(replay="typo"))
    with pytest.raises(PromptError, match=r"en/intents\.yaml: payment\.replay: Extra inputs are not permitted"):
        load_catalogue(prompts_copy, "en")


def test_missing_reply_names_file_and_entry(prompts_copy):
    _edit(prompts_copy / "en" / "intents.yaml", lambda d: d["opening_hours"].pop("reply"))
    with pytest.raises(PromptError, match=r"en/intents\.yaml: opening_hours\.reply: Field required"):
        load_catalogue(prompts_copy, "en")


def test_example_under_two_intents_names_both(prompts_copy):
    def duplicate(data):
        data["payment"]["examples"].append(data["billing_question"]["examples"][0].upper() + ".")

    _edit(prompts_copy / "en" / "intents.yaml", duplicate)
    expected = r"en/intents\.yaml: payment\.examples: .* is also an example of billing_question"
    with pytest.raises(PromptError, match=expected):
        load_catalogue(prompts_copy, "en")


def test_route_to_unknown_department_names_file_and_entry(prompts_copy):
    _edit(prompts_copy / "intents.yaml", lambda d: d["intents"]["complaint"].update(department="nowhere"))
    expected = r"intents\.yaml: intents\.complaint\.department: unknown department 'nowhere'"
    with pytest.raises(PromptError, match=expected):
        load_catalogue(prompts_copy, "en")


def test_too_few_examples_is_refused(prompts_copy):
    _edit(prompts_copy / "nl" / "intents.yaml", lambda d: d["goodbye"].update(examples=d["goodbye"]["examples"][:3]))
    with pytest.raises(PromptError, match=r"nl/intents\.yaml: goodbye\.examples: List should have at least 15"):
        load_catalogue(prompts_copy, "nl")


def test_intent_missing_in_one_language_is_named(prompts_copy):
    _edit(prompts_copy / "nl" / "intents.yaml", lambda d: d.pop("opening_hours"))
    with pytest.raises(PromptError, match=r"nl/intents\.yaml: missing intents .*: opening_hours"):
        load_catalogue(prompts_copy, "nl")


def test_keypad_zero_must_reach_a_person(prompts_copy):
    _edit(prompts_copy / "policy.yaml", lambda d: d["keypad"].update({"0": "opening_hours"}))
    with pytest.raises(PromptError, match=r"policy\.yaml: keypad\.0: must reach a person"):
        load_catalogue(prompts_copy, "en")


def test_missing_role_is_refused(prompts_copy):
    _edit(prompts_copy / "intents.yaml", lambda d: d["intents"]["ask_if_ai"].pop("role"))
    with pytest.raises(PromptError, match=r"exactly one intent must have role ai_question"):
        load_catalogue(prompts_copy, "en")


def test_broken_yaml_names_the_file(prompts_copy):
    (prompts_copy / "en" / "replies.yaml").write_text("greeting: [unclosed\n", encoding="utf-8")
    with pytest.raises(PromptError, match=r"en/replies\.yaml: not valid YAML"):
        load_catalogue(prompts_copy, "en")


def test_unknown_language_and_missing_folder(tmp_path):
    with pytest.raises(PromptError, match="unknown language 'fr'"):
        load_catalogue(PROMPTS_DIR, "fr")
    with pytest.raises(PromptError, match="prompts folder not found"):
        load_catalogue(tmp_path / "absent", "en")
