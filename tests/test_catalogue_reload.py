"""Reloading the catalogue without a restart: checked as lint-prompts checks it, live for the next call only."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from telephony.app import create_app
from telephony.catalogue_reload import CatalogueRefusedError, checked_catalogue
from telephony.settings import load_settings
from telephony.twilio.framing import pcm_to_twilio_frames
from voice.events import Transcript

from .helpers import (
    PROMPTS_DIR,
    SILENCE,
    app_client,
    call_sid,
    mark_message,
    media_message,
    receive_until_mark,
    start_message,
    twilio_stream,
)

OLD_HOURS = "Our phone team is available Monday to Saturday from 8:00 to 20:00"
NEW_HOURS = "Our phone team is available Monday to Friday from 9:00 to 17:00"
ADMIN_TOKEN = "admin-token-fedcba9876543210"
AGENT_TOKEN = "agent-token-0123456789abcdef"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    """A copy of prompts/ for the test to edit."""
    return Path(shutil.copytree(PROMPTS_DIR, tmp_path / "prompts"))


def edit(prompts: Path, file: str, old: str, new: str) -> None:
    path = prompts / "en" / file
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} is no longer in {path}: update the test"
    path.write_text(text.replace(old, new), encoding="utf-8")


def hours_reply(app) -> str:
    engine = app.state.running.services.engine
    state, _greeting = engine.start()
    return engine.step(state, Transcript("what are your opening hours"))[1].reply


# --- the checks (fast: no models) ----------------------------------------------------------------------------------


def state_for(prompts: Path):
    return create_app(load_settings(prompts_dir=prompts)).state.voice


def test_a_reply_with_an_exclamation_mark_is_refused_with_the_linters_message(prompts):
    state = state_for(prompts)
    edit(prompts, "intents.yaml", OLD_HOURS, OLD_HOURS + "!")
    with pytest.raises(CatalogueRefusedError) as refused:
        checked_catalogue(state)
    assert len(refused.value.problems) == 1
    assert "opening_hours" in refused.value.problems[0] and "exclamation" in refused.value.problems[0]


def test_a_missing_field_is_refused_with_the_loaders_message(prompts):
    state = state_for(prompts)
    edit(prompts, "replies.yaml", "not_understood: >-", "not_understood_typo: >-")
    with pytest.raises(CatalogueRefusedError) as refused:
        checked_catalogue(state)
    assert "not_understood" in refused.value.problems[0]


def test_a_catalogue_whose_departments_the_deployment_does_not_match_is_refused(prompts):
    # As if deploy/ had been edited to drop a department: the reload keeps the deployment read at start-up.
    state = state_for(prompts)
    targets = dict(state.targets)
    del targets["orders"]
    with pytest.raises(CatalogueRefusedError, match=r"departments without a target: orders; .*restart"):
        checked_catalogue(dataclasses.replace(state, targets=targets))


def test_a_good_edit_passes_the_checks(prompts):
    state = state_for(prompts)
    edit(prompts, "intents.yaml", OLD_HOURS, NEW_HOURS)
    assert NEW_HOURS in checked_catalogue(state).intents["opening_hours"].reply


def test_the_reload_needs_the_admin_role(prompts):
    app = create_app(load_settings(prompts_dir=prompts, agent_token=AGENT_TOKEN, admin_token=ADMIN_TOKEN))
    client = TestClient(app)  # no lifespan: the role is checked before anything else
    assert client.post("/api/catalogue/reload").status_code == 401
    agent = {"Authorization": f"Bearer {AGENT_TOKEN}"}
    assert client.post("/api/catalogue/reload", headers=agent).status_code == 403


# --- through the running app with the real models --------------------------------------------------------------


def greet(ws, call_sid: str, voice_services) -> None:
    """Start a call and play the whole greeting (each sentence's mark echoed), so that the next input is no barge-in."""
    ws.send_json(start_message(stream_sid="MZ" + call_sid[2:], call_sid=call_sid))
    greeting = voice_services.engine.catalogue.replies.greeting
    for _sentence in voice_services.speech.get_or_synthesize(greeting):
        _, mark = receive_until_mark(ws)
        ws.send_json(mark_message(mark, stream_sid="MZ" + call_sid[2:]))


def ask_opening_hours(ws, call_sid: str, synthesizer) -> None:
    """Say "What are your opening hours?" in the Piper voice, then the silence that ends the turn."""
    audio = np.concatenate(list(synthesizer.synthesize("What are your opening hours?")))
    frames = [SILENCE] * 10 + pcm_to_twilio_frames(audio, synthesizer.sample_rate_hz) + [SILENCE] * 75
    for frame in frames:
        ws.send_json(media_message(frame, stream_sid="MZ" + call_sid[2:]))


def reply_of_last_turn(client: TestClient, call_sid: str, ws) -> str:
    """Echo marks until the call has a decision on the caller's turn; the reply it decided."""
    registry = client.app.state.voice.registry
    while True:
        _, mark = receive_until_mark(ws)
        ws.send_json(mark_message(mark, stream_sid="MZ" + call_sid[2:]))
        records = registry.get(call_sid).records
        if len(records) >= 2:
            return records[-1].decision.reply


def test_an_edited_reply_is_live_for_the_next_call_and_calls_in_progress_keep_theirs(voice_services, prompts):
    synthesizer = voice_services.speech.synthesizer
    # The call in progress sends no audio while the other one runs (Twilio would send silence): no silence bound.
    quiet = {"stream_silence_timeout_s": 300}
    with app_client(voice_services, prompts_dir=prompts, admin_token=ADMIN_TOKEN, **quiet) as client:
        old_reply = hours_reply(client.app)
        assert old_reply.startswith(OLD_HOURS)
        with twilio_stream(client) as before:
            greet(before, call_sid("before"), voice_services)
            edit(prompts, "intents.yaml", OLD_HOURS, NEW_HOURS)

            response = client.post("/api/catalogue/reload", headers=ADMIN)
            assert response.status_code == 200, response.text
            assert response.json()["language"] == "en" and response.json()["intents"] > 10
            new_reply = hours_reply(client.app)
            assert new_reply.startswith(NEW_HOURS)
            # The reload returned with the new reply's audio ready: the next caller does not wait for synthesis.
            assert new_reply in client.app.state.running.services.speech
            assert client.app.state.voice.catalogue.intents["opening_hours"].reply == new_reply

            with twilio_stream(client) as after:
                greet(after, call_sid("after"), voice_services)
                ask_opening_hours(after, call_sid("after"), synthesizer)
                assert reply_of_last_turn(client, call_sid("after"), after) == new_reply
            # The call that started before the reload still answers from the catalogue it started with.
            ask_opening_hours(before, call_sid("before"), synthesizer)
            assert reply_of_last_turn(client, call_sid("before"), before) == old_reply


def test_a_broken_edit_is_refused_with_the_linters_message_and_the_old_replies_stay(voice_services, prompts):
    with app_client(voice_services, prompts_dir=prompts, admin_token=ADMIN_TOKEN) as client:
        services_before = client.app.state.running.services
        edit(prompts, "intents.yaml", OLD_HOURS, OLD_HOURS + "!")
        response = client.post("/api/catalogue/reload", headers=ADMIN)
        assert response.status_code == 422
        body = response.json()
        assert "the one in use stays" in body["detail"]
        assert any("exclamation" in problem and "opening_hours" in problem for problem in body["problems"])

        edit(prompts, "intents.yaml", OLD_HOURS + "!", OLD_HOURS)
        edit(prompts, "replies.yaml", "not_understood: >-", "not_understood_typo: >-")
        response = client.post("/api/catalogue/reload", headers=ADMIN)
        assert response.status_code == 422
        assert "not_understood" in response.json()["problems"][0]

        assert client.app.state.running.services is services_before
        assert hours_reply(client.app).startswith(OLD_HOURS)
