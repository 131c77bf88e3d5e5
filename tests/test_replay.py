"""`voice-agent replay`: fixture calls through the real Media Streams path, and the report they leave.

The end-to-end tests read the session's replay of the fixture suite (`suite_replay` in conftest.py: every call in
audio_fixtures/calls at once against the in-process server with the real models) and check the report of three
of its calls in detail; one more replays a call against a server that breaks the protocol. Latencies are checked
for being recorded, never for their size. The fixture format, the expectations, the HTML report and the Twilio
emulation have their own tests (test_replay_fixtures.py, test_replay_suite.py, test_replay_html.py,
test_twilio_emulator.py).
"""

from __future__ import annotations

import asyncio
import base64
import json
import wave
from pathlib import Path

import numpy as np
import pytest
import yaml
from fastapi import FastAPI, Response, WebSocket

from qa.fixtures import CallerVoice, load_fixture, prepare_call
from qa.loopback_server import LoopbackServer
from qa.replay import replay_calls
from qa.report import ReplayResult
from telephony.twilio import twiml

# The in-process server uses uvicorn's legacy websockets implementation, as `voice-agent serve` does.
pytestmark = pytest.mark.filterwarnings("ignore:remove second argument of ws_handler:DeprecationWarning")

REPO = Path(__file__).resolve().parent.parent
REPLAYED = ("billing_then_agent", "press_zero", "barge_in")
FRAME = bytes([0x10]) * 160


# --- end to end: the suite's calls against the in-process server -------------------------------------------------


@pytest.fixture(scope="module")
def replayed(suite_replay: ReplayResult) -> ReplayResult:
    return suite_replay


@pytest.fixture(scope="module")
def calls(replayed: ReplayResult) -> dict[str, dict]:
    return {call.name: call.data for call in replayed.calls}


def test_every_call_completes_without_protocol_violations(replayed, calls):
    assert replayed.exit_code == 0
    for name in REPLAYED:
        data = calls[name]
        assert data["completed"] and data["ok"], name
        assert data["protocol"]["violations"] == 0, data["protocol"]["examples"]
        assert data["protocol"]["server_reported_errors"] == 0


def test_the_greeting_comes_first(calls):
    for name in REPLAYED:
        greeting = calls[name]["greeting"]
        assert greeting["exchange"]["caller"] is None
        assert greeting["exchange"]["decision"]["rule"] == "greeting"
        assert greeting["exchange"]["decision"]["reply"].startswith(
            "Hello, this is Brightline's automated AI assistant"
        )
    # Listening to the greeting: the agent spoke before the caller's first turn.
    billing = calls["billing_then_agent"]
    assert billing["greeting"]["first_audio_ms"] < billing["turns"][0]["voiced_start_ms"]
    assert billing["greeting"]["exchange"]["heard_in_full"]


def test_asking_for_an_agent_about_a_bill_transfers_to_billing(calls):
    data = calls["billing_then_agent"]
    assert data["ended"]["by"] == "server_closed" and data["ended"]["close_code"] == 1000
    assert data["ended"]["outcome"] == {"action": "transfer", "department": "billing"}
    bill, agent = data["turns"]
    assert bill["exchanges"][0]["decision"]["intent"] == "billing_question"
    assert bill["transcript"]
    decision = agent["exchanges"][-1]["decision"]
    assert decision["action"] == "transfer" and decision["department"] == "billing"
    assert decision["reasons"]


def test_after_stream_dials_the_billing_number(calls):
    departments = yaml.safe_load((REPO / "deploy" / "departments.yaml").read_text(encoding="utf-8"))["departments"]
    after_stream = calls["billing_then_agent"]["after_stream"]
    assert after_stream["status"] == 200 and after_stream["verb"] == "Dial"
    assert "<Dial " in after_stream["twiml"]
    assert departments["billing"]["number"] in after_stream["twiml"]


def test_pressing_zero_during_the_greeting_transfers_at_once(calls):
    data = calls["press_zero"]
    _pause, key = data["turns"]
    assert key["exchanges"][0]["caller"] == {"dtmf": "0"}
    decision = key["exchanges"][0]["decision"]
    assert decision["rule"] == "dtmf_zero" and decision["action"] == "transfer"
    assert data["ended"]["outcome"]["action"] == "transfer"
    # The key press interrupted the greeting: Twilio was told to drop it.
    assert key["barge_in"] is not None and data["agent_audio"]["clears_at_ms"]
    assert "<Dial " in data["after_stream"]["twiml"]


def test_talking_over_the_greeting_gets_a_clear(calls):
    data = calls["barge_in"]
    barging = data["turns"][1]
    assert barging["barge_in"]["agent_audio_buffered_ms"] > 0
    assert isinstance(barging["barge_in"]["clear_after_ms"], float)
    assert data["agent_audio"]["clears_at_ms"]
    assert data["agent_audio"]["frames_cleared"] > 0
    assert data["greeting"]["exchange"]["interrupted"]
    # The caller was still answered after the interruption.
    assert barging["exchanges"] and barging["exchanges"][0]["decision"]["action"] == "reply"


def test_latencies_are_recorded_for_every_spoken_turn_and_key(calls):
    for name in REPLAYED:
        for turn in calls[name]["turns"]:
            if turn["kind"] in ("say", "audio", "dtmf"):
                assert isinstance(turn["response_latency_ms"], float), (name, turn["index"])
                assert turn["voiced_start_ms"] is not None and turn["voiced_end_ms"] is not None
        assert isinstance(calls[name]["greeting"]["first_audio_ms"], float)


def test_report_files_are_written(replayed):
    summary = replayed.summary_path.read_text(encoding="utf-8")
    for call in replayed.calls:
        assert f"| {call.name} | ok |" in summary
        assert json.loads(call.json_path.read_text(encoding="utf-8"))["call_sid"].startswith("CA")
        with wave.open(str(call.wav_path), "rb") as reader:
            assert reader.getnchannels() == 2
            assert reader.getframerate() == 8000
            assert reader.getsampwidth() == 2
            samples = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2").reshape(-1, 2)
        caller, agent = samples[:, 0].astype(np.float64), samples[:, 1].astype(np.float64)
        assert np.sqrt(np.mean(agent**2)) > 100, "the agent channel is silent"
        if call.name not in ("press_zero", "nl_toets_nul"):  # the caller only presses keys
            assert np.sqrt(np.mean(caller**2)) > 100, "the caller channel is silent"


def test_a_server_that_breaks_the_protocol_fails_the_replay(tmp_path):
    misbehaving = FastAPI()

    @misbehaving.post("/twilio/voice")
    async def incoming_call() -> Response:
        # Any call is connected to the stream (this fake checks no signature).
        body = twiml.connect_stream(server.http_base, {"ticket": "anything"})
        return Response(body, media_type="application/xml")

    @misbehaving.websocket("/twilio/media")
    async def stream(websocket: WebSocket) -> None:
        await websocket.accept()
        while True:
            message = json.loads(await websocket.receive_text())
            if message["event"] == "start":
                sid = message["streamSid"]
                payload = base64.b64encode(FRAME).decode()
                await websocket.send_json({"event": "media", "streamSid": "MZother", "media": {"payload": payload}})
                short = base64.b64encode(FRAME[:80]).decode()
                await websocket.send_json({"event": "media", "streamSid": sid, "media": {"payload": short}})
                await websocket.send_json({"event": "mark", "streamSid": sid, "mark": {"name": "end"}})
                await websocket.close()
                return

    server = LoopbackServer(misbehaving, name="misbehaving-server")

    async def scenario() -> ReplayResult:
        fixture = tmp_path / "call.json"
        fixture.write_text(json.dumps({"name": "bad_server", "turns": [{"pause_ms": 200}]}), encoding="utf-8")
        call = prepare_call(load_fixture(fixture), CallerVoice())
        return await replay_calls([call], tmp_path / "report", server_url=server.ws_url, progress=lambda line: None)

    with server:
        result = asyncio.run(scenario())
    data = result.calls[0].data
    assert data["protocol"]["violations"] == 2
    assert any("for stream 'MZother'" in example for example in data["protocol"]["examples"])
    assert data["ended"]["by"] == "server_closed" and data["completed"] and not data["ok"]
    assert result.exit_code == 1
    # Against --server the transcripts and decisions are not known yet, and the report says so.
    assert data["turns"][0]["exchanges"] is None and data["greeting"]["exchange"] is None
    assert "not available" in data["server_data"]
