"""The HTTP side: health, the incoming-call webhook, signatures, and what happens after the stream."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from twilio.request_validator import RequestValidator

from telephony.app import create_app
from telephony.settings import load_settings
from voice.events import Action, Decision

TOKEN = "test-auth-token"


def make_client(voice_services, **settings) -> TestClient:
    app = create_app(load_settings(**settings), services=voice_services)
    return TestClient(app)


@pytest.fixture
def client(voice_services):
    with make_client(voice_services) as client:
        yield client


def test_healthz_is_200_once_models_are_loaded(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["live_calls"] == 0
    # At least the request's own task is running on the loop.
    assert body["asyncio_tasks"] >= 1


def test_healthz_is_503_before_the_models_are_loaded(voice_services):
    client = make_client(voice_services)  # not entered: the lifespan has not run
    assert client.get("/healthz").status_code == 503


def test_incoming_call_connects_a_bidirectional_stream_from_the_request_url(client):
    response = client.post("/twilio/voice", data={"CallSid": "CA1", "From": "+15005550006"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert '<Connect action="http://testserver/twilio/after-stream"' in response.text
    assert '<Stream url="ws://testserver/twilio/media"' in response.text
    assert '<Parameter name="caller" value="+15005550006" />' in response.text


def test_incoming_call_uses_the_configured_public_url(voice_services):
    with make_client(voice_services, public_url="https://voice.example.com/") as client:
        response = client.post("/twilio/voice", data={"CallSid": "CA1"})
    assert '<Stream url="wss://voice.example.com/twilio/media"' in response.text


def _signed(url: str, params: dict[str, str]) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(url, params)}


def test_webhooks_without_a_valid_signature_are_refused_when_a_token_is_set(voice_services, monkeypatch):
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    params = {"CallSid": "CA1", "From": "+15005550006"}
    with make_client(voice_services) as client:
        assert client.post("/twilio/voice", data=params).status_code == 403
        bad = {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}
        assert client.post("/twilio/voice", data=params, headers=bad).status_code == 403
        good = _signed("http://testserver/twilio/voice", params)
        assert client.post("/twilio/voice", data=params, headers=good).status_code == 200
        assert client.post("/twilio/after-stream", data=params).status_code == 403


def test_signature_behind_a_tls_proxy_uses_the_public_url(voice_services, monkeypatch):
    # The proxy terminates TLS and forwards to http://testserver; Twilio signed the public https URL.
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    params = {"CallSid": "CA1"}
    headers = _signed("https://voice.example.com/twilio/voice", params)
    with make_client(voice_services, public_url="https://voice.example.com") as client:
        assert client.post("/twilio/voice", data=params, headers=headers).status_code == 200
    with make_client(voice_services) as client:
        assert client.post("/twilio/voice", data=params, headers=headers).status_code == 403


def _finish_call(client: TestClient, call_sid: str, decision: Decision | None) -> None:
    registry = client.app.state.voice.registry
    registry.open(call_sid, "MZ" + call_sid)
    registry.finish(call_sid, decision)


def test_after_a_goodbye_the_call_hangs_up(client):
    _finish_call(client, "CA-bye", Decision(reply="Goodbye.", action=Action.END, rule="intent", intent="goodbye"))
    response = client.post("/twilio/after-stream", data={"CallSid": "CA-bye"})
    assert "<Hangup />" in response.text


def test_after_a_transfer_decision_the_department_is_dialled(client):
    decision = Decision(reply="...", action=Action.TRANSFER, rule="sensitive", department="fraud")
    _finish_call(client, "CA-fraud", decision)
    response = client.post("/twilio/after-stream", data={"CallSid": "CA-fraud"})
    assert '<Dial action="http://testserver/twilio/dial-status" method="POST" timeout="30">' in response.text
    assert 'url="http://testserver/twilio/whisper?call=CA-fraud">+15005550107</Number></Dial>' in response.text


def test_a_stream_that_ended_without_a_decision_still_reaches_a_person(client):
    response = client.post("/twilio/after-stream", data={"CallSid": "CA-unknown"})
    assert ">+15005550101</Number></Dial>" in response.text


def test_bad_deployment_file_stops_start_up_naming_it(voice_services, tmp_path):
    from telephony.twilio.deployment import DeploymentError

    path = tmp_path / "departments.yaml"
    path.write_text("departments: {}\n", encoding="utf-8")
    with pytest.raises(DeploymentError, match="departments without a target"):
        make_client(voice_services, deployment_file=path)


def test_turn_detection_is_configured_from_the_environment(monkeypatch):
    from telephony.app import turn_options

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
