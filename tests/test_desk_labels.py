"""The desk's words follow the deployment's language: one labels catalogue per language (prompts/<lang>/desk.yaml),
filled into the page by the server and read by its scripts."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
import yaml
from fastapi.testclient import TestClient

from telephony.app import create_app
from telephony.calls import CallState
from telephony.settings import load_settings
from telephony.transfer_timeline import TransferState
from telephony.web.desk import STATIC_DIR
from telephony.web.desk_labels import DESK_LABELS_FILE, desk_labels, render_page
from voice.prompts import LANGUAGES, PromptError

from .helpers import PROMPTS_DIR


def _names(language: str) -> set[str]:
    return set(yaml.safe_load((PROMPTS_DIR / language / DESK_LABELS_FILE).read_text(encoding="utf-8")))


class _LabelsBlock(HTMLParser):
    """The page's JSON data block of labels, and its language."""

    def __init__(self) -> None:
        super().__init__()
        self.language, self.data, self._inside = None, "", False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "html":
            self.language = attributes.get("lang")
        self._inside = tag == "script" and attributes.get("id") == "desk-labels"

    def handle_endtag(self, tag):
        self._inside = False

    def handle_data(self, data):
        if self._inside:
            self.data += data


def _desk_page(**settings: object) -> tuple[str, _LabelsBlock]:
    page = TestClient(create_app(load_settings(**settings))).get("/desk")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    block = _LabelsBlock()
    block.feed(page.text)
    return page.text, block


def test_english_and_dutch_have_the_same_label_names():
    assert _names("en") == _names("nl")
    assert set(LANGUAGES) == {"en", "nl"}  # a new language needs its own desk.yaml too


def test_the_desk_is_english_by_default():
    text, block = _desk_page()
    assert block.language == "en"
    assert '<h2 id="login-heading">Log in</h2>' in text and "Inloggen" not in text
    assert json.loads(block.data) == dict(desk_labels(PROMPTS_DIR, "en"))


def test_the_desk_is_dutch_when_the_deployment_speaks_dutch():
    text, block = _desk_page(language="nl")
    assert block.language == "nl"
    assert (
        '<h2 id="login-heading">Inloggen</h2>' in text
        and '<h2 id="calls-heading" tabindex="-1">Gesprekken</h2>' in text
    )
    assert ">Log in<" not in text and "{{" not in text
    labels = json.loads(block.data)
    assert labels == dict(desk_labels(PROMPTS_DIR, "nl"))
    assert labels["transfer_not_answered"] == "Niemand nam op" and labels["login_button"] == "Inloggen"


def test_every_label_the_pages_and_scripts_use_exists_and_every_label_is_used():
    used = set()
    for page in STATIC_DIR.glob("*.html"):
        used |= set(re.findall(r"\{\{\s*(\w+)\s*\}\}", page.read_text(encoding="utf-8"))) - {"lang", "labels_json"}
    for script in STATIC_DIR.glob("*.js"):
        used |= set(re.findall(r"\btext\(\"(\w+)\"", script.read_text(encoding="utf-8")))
    # The states' labels are looked up by name (transfer_<state>, state_<state>).
    used |= {f"transfer_{state}" for state in [*TransferState, "pending"]} | {f"state_{state}" for state in CallState}
    assert used == _names("en")


def test_a_dutch_catalogue_that_lacks_a_label_stops_the_start(prompts_copy):
    path = prompts_copy / "nl" / DESK_LABELS_FILE
    path.write_text(re.sub(r"(?m)^login_button: .*\n", "", path.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(PromptError, match=r"desk\.yaml: missing labels .*login_button"):
        create_app(load_settings(language="nl", prompts_dir=prompts_copy))


def test_labels_are_escaped_in_the_page_and_cannot_close_the_data_block():
    labels = {"title": "<b>A & B</b>", "other": "</script><script>alert(1)</script>"}
    page = render_page('<title>{{title}}</title><script type="application/json">{{labels_json}}</script>', labels, "en")
    assert "<title>&lt;b&gt;A &amp; B&lt;/b&gt;</title>" in page
    assert page.count("</script>") == 1
    with pytest.raises(PromptError, match="lacks: missing"):
        render_page("{{missing}}", labels, "en")


def test_the_call_page_is_dutch_too(monkeypatch):
    token = "desk-labels-agent-token-0123456789"
    monkeypatch.setenv("VOICE_AGENT_AGENT_TOKEN", token)
    app = create_app(load_settings(language="nl"))
    app.state.voice.store.migrate()  # the audit trail records the login
    client = TestClient(app)
    assert client.post("/desk/login", json={"token": token}).status_code == 200
    page = client.get("/desk/call")
    assert page.status_code == 200 and '<html lang="nl">' in page.text
    assert '<button id="call" type="button" disabled>De assistent bellen</button>' in page.text
    assert "Call the agent" not in page.text and "{{" not in page.text
