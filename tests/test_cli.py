"""`voice-agent chat` and `voice-agent lint-prompts`, run as the console script a user runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from telephony.cli import limit_malloc_arenas, parse_caller_line
from voice.events import Dtmf, Transcript


def voice_agent(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "telephony.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.slow
def test_chat_json_english_greets_first_then_one_object_per_turn():
    result = voice_agent("chat", "--json", stdin="are you a robot\nmy bill is too high\nDTMF:0\nnever read\n")
    assert result.returncode == 0, result.stderr
    turns = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(turns) == 4  # greeting + three turns; the call is handed over after DTMF 0
    greeting, robot, bill, key = turns
    assert greeting["caller"] is None
    assert greeting["reply"].startswith("Hello, this is Brightline's automated AI assistant")
    for turn in turns:
        assert set(turn) >= {"caller", "intent", "confidence", "action", "reply", "reasons"}
    assert robot["intent"] == "ask_if_ai" and robot["action"] == "reply"
    assert bill["caller"] == "my bill is too high" and bill["intent"] == "billing_question"
    assert key["caller"] == "DTMF:0" and key["action"] == "transfer" and key["department"] == "billing"
    assert all(isinstance(turn["reasons"], list) and turn["reasons"] for turn in turns)


@pytest.mark.slow
def test_chat_json_dutch():
    result = voice_agent("chat", "--lang", "nl", "--json", stdin="ik wil mijn abonnement opzeggen\n")
    assert result.returncode == 0, result.stderr
    greeting, cancel = (json.loads(line) for line in result.stdout.splitlines())
    assert "geautomatiseerde AI-assistent" in greeting["reply"]
    assert cancel["intent"] == "cancel_contract" and cancel["action"] == "transfer"


@pytest.mark.slow
def test_chat_language_from_the_environment():
    result = voice_agent("chat", "--json", stdin="", env={"VOICE_AGENT_LANGUAGE": "nl"})
    assert "geautomatiseerde AI-assistent" in json.loads(result.stdout)["reply"]


@pytest.mark.slow
def test_chat_text_mode_shows_the_decision():
    result = voice_agent("chat", stdin="bye\n")
    assert result.returncode == 0
    assert "agent: Hello" in result.stdout
    assert "[end; rule intent; intent goodbye" in result.stdout


@pytest.mark.slow
def test_bad_language_setting_names_the_variable():
    result = voice_agent("chat", stdin="", env={"VOICE_AGENT_LANGUAGE": "fr"})
    assert result.returncode == 2
    assert "VOICE_AGENT_LANGUAGE='fr'" in result.stderr


@pytest.mark.slow
def test_broken_catalogue_stops_with_the_file_and_entry(prompts_copy):
    path = prompts_copy / "en" / "replies.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("greeting:", "greetin:"), encoding="utf-8")
    result = voice_agent("chat", "--prompts", str(prompts_copy), stdin="")
    assert result.returncode == 2
    assert "en/replies.yaml: greeting: Field required" in result.stderr


@pytest.mark.slow
def test_bad_dtmf_line_is_reported_and_skipped():
    result = voice_agent("chat", "--json", stdin="DTMF:12\nbye\n")
    assert "expected DTMF:<key>" in result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["action"] == "end"


@pytest.mark.slow
def test_lint_prompts_passes_on_the_sample_catalogue():
    result = voice_agent("lint-prompts")
    assert result.returncode == 0, result.stdout
    assert "0 tone problems" in result.stderr


@pytest.mark.slow
def test_lint_prompts_fails_on_a_bad_reply(prompts_copy):
    path = prompts_copy / "en" / "replies.yaml"
    text = path.read_text(encoding="utf-8").replace("All right. What can I help you with?", "Wonderful, I love it!")
    path.write_text(text, encoding="utf-8")
    result = voice_agent("lint-prompts", "--lang", "en", "--prompts", str(prompts_copy))
    assert result.returncode == 1
    assert "nothing_offered: exclamation mark" in result.stdout
    assert "claims a feeling ('i love')" in result.stdout


@pytest.mark.parametrize(
    ("line", "turn"),
    [("hello", Transcript("hello")), ("DTMF:0", Dtmf("0")), ("dtmf: *", Dtmf("*")), ("   ", None)],
)
def test_parse_caller_line(line, turn):
    assert parse_caller_line(line) == turn


@pytest.mark.slow
def test_serve_caps_malloc_arenas_unless_the_environment_does(monkeypatch):
    # In a fresh process, as `serve` calls it before any thread starts; glibc is the C library here.
    code = "from telephony.cli import limit_malloc_arenas; print(limit_malloc_arenas())"
    environment = {key: value for key, value in os.environ.items() if key != "MALLOC_ARENA_MAX"}
    capped = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=environment)
    assert capped.stdout.strip() == "True", capped.stderr
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False


def test_version_is_the_installed_package_version(capsys):
    from importlib import metadata

    from telephony.cli import main

    with pytest.raises(SystemExit) as exit_code:
        main(["--version"])
    assert exit_code.value.code == 0
    assert capsys.readouterr().out.strip() == f"voice-agent {metadata.version('voice-agent')}"
