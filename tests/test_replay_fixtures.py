"""The QA replay fixtures: the call-file format, its validation with errors naming file and field, voiced frames."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from qa.fixtures import FixtureError, load_fixture, load_fixtures, voiced_frames
from telephony.twilio.mulaw import pcm16_to_mulaw

REPO = Path(__file__).resolve().parent.parent
CALLS = REPO / "audio_fixtures" / "calls"


def _write(tmp_path: Path, content: object, name: str = "call.json") -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


def _error(path: Path) -> str:
    with pytest.raises(FixtureError) as caught:
        load_fixture(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    return message


def test_bundled_fixtures_are_valid():
    loaded = load_fixtures(sorted(CALLS.glob("*.json")))
    names = {item.fixture.name for item in loaded}
    assert names >= {"billing_then_agent", "press_zero", "barge_in", "goodbye", "number_with_pauses"}


def test_a_bad_wait_names_the_file_and_the_turn(tmp_path):
    path = _write(tmp_path, {"name": "x", "turns": [{"say": "hello"}, {"say": "hi", "wait": "later"}]})
    assert "turn 2 wait:" in _error(path)


def test_a_turn_of_no_known_kind_is_refused(tmp_path):
    path = _write(tmp_path, {"name": "x", "turns": [{"shout": "hello"}]})
    message = _error(path)
    assert "turn 1:" in message and "exactly one of" in message


def test_a_turn_of_two_kinds_is_refused(tmp_path):
    assert "turn 1:" in _error(_write(tmp_path, {"name": "x", "turns": [{"say": "hi", "dtmf": "0"}]}))


def test_unknown_fields_are_refused(tmp_path):
    assert "colour:" in _error(_write(tmp_path, {"name": "x", "colour": "blue", "turns": [{"dtmf": "1"}]}))
    path = _write(tmp_path, {"name": "x", "turns": [{"dtmf": "1", "loud": True}]}, "turn.json")
    assert "turn 1 loud:" in _error(path)


def test_a_bad_key_and_missing_fields_are_named(tmp_path):
    assert "turn 1 dtmf:" in _error(_write(tmp_path, {"name": "x", "turns": [{"dtmf": "A"}]}))
    assert "name:" in _error(_write(tmp_path, {"turns": [{"dtmf": "1"}]}, "anonymous.json"))
    assert "turns:" in _error(_write(tmp_path, {"name": "x", "turns": []}, "empty.json"))


def test_hangup_must_be_the_last_turn(tmp_path):
    path = _write(tmp_path, {"name": "x", "turns": [{"hangup": True}, {"say": "hello"}]})
    assert "turn 1 hangup: a hang-up must be the last turn" in _error(path)


def test_missing_or_unusable_audio_is_named(tmp_path):
    assert "turn 1 audio:" in _error(_write(tmp_path, {"name": "x", "turns": [{"audio": "nowhere.wav"}]}))
    with wave.open(str(tmp_path / "stereo.wav"), "wb") as writer:
        writer.setnchannels(2)
        writer.setsampwidth(2)
        writer.setframerate(16000)
        writer.writeframes(bytes(6400))
    message = _error(_write(tmp_path, {"name": "x", "turns": [{"audio": "stereo.wav"}]}, "stereo.json"))
    assert "turn 1 audio:" in message and "mono" in message


def test_invalid_json_and_missing_files_are_named(tmp_path):
    assert "not valid JSON" in _error(_write(tmp_path, '{"name": "x", "turns": [}'))
    assert "not found" in _error(tmp_path / "absent.json")


def test_two_fixtures_with_one_name_are_refused(tmp_path):
    first = _write(tmp_path, {"name": "same", "turns": [{"dtmf": "1"}]}, "a.json")
    second = _write(tmp_path, {"name": "same", "turns": [{"dtmf": "2"}]}, "b.json")
    with pytest.raises(FixtureError, match=r"b\.json: name: 'same' is also the name of .*a\.json"):
        load_fixtures([first, second])


@pytest.mark.slow
def test_the_command_exits_2_on_a_bad_fixture_naming_file_and_field(tmp_path):
    path = _write(tmp_path, {"name": "x", "turns": [{"pause_ms": -5}]})
    result = subprocess.run(
        [sys.executable, "-m", "telephony.cli", "replay", str(path), "--report", str(tmp_path / "report")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "ORT_DISABLE_TELEMETRY": "1"},
    )
    assert result.returncode == 2
    assert f"{path}: turn 1 pause_ms:" in result.stderr
    assert not (tmp_path / "report").exists()


def test_voiced_frames_are_judged_by_energy():
    silence = bytes([0xFF]) * 160
    tone = pcm16_to_mulaw((8000 * np.sin(np.arange(160) * 2 * np.pi * 440 / 8000)).astype(np.int16))
    hiss = pcm16_to_mulaw(np.full(160, 20, dtype=np.int16))  # about -64 dBFS: line noise, not speech
    assert voiced_frames([silence, tone, hiss]) == (False, True, False)


# --- expectations ---------------------------------------------------------------------------------------------------


def test_expectations_are_read_per_turn_and_per_call(tmp_path):
    content = {
        "name": "x",
        "turns": [
            {"pause_ms": 200},
            {"say": "agent", "expect": {"intent": "speak_to_person", "action": "transfer", "department": "billing"}},
            {"say": "what", "expect": {"intent": None}},
        ],
        "expect": {"outcome": "transfer", "department": "billing", "no_talking_over": False},
    }
    fixture = load_fixture(_write(tmp_path, content)).fixture
    pause, agent, unclear = fixture.turn_expects()
    assert pause is None
    assert (agent.intent, agent.action, agent.department, agent.rule) == (
        "speak_to_person",
        "transfer",
        "billing",
        None,
    )
    assert unclear.intent is None and unclear.model_fields_set == {"intent"}  # null: "not understood", checked
    assert fixture.expect.outcome == "transfer" and fixture.expect.ai_disclosure and not fixture.expect.no_talking_over


def test_a_fixture_without_expectations_still_checks_the_two_promises(tmp_path):
    fixture = load_fixture(_write(tmp_path, {"name": "x", "turns": [{"dtmf": "1"}]})).fixture
    assert fixture.expect.ai_disclosure and fixture.expect.no_talking_over and fixture.expect.outcome is None


def test_bad_expectations_name_the_file_and_the_field(tmp_path):
    cases = {
        "turn 1 expect.action: Input should be 'reply', 'transfer' or 'end'": {
            "turns": [{"say": "hi", "expect": {"action": "hold"}}]
        },
        "turn 1 expect: Value error, give at least one of": {"turns": [{"say": "hi", "expect": {}}]},
        "turn 1 expect.mood:": {"turns": [{"say": "hi", "expect": {"mood": "calm"}}]},
        "turn 1 expect:": {"turns": [{"pause_ms": 100, "expect": {"action": "reply"}}]},
        "turn 1 expect.intent: String should match pattern": {"turns": [{"dtmf": "0", "expect": {"intent": "A b"}}]},
        "expect.outcome: Input should be 'transfer', 'end' or 'none'": {
            "turns": [{"dtmf": "0"}],
            "expect": {"outcome": "transferred"},
        },
        'expect.department: Value error, a department needs "outcome": "transfer"': {
            "turns": [{"dtmf": "0"}],
            "expect": {"department": "billing"},
        },
    }
    for index, (expected, content) in enumerate(cases.items()):
        message = _error(_write(tmp_path, {"name": "x", **content}, f"case{index}.json"))
        assert expected in message, message


def test_a_folder_stands_for_its_fixture_files_in_name_order(tmp_path):
    from qa.fixtures import fixture_paths

    second = _write(tmp_path, {"name": "b", "turns": [{"dtmf": "1"}]}, "b.json")
    first = _write(tmp_path, {"name": "a", "turns": [{"dtmf": "1"}]}, "a.json")
    assert fixture_paths([tmp_path]) == [first, second]
    assert [item.fixture.name for item in load_fixtures([tmp_path])] == ["a", "b"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FixtureError, match="empty: no fixture calls"):
        fixture_paths([empty])


def test_expectations_naming_an_unknown_intent_or_department_are_refused(tmp_path):
    from qa.fixtures import check_catalogue_names

    path = _write(tmp_path, {"name": "x", "turns": [{"dtmf": "0", "expect": {"department": "biling"}}]})
    with pytest.raises(FixtureError) as caught:
        check_catalogue_names([load_fixture(path)], intents={"payment"}, departments={"billing", "fraud"})
    assert str(caught.value) == (
        f"{path}: turn 1 expect.department: 'biling' is not a department of the catalogue (one of billing, fraud)"
    )
    path = _write(
        tmp_path, {"name": "y", "turns": [{"dtmf": "0"}], "expect": {"outcome": "transfer", "department": "x"}}
    )
    with pytest.raises(FixtureError, match=r"expect\.department: 'x' is not a department"):
        check_catalogue_names([load_fixture(path)], intents=set(), departments={"billing"})
    check_catalogue_names(load_fixtures([CALLS]), intents=_catalogue().intents, departments=_catalogue().departments)


def test_the_command_refuses_a_typo_in_an_expectation_before_replaying(tmp_path, capsys):
    from qa.command import replay_command

    path = _write(tmp_path, {"name": "x", "turns": [{"say": "hello", "expect": {"intent": "bilingq"}}]})
    assert replay_command([path], tmp_path / "report") == 2
    assert f"{path}: turn 1 expect.intent: 'bilingq' is not an intent of the catalogue" in capsys.readouterr().err
    assert not (tmp_path / "report").exists()


def _catalogue():
    from voice.prompts import load_catalogue

    return load_catalogue(REPO / "prompts", "en")


def test_a_dutch_call_is_made_of_recordings(tmp_path):
    path = _write(tmp_path, {"name": "x", "language": "nl", "turns": [{"say": "Ik heb een vraag."}]})
    message = _error(path)
    assert "turn 1: a 'say' turn is spoken by the English Piper caller voice" in message
    assert "make_dutch_calls.py" in message
    dutch = load_fixture(CALLS / "nl_rekening_dan_medewerker.json")
    assert dutch.fixture.language == "nl"


def test_a_running_server_takes_calls_of_one_language_only(tmp_path):
    from qa.replay import run_replay

    english = _write(tmp_path, {"name": "en", "turns": [{"dtmf": "0"}]}, "en.json")
    dutch = _write(tmp_path, {"name": "nl", "language": "nl", "turns": [{"dtmf": "0"}]}, "nl.json")
    with pytest.raises(FixtureError, match="the calls are in en and nl, and a running server speaks one language"):
        run_replay([english, dutch], tmp_path / "report", server_url="ws://127.0.0.1:9/twilio/media")
    assert not (tmp_path / "report").exists()


def test_the_replay_answers_dutch_calls_with_the_stand_in_only_when_no_dutch_voice_is_set(monkeypatch):
    from qa.server import voice_for_replay
    from telephony.settings import load_settings

    for name in ("VOICE", "PIPER_VOICE", "LANGUAGE"):
        monkeypatch.delenv(f"VOICE_AGENT_{name}", raising=False)
    settings, note = voice_for_replay(load_settings(language="nl"))
    assert settings.voice == "espeak-ng-nl" and "stand-in" in note
    settings, note = voice_for_replay(load_settings(language="nl", voice="nl_BE-nathalie-medium"))
    assert settings.voice == "nl_BE-nathalie-medium" and note is None
    # A Dutch voice configured for the whole suite leaves the English calls their bundled voice.
    settings, note = voice_for_replay(load_settings(language="en", voice="espeak-ng-nl"))
    assert settings.voice is None and note is None
