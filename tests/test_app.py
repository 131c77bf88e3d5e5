"""The HTTP side: health, the incoming-call webhook, signatures, and what happens after the stream."""

from __future__ import annotations

import asyncio

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from twilio.request_validator import RequestValidator

from qa.twilio_signing import TwilioCredentials
from telephony.app import create_app
from telephony.settings import load_settings
from voice.events import Action, Decision

from .helpers import (
    STREAM_SID,
    TEST_AUTH_TOKEN,
    app_client,
    call_sid,
    media_message,
    post_webhook,
    receive_until_mark,
    speech_frames,
    start_message,
    twilio_stream,
)

TOKEN = TEST_AUTH_TOKEN


@pytest.fixture
def client(voice_services):
    with app_client(voice_services) as client:
        yield client


def test_healthz_is_200_once_models_are_loaded(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["live_calls"] == 0
    # At least the request's own task is running on the loop.
    assert body["asyncio_tasks"] >= 1


def test_healthz_is_503_before_the_models_are_loaded(voice_services):
    client = app_client(voice_services)  # not entered: the lifespan has not run
    assert client.get("/healthz").status_code == 503


def test_incoming_call_connects_a_bidirectional_stream_from_the_request_url(client):
    response = post_webhook(client, "/twilio/voice", {"CallSid": call_sid("1"), "From": "+15005550006"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert '<Connect action="http://testserver/twilio/after-stream"' in response.text
    assert '<Stream url="ws://testserver/twilio/media"' in response.text
    assert '<Parameter name="caller" value="+15005550006" />' in response.text


def test_incoming_call_uses_the_configured_public_url(voice_services):
    public = TwilioCredentials(TOKEN, "https://voice.example.com")
    with app_client(voice_services, public_url="https://voice.example.com/") as client:
        response = post_webhook(client, "/twilio/voice", {"CallSid": call_sid("1")}, public)
    assert '<Stream url="wss://voice.example.com/twilio/media"' in response.text


def _signed(url: str, params: dict[str, str]) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(url, params)}


def test_webhooks_without_a_valid_signature_are_refused_when_a_token_is_set(voice_services, monkeypatch):
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    params = {"CallSid": call_sid("1"), "From": "+15005550006"}
    with app_client(voice_services) as client:
        assert client.post("/twilio/voice", data=params).status_code == 403
        bad = {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}
        assert client.post("/twilio/voice", data=params, headers=bad).status_code == 403
        good = _signed("http://testserver/twilio/voice", params)
        assert client.post("/twilio/voice", data=params, headers=good).status_code == 200
        assert client.post("/twilio/after-stream", data=params).status_code == 403


def test_signature_behind_a_tls_proxy_uses_the_public_url(voice_services, monkeypatch):
    # The proxy terminates TLS and forwards to http://testserver; Twilio signed the public https URL.
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    params = {"CallSid": call_sid("1")}
    headers = _signed("https://voice.example.com/twilio/voice", params)
    with app_client(voice_services, public_url="https://voice.example.com") as client:
        assert client.post("/twilio/voice", data=params, headers=headers).status_code == 200
    with app_client(voice_services) as client:
        assert client.post("/twilio/voice", data=params, headers=headers).status_code == 403


def _finish_call(client: TestClient, call_sid: str, decision: Decision | None) -> None:
    registry = client.app.state.voice.registry
    registry.open(call_sid, "MZ" + call_sid)
    registry.finish(call_sid, decision)


def test_after_a_goodbye_the_call_hangs_up(client):
    _finish_call(
        client, call_sid("bye"), Decision(reply="Goodbye.", action=Action.END, rule="intent", intent="goodbye")
    )
    response = post_webhook(client, "/twilio/after-stream", {"CallSid": call_sid("bye")})
    assert "<Hangup />" in response.text


def test_after_a_transfer_decision_the_department_is_dialled(client):
    decision = Decision(reply="...", action=Action.TRANSFER, rule="sensitive", department="fraud")
    _finish_call(client, call_sid("fraud"), decision)
    response = post_webhook(client, "/twilio/after-stream", {"CallSid": call_sid("fraud")})
    assert '<Dial action="http://testserver/twilio/dial-status" method="POST" timeout="30">' in response.text
    assert (
        f'url="http://testserver/twilio/whisper?call={call_sid("fraud")}">+15005550107</Number></Dial>' in response.text
    )


def test_a_stream_that_ended_without_a_decision_still_reaches_a_person(client):
    response = post_webhook(client, "/twilio/after-stream", {"CallSid": call_sid("unknown")})
    assert ">+15005550101</Number></Dial>" in response.text


def test_bad_deployment_file_stops_start_up_naming_it(voice_services, tmp_path):
    from telephony.twilio.deployment import DeploymentError

    path = tmp_path / "departments.yaml"
    path.write_text("departments: {}\n", encoding="utf-8")
    with pytest.raises(DeploymentError, match="departments without a target"):
        app_client(voice_services, deployment_file=path)


def test_turn_detection_is_configured_from_the_environment(monkeypatch):
    from telephony.voice_services import turn_options

    monkeypatch.setenv("VOICE_AGENT_SPEECH_START_THRESHOLD", "0.3")
    monkeypatch.setenv("VOICE_AGENT_END_OF_TURN_SILENCE_MS", "1200")
    options = turn_options(load_settings())
    assert options.speech_start_threshold == 0.3
    assert options.speech_end_threshold == 0.3  # hysteresis threshold kept at or below the start threshold
    assert options.end_of_turn_silence_ms == 1200


def test_bad_turn_setting_names_the_variable(monkeypatch):
    from telephony.settings import SettingsError

    monkeypatch.setenv("VOICE_AGENT_END_OF_TURN_SILENCE_MS", "50")
    with pytest.raises(SettingsError, match=r"VOICE_AGENT_END_OF_TURN_SILENCE_MS=.*50"):
        load_settings()


def test_the_media_stream_is_refused_with_try_again_later_before_the_models_are_loaded(voice_services):
    client = app_client(voice_services)  # not entered: the lifespan has not run
    with pytest.raises(WebSocketDisconnect) as closed, twilio_stream(client) as ws:
        ws.receive_json()
    assert closed.value.code == 1013


def test_the_vad_model_is_loaded_at_start_up_off_the_event_loop_before_ready(voice_services, monkeypatch):
    from voice import vad

    real_load = vad.load_session
    loads: list[dict[str, bool]] = []
    client = app_client(voice_services)

    def recorded_load(path, expected_sha256):
        try:
            asyncio.get_running_loop()
            on_event_loop = True
        except RuntimeError:
            on_event_loop = False
        loads.append({"on_event_loop": on_event_loop, "ready": hasattr(client.app.state, "running")})
        return real_load(path, expected_sha256)

    monkeypatch.setattr(vad, "load_session", recorded_load)
    vad._vad_session.cache_clear()  # as in a new process: nothing loaded yet
    assert loads == []  # building the app loads no model
    with client:
        assert loads == [{"on_event_loop": False, "ready": False}]
        assert client.get("/healthz").status_code == 200
        with twilio_stream(client) as ws:
            ws.send_json(start_message(call_sid=call_sid("vad")))
            receive_until_mark(ws)
            for frame in speech_frames()[:50]:  # the call's VAD scores real speech
                ws.send_json(media_message(frame))
            ws.send_json({"event": "stop", "streamSid": STREAM_SID})
        assert client.app.state.voice.registry.get(call_sid("vad")).failure is None
    # The call's pipeline used the session loaded at start-up.
    assert len(loads) == 1
    assert vad._vad_session.cache_info().misses == 1


# --- served without the models (the lifespan does not run: no `with`) ----------------------------------------------


def test_the_root_leads_to_the_desk():
    client = TestClient(create_app(load_settings()))
    response = client.get("/", follow_redirects=False)
    assert response.is_redirect and response.headers["location"] == "/desk"


def test_the_api_documentation_is_not_served_unless_asked_for(monkeypatch):
    client = TestClient(create_app(load_settings()))
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(path).status_code == 404, path
    monkeypatch.setenv("VOICE_AGENT_API_DOCS", "true")
    client = TestClient(create_app(load_settings()))
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(path).status_code == 200, path


def test_the_schema_names_each_token_in_its_own_security_scheme():
    schema = TestClient(create_app(load_settings(api_docs=True))).get("/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert set(schemes) == {"AgentOrAdminToken", "DeskSession", "MetricsToken"}
    agent_or_admin = schemes["AgentOrAdminToken"]
    assert agent_or_admin["scheme"] == "bearer"
    assert "VOICE_AGENT_AGENT_TOKEN" in agent_or_admin["description"]
    assert "VOICE_AGENT_ADMIN_TOKEN" in agent_or_admin["description"]
    assert schemes["MetricsToken"]["description"].startswith("VOICE_AGENT_METRICS_TOKEN")
    paths = schema["paths"]
    assert paths["/metrics"]["get"]["security"] == [{"MetricsToken": []}]
    assert paths["/api/calls"]["get"]["security"] == [{"AgentOrAdminToken": []}, {"DeskSession": []}]
    # The admin's routes say that they need the admin role; an agent's do not.
    assert "VOICE_AGENT_ADMIN_TOKEN" in paths["/api/purge"]["post"]["responses"]["403"]["description"]
    assert "403" not in paths["/api/calls"]["get"]["responses"]
