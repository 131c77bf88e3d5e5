"""`voice-agent replay`: fixture calls through the real Media Streams path, and the pieces that emulate Twilio.

The end-to-end tests replay three fixture calls at once against the in-process server with the real models (one
module-scoped run, about 45 s of call time) and check the report; the rest are unit tests without models.
Latencies are checked for being recorded, never for their size.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
import yaml

from telephony.replay import (
    AgentClear,
    AgentMark,
    AgentMedia,
    CallerVoice,
    FixtureError,
    PlaybackBuffer,
    ReplayResult,
    ServerProtocolError,
    TwilioSide,
    check_server_message,
    load_fixture,
    load_fixtures,
    prepare_call,
    replay_calls,
    run_replay,
    voiced_frames,
)
from telephony.twilio_messages import Dtmf, Mark, Media, Start, Stop, parse_inbound
from voice.codec import pcm16_to_mulaw

# The in-process server uses uvicorn's legacy websockets implementation, as `voice-agent serve` does.
pytestmark = pytest.mark.filterwarnings("ignore:remove second argument of ws_handler:DeprecationWarning")

REPO = Path(__file__).resolve().parent.parent
CALLS = REPO / "audio_fixtures" / "calls"
REPLAYED = ("billing_then_agent", "press_zero", "barge_in")


# --- end to end: three calls against the in-process server -----------------------------------------------------


@pytest.fixture(scope="module")
def replayed(voice_services, tmp_path_factory) -> ReplayResult:
    report_dir = tmp_path_factory.mktemp("replay-report")
    progress: list[str] = []
    return run_replay(
        [CALLS / f"{name}.json" for name in REPLAYED],
        report_dir,
        parallel=True,
        services=voice_services,
        progress=progress.append,
    )


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
        assert greeting["exchange"]["decision"]["reply"].startswith("Hello, you are talking to")
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
    assert "<Dial>" in after_stream["twiml"]
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
    assert "<Dial>" in data["after_stream"]["twiml"]


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
        if call.name != "press_zero":
            assert np.sqrt(np.mean(caller**2)) > 100, "the caller channel is silent"


def test_a_server_that_breaks_the_protocol_fails_the_replay(tmp_path):
    from websockets.asyncio.server import serve

    async def misbehaving(websocket) -> None:
        async for text in websocket:
            message = json.loads(text)
            if message["event"] == "start":
                sid = message["streamSid"]
                payload = base64.b64encode(FRAME).decode()
                await websocket.send(
                    json.dumps({"event": "media", "streamSid": "MZother", "media": {"payload": payload}})
                )
                short = base64.b64encode(FRAME[:80]).decode()
                await websocket.send(json.dumps({"event": "media", "streamSid": sid, "media": {"payload": short}}))
                await websocket.send(json.dumps({"event": "mark", "streamSid": sid, "mark": {"name": "end"}}))
                await websocket.close()

    async def scenario() -> ReplayResult:
        async with serve(misbehaving, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            fixture = _write(tmp_path, {"name": "bad_server", "turns": [{"pause_ms": 200}]})
            call = prepare_call(load_fixture(fixture), CallerVoice())
            url = f"ws://127.0.0.1:{port}/twilio/media"
            return await replay_calls([call], tmp_path / "report", server_url=url, progress=lambda line: None)

    result = asyncio.run(scenario())
    data = result.calls[0].data
    assert data["protocol"]["violations"] == 2
    assert any("for stream 'MZother'" in example for example in data["protocol"]["examples"])
    assert data["ended"]["by"] == "server_closed" and data["completed"] and not data["ok"]
    assert result.exit_code == 1
    # Against --server the transcripts and decisions are not known yet, and the report says so.
    assert data["turns"][0]["exchanges"] is None and data["greeting"]["exchange"] is None
    assert "not available" in data["server_data"]


# --- fixture validation -------------------------------------------------------------------------------------------


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
    assert {item.fixture.name for item in loaded} >= {*REPLAYED, "goodbye", "number_with_pauses"}


def test_a_bad_wait_names_the_file_and_the_turn(tmp_path):
    path = _write(tmp_path, {"name": "x", "turns": [{"say": "hello"}, {"say": "hi", "wait": "later"}]})
    assert "turns[1].wait:" in _error(path)


def test_a_turn_of_no_known_kind_is_refused(tmp_path):
    path = _write(tmp_path, {"name": "x", "turns": [{"shout": "hello"}]})
    message = _error(path)
    assert "turns[0]:" in message and "exactly one of" in message


def test_a_turn_of_two_kinds_is_refused(tmp_path):
    assert "turns[0]:" in _error(_write(tmp_path, {"name": "x", "turns": [{"say": "hi", "dtmf": "0"}]}))


def test_unknown_fields_are_refused(tmp_path):
    assert "colour:" in _error(_write(tmp_path, {"name": "x", "colour": "blue", "turns": [{"dtmf": "1"}]}))
    path = _write(tmp_path, {"name": "x", "turns": [{"dtmf": "1", "loud": True}]}, "turn.json")
    assert "turns[0].loud:" in _error(path)


def test_a_bad_key_and_missing_fields_are_named(tmp_path):
    assert "turns[0].dtmf:" in _error(_write(tmp_path, {"name": "x", "turns": [{"dtmf": "A"}]}))
    assert "name:" in _error(_write(tmp_path, {"turns": [{"dtmf": "1"}]}, "anonymous.json"))
    assert "turns:" in _error(_write(tmp_path, {"name": "x", "turns": []}, "empty.json"))


def test_hangup_must_be_the_last_turn(tmp_path):
    path = _write(tmp_path, {"name": "x", "turns": [{"hangup": True}, {"say": "hello"}]})
    assert "turns[0].hangup: a hang-up must be the last turn" in _error(path)


def test_missing_or_unusable_audio_is_named(tmp_path):
    assert "turns[0].audio:" in _error(_write(tmp_path, {"name": "x", "turns": [{"audio": "nowhere.wav"}]}))
    with wave.open(str(tmp_path / "stereo.wav"), "wb") as writer:
        writer.setnchannels(2)
        writer.setsampwidth(2)
        writer.setframerate(16000)
        writer.writeframes(bytes(6400))
    message = _error(_write(tmp_path, {"name": "x", "turns": [{"audio": "stereo.wav"}]}, "stereo.json"))
    assert "turns[0].audio:" in message and "mono" in message


def test_invalid_json_and_missing_files_are_named(tmp_path):
    assert "not valid JSON" in _error(_write(tmp_path, '{"name": "x", "turns": [}'))
    assert "not found" in _error(tmp_path / "absent.json")


def test_two_fixtures_with_one_name_are_refused(tmp_path):
    first = _write(tmp_path, {"name": "same", "turns": [{"dtmf": "1"}]}, "a.json")
    second = _write(tmp_path, {"name": "same", "turns": [{"dtmf": "2"}]}, "b.json")
    with pytest.raises(FixtureError, match=r"b\.json: name: 'same' is also the name of .*a\.json"):
        load_fixtures([first, second])


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
    assert f"{path}: turns[0].pause_ms:" in result.stderr
    assert not (tmp_path / "report").exists()


# --- the playback buffer, as Twilio plays ----------------------------------------------------------------------------

FRAME = bytes([0x10]) * 160


def test_marks_are_echoed_in_order_once_their_audio_has_played():
    buffer = PlaybackBuffer()
    buffer.add_media(FRAME)
    buffer.add_media(FRAME)
    buffer.add_mark("first")
    buffer.add_media(FRAME)
    buffer.add_mark("second")
    buffer.add_mark("third")
    ticks = [buffer.tick() for _ in range(5)]
    assert [tick.frame is not None for tick in ticks] == [True, True, True, False, False]
    # A mark is reached on the tick after its last frame: that frame has then finished playing.
    assert [tick.marks for tick in ticks] == [(), (), ("first",), ("second", "third"), ()]
    assert buffer.idle and buffer.frames_played == 3


def test_a_mark_with_no_audio_before_it_is_echoed_on_the_next_tick():
    buffer = PlaybackBuffer()
    buffer.add_mark("alone")
    assert not buffer.idle
    assert buffer.tick().marks == ("alone",)
    assert buffer.idle


def test_clear_drops_the_audio_and_returns_the_pending_marks_in_order():
    buffer = PlaybackBuffer()
    for name in ("a", "b"):
        buffer.add_media(FRAME)
        buffer.add_media(FRAME)
        buffer.add_mark(name)
    buffer.tick()
    assert buffer.buffered_frames == 3
    assert buffer.clear() == ("a", "b")
    assert buffer.idle and buffer.buffered_frames == 0 and buffer.frames_cleared == 3
    assert buffer.tick().frame is None


# --- messages, both ways -------------------------------------------------------------------------------------------


def test_twilio_side_messages_are_accepted_by_the_server_parser():
    twilio = TwilioSide.random()
    assert twilio.call_sid.startswith("CA") and twilio.stream_sid.startswith("MZ") and len(twilio.call_sid) == 34
    json.loads(twilio.connected())
    start = parse_inbound(twilio.start())
    assert isinstance(start, Start) and start.start.call_sid == twilio.call_sid
    assert start.start.media_format.encoding == "audio/x-mulaw" and start.start.media_format.sample_rate == 8000
    first, second = parse_inbound(twilio.media(FRAME, 0)), parse_inbound(twilio.media(FRAME, 20))
    assert isinstance(second, Media) and second.media.payload == FRAME and second.media.timestamp_ms == 20
    assert (first.media.chunk, second.media.chunk) == (1, 2)
    assert second.sequence_number == first.sequence_number + 1
    key = parse_inbound(twilio.dtmf("0"))
    assert isinstance(key, Dtmf) and key.dtmf.digit == "0" and key.dtmf.track == "inbound_track"
    assert isinstance(parse_inbound(twilio.mark("1.0.1")), Mark)
    assert isinstance(parse_inbound(twilio.stop()), Stop)


def _server(event: str, stream_sid: str = "MZ1", **body: object) -> str:
    return json.dumps({"event": event, "streamSid": stream_sid, **body})


def test_server_messages_are_checked_as_twilio_would():
    payload = base64.b64encode(FRAME).decode()
    assert check_server_message(_server("media", media={"payload": payload}), "MZ1") == AgentMedia(FRAME)
    assert check_server_message(_server("mark", mark={"name": "m"}), "MZ1") == AgentMark("m")
    assert check_server_message(_server("clear"), "MZ1") == AgentClear()
    bad = {
        "for stream 'MZ2', expected 'MZ1'": _server("clear", stream_sid="MZ2"),
        "160": _server("media", media={"payload": base64.b64encode(FRAME[:80]).decode()}),
        "base64": _server("media", media={"payload": "not base64!"}),
        "expected 'media'": _server("play"),
        "mark.name": _server("mark", mark={}),
        "not JSON": "{",
        "binary": b"\x00",
    }
    for expected, message in bad.items():
        with pytest.raises(ServerProtocolError) as caught:
            check_server_message(message, "MZ1")
        assert expected in str(caught.value)


def test_voiced_frames_are_judged_by_energy():
    silence = bytes([0xFF]) * 160
    tone = pcm16_to_mulaw((8000 * np.sin(np.arange(160) * 2 * np.pi * 440 / 8000)).astype(np.int16))
    hiss = pcm16_to_mulaw(np.full(160, 20, dtype=np.int16))  # about -64 dBFS: line noise, not speech
    assert voiced_frames([silence, tone, hiss]) == (False, True, False)
