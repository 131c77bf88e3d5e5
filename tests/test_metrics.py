"""GET /metrics: a call played through the media stream moves the counters and histograms, per app."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from telephony.settings import load_settings

from .helpers import (
    SILENCE,
    STREAM_SID,
    app_client,
    call_sid,
    dtmf_message,
    media_message,
    play_until_closed,
    post_webhook,
    receive_until_mark,
    speech_frames,
    start_message,
    twilio_stream,
)

METRICS_TOKEN = "metrics-token-0123456789"


def scrape(client: TestClient, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of GET /metrics, by name and labels."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def client(voice_services):
    with app_client(voice_services) as client:
        yield client


def test_a_call_moves_the_counters_and_histograms(client):
    with twilio_stream(client) as ws:
        ws.send_json(start_message(call_sid=call_sid("metrics")))
        receive_until_mark(ws)
        during = scrape(client)
        ws.send_text("{not json")
        for frame in [SILENCE] * 10 + speech_frames() + [SILENCE] * 75:
            ws.send_json(media_message(frame))
        mark = ""
        while not mark.startswith("2."):  # marks are named <exchange>.<sentence>.<n>: 1 is the greeting
            _, mark = receive_until_mark(ws)
        ws.send_json(dtmf_message("0"))
        play_until_closed(ws)
    after = scrape(client)

    assert value(during, "voice_agent_active_calls") == 1 and value(after, "voice_agent_active_calls") == 0
    assert value(after, "voice_agent_streams_total") == 1
    assert value(after, "voice_agent_protocol_errors_total") == 1
    assert value(after, "voice_agent_asr_seconds_count") == 1  # the one utterance
    assert value(after, "voice_agent_asr_seconds_sum") > 0
    # The greeting, the reply to the utterance and the transfer sentence: all preloaded phrases.
    assert value(after, "voice_agent_tts_seconds_count", source="cached") == 3
    # Two answered turns (the utterance and the key); the greeting answers no turn.
    assert value(after, "voice_agent_turn_processing_seconds_count") == 2
    records = client.app.state.voice.registry.get(call_sid("metrics")).records
    expected_s = sum(record.processing_ms for record in records if record.processing_ms is not None) / 1000
    assert value(after, "voice_agent_turn_processing_seconds_sum") == pytest.approx(expected_s)
    # Response latency: spoken turns only, from the caller's last voiced frame to the first audio sent.
    (spoken,) = [record for record in records if record.latency is not None]
    assert value(after, "voice_agent_response_latency_seconds_count") == 1
    assert value(after, "voice_agent_response_latency_seconds_sum") == pytest.approx(
        spoken.latency.first_audio_ms / 1000
    )
    # It includes the end-of-turn silence, which the processing time after the end of turn leaves out.
    assert spoken.latency.first_audio_ms == pytest.approx(spoken.latency.end_of_turn_ms + spoken.processing_ms)
    assert value(after, "voice_agent_transfers_total", reason="dtmf_zero") == 1
    assert value(after, "voice_agent_calls_rejected_total") == 0


def test_turned_away_and_undecided_calls_are_counted_as_transfers(voice_services):
    with app_client(voice_services, max_calls=1) as client:
        post_webhook(client, "/twilio/voice", {"CallSid": call_sid("in")})
        post_webhook(client, "/twilio/voice", {"CallSid": call_sid("away")})
        # A stream that ended without a decision: /twilio/after-stream dials a person.
        post_webhook(client, "/twilio/after-stream", {"CallSid": call_sid("lost")})
        samples = scrape(client)
    assert value(samples, "voice_agent_calls_rejected_total") == 1
    assert value(samples, "voice_agent_transfers_total", reason="over_capacity") == 1
    assert value(samples, "voice_agent_transfers_total", reason="no_decision") == 1


def test_each_app_counts_only_its_own_calls(client, voice_services):
    post_webhook(client, "/twilio/voice", {"CallSid": call_sid("1")})
    with twilio_stream(client) as ws:
        ws.send_json(start_message(call_sid=call_sid("own")))
        receive_until_mark(ws)
        ws.send_json({"event": "stop", "streamSid": STREAM_SID})
    with app_client(voice_services) as other:
        assert value(scrape(other), "voice_agent_streams_total") == 0
        assert value(scrape(other), "voice_agent_tts_seconds_count", source="cached") == 0
    assert value(scrape(client), "voice_agent_streams_total") == 1


def test_a_configured_metrics_token_is_required(voice_services):
    with app_client(voice_services, metrics_token=METRICS_TOKEN) as client:
        assert client.get("/metrics").status_code == 401
        wrong = client.get("/metrics", headers={"Authorization": "Bearer " + "x" * len(METRICS_TOKEN)})
        assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"].startswith("Bearer")
        samples = scrape(client, Authorization=f"Bearer {METRICS_TOKEN}")
    assert value(samples, "voice_agent_active_calls") == 0


def test_a_short_metrics_token_stops_start_up(monkeypatch):
    from telephony.settings import SettingsError

    monkeypatch.setenv("VOICE_AGENT_METRICS_TOKEN", "short")
    with pytest.raises(SettingsError, match=r"VOICE_AGENT_METRICS_TOKEN=<hidden>: .*at least 16 characters"):
        load_settings()
