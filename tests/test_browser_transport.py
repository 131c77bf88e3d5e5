"""The browser call's transport, driven over the TestClient's WebSocket with a scripted pipeline (no models): who gets
in, the message protocol both ways, malformed and out-of-order input, admission, hang-up and cut-short calls, and the
call page's route. The real call, in Chromium with the real models, is tests/test_browser_call.py."""

from __future__ import annotations

import asyncio
import json
import re
from typing import ClassVar

import numpy as np
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from telephony import session as session_module
from telephony.app import create_app
from telephony.browser import protocol
from telephony.browser.call import CUT_SHORT, RealTimeBudget
from telephony.browser.router import LOADING
from telephony.calls import CallState
from telephony.settings import DEFAULT_PROMPTS_DIR, load_settings
from telephony.state import Running
from voice.events import Action, Decision, Dtmf
from voice.pipeline import TurnRecord
from voice.prompts import Catalogue, load_catalogue

AGENT_TOKEN = "browser-agent-token-0123456789"
CALL_ID = re.compile(r"^BR[0-9a-f]{32}$")
GREETING = Decision(reply="Hello, I am an automated AI assistant.", action=Action.REPLY, rule="greeting")
TRANSFER = Decision(
    reply="I am passing you to our billing team.",
    action=Action.TRANSFER,
    rule="dtmf_zero",
    intent="speak_to_person",
    confidence=1.0,
    department="billing",
    transfer_reason="the caller pressed 0 for a person",
    reasons=("rule dtmf_zero", "key 0 always reaches a person"),
)
TONE = (0.25 * np.sin(np.arange(8000) * 2 * np.pi * 440 / 16000)).astype(np.float32)
"""Half a second of agent audio at 16 kHz."""


class ScriptedPipeline:
    """Stands in for `voice.pipeline.CallPipeline`: greets with a tone, records what the transport feeds it, barges in
    on key 9 and transfers on key 0 once the transfer sentence's mark is back, as the real pipeline would."""

    made: ClassVar[list[ScriptedPipeline]] = []
    catalogue: ClassVar[Catalogue] = load_catalogue(DEFAULT_PROMPTS_DIR, "en")
    """The call's catalogue, as the real pipeline's engine has it: the handoff's sentences."""

    def __init__(self, services, output, call_id: str = "call") -> None:
        self.output = output
        self.call_id = call_id
        self.records: list[TurnRecord] = []
        self.audio: list[tuple[np.ndarray, int]] = []
        self.marks: list[str] = []
        self.keys: list[str] = []
        self.failure: str | None = None
        self.closed = False
        self._handed_over = False
        self._pending: dict[str, asyncio.Event] = {}
        self._tasks: set[asyncio.Task] = set()
        ScriptedPipeline.made.append(self)

    @property
    def finished(self) -> bool:
        return self._handed_over

    async def _say(self, record: TurnRecord, mark: str) -> asyncio.Event:
        self.records.append(record)
        self.output.decided(record)
        self._pending[mark] = asyncio.Event()
        await self.output.play(TONE, mark)
        return self._pending[mark]

    async def start(self) -> None:
        await self._say(TurnRecord(caller=None, decision=GREETING), "1.0.1")

    def feed_audio(self, pcm: np.ndarray, sample_rate_hz: int) -> None:
        self.audio.append((pcm, sample_rate_hz))

    def feed_dtmf(self, digit: str) -> None:
        self.keys.append(digit)
        if digit == "9":
            self._run(self.output.interrupt())
        elif digit == "0":
            self._run(self._transfer())

    async def _transfer(self) -> None:
        played = await self._say(TurnRecord(caller=Dtmf("0"), decision=TRANSFER), "2.0.2")
        await played.wait()
        self._handed_over = True
        await self.output.hand_over(TRANSFER)

    def _run(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def marked(self, name: str) -> None:
        self.marks.append(name)
        if name in self._pending:
            self._pending[name].set()

    async def close(self) -> None:
        self.closed = True
        self._handed_over = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@pytest.fixture(autouse=True)
def _scripted_pipeline(monkeypatch):
    for name in ("VOICE_AGENT_AGENT_TOKEN", "VOICE_AGENT_ADMIN_TOKEN", "VOICE_AGENT_MAX_CALLS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(session_module, "CallPipeline", ScriptedPipeline)
    ScriptedPipeline.made = []


def make_client(ready: bool = True, log_in: bool = True, **settings) -> TestClient:
    """A client of the real app without its lifespan (no models): `Running` holds only what the browser call uses,
    and the scripted pipeline replaces the voice pipeline. The database is made, as the audit trail records logins."""
    app = create_app(load_settings(agent_token=AGENT_TOKEN, **settings))
    app.state.voice.store.migrate()
    if ready:
        app.state.running = Running(services=None, writer=None, pseudonyms=None, records=None)
    client = TestClient(app)
    if log_in:
        assert client.post("/desk/login", json={"token": AGENT_TOKEN}).status_code == 200
    return client


def receive(ws) -> dict | bytes:
    message = ws.receive()
    if message.get("bytes") is not None:
        return message["bytes"]
    if message["type"] == "websocket.close":
        raise WebSocketDisconnect(message.get("code", 1000))
    return json.loads(message["text"])


def receive_until_mark(ws) -> tuple[list[dict | bytes], str]:
    """Messages up to and including the next mark; returns them and the mark's name."""
    messages = []
    while True:
        message = receive(ws)
        messages.append(message)
        if isinstance(message, dict) and message["type"] == "mark":
            return messages, message["name"]


def start_call(ws, **start) -> tuple[str, list[dict | bytes]]:
    """Send ``start``; returns the call id and the greeting's messages up to its mark."""
    ws.send_json({"type": "start", **start})
    ready = receive(ws)
    assert ready["type"] == "ready", ready
    messages, _mark = receive_until_mark(ws)
    return ready["call_id"], messages


def closed_with(ws) -> tuple[int, list[dict | bytes]]:
    """Read until the server closes; returns the close code and what came before it."""
    seen = []
    with pytest.raises(WebSocketDisconnect) as closed:
        while True:
            seen.append(receive(ws))
    return closed.value.code, seen


# --- who gets in --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cookie", "headers"),
    [
        (None, {}),  # no desk session
        ("not-a-session", {}),
        ("valid", {"origin": "https://elsewhere.example"}),  # another site's page, even with the cookie
    ],
)
def test_a_call_needs_a_desk_session_from_this_origin(cookie, headers):
    client = make_client(log_in=cookie == "valid")
    if cookie not in (None, "valid"):
        client.cookies.set("voice_agent_desk", cookie)
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/browser/call", headers=headers):
        pass
    assert refused.value.code == 1008
    assert client.app.state.voice.registry.all() == []


def test_this_servers_own_origin_is_let_in():
    client = make_client()
    with client.websocket_connect("/browser/call", headers={"origin": "http://testserver"}) as ws:
        call_id, _ = start_call(ws)
        ws.send_json({"type": "hangup"})
    assert CALL_ID.match(call_id)


def test_no_token_configured_means_no_call():
    app = create_app(load_settings())
    app.state.running = Running(services=None, writer=None, pseudonyms=None, records=None)
    with pytest.raises(WebSocketDisconnect), TestClient(app).websocket_connect("/browser/call"):
        pass


def test_while_the_models_load_the_page_is_told_to_try_again():
    client = make_client(ready=False)
    with client.websocket_connect("/browser/call") as ws:
        code, seen = closed_with(ws)
    assert code == 1013
    assert seen == [{"type": "error", "detail": LOADING}]


# --- the protocol -----------------------------------------------------------------------------------------------


def test_a_call_from_start_to_a_transfer():
    client = make_client()
    registry = client.app.state.voice.registry
    with client.websocket_connect("/browser/call") as ws:
        ws.send_json({"type": "start", "sample_rate": 16000, "encoding": "pcm_s16le"})
        ready = receive(ws)
        assert ready["type"] == "ready" and CALL_ID.match(ready["call_id"])
        assert ready["sample_rate"] == 16000 and ready["encoding"] == "pcm_s16le"
        call_id = ready["call_id"]
        assert registry.get(call_id).state is CallState.LIVE  # on the desk

        # The greeting: its decision before its audio, the audio in chunks of at most 100 ms of int16, then the mark.
        messages, mark = receive_until_mark(ws)
        decision = messages[0]
        assert decision == {
            "type": "decision",
            "index": 1,
            "caller": None,
            "decision": {
                "intent": None,
                "confidence": 0.0,
                "action": "reply",
                "reply": GREETING.reply,
                "rule": "greeting",
                "reasons": [],
                "department": None,
                "transfer_reason": None,
            },
        }
        chunks = messages[1:-1]
        assert all(isinstance(chunk, bytes) and len(chunk) <= 3200 for chunk in chunks)
        played = np.frombuffer(b"".join(chunks), dtype="<i2")
        np.testing.assert_allclose(played / 32768, TONE, atol=1 / 32768)
        assert mark == "1.0.1"

        # Caller audio, a mark back, and a key: all reach the pipeline.
        caller = (np.arange(320) - 160).astype("<i2")
        ws.send_bytes(caller.tobytes())
        ws.send_json({"type": "mark", "name": mark})
        ws.send_json({"type": "dtmf", "digit": "0"})

        # The transfer: its decision (with the key), its audio and mark; once the mark is back, the handover.
        messages, mark = receive_until_mark(ws)
        assert messages[0]["caller"] == {"kind": "dtmf", "digit": "0"}
        assert messages[0]["decision"]["reasons"] == list(TRANSFER.reasons)
        assert messages[0]["decision"]["department"] == "billing"
        ws.send_json({"type": "mark", "name": mark})
        code, seen = closed_with(ws)
    assert code == 1000
    assert seen == [
        {
            "type": "handover",
            "action": "transfer",
            "department": "billing",
            "rule": "dtmf_zero",
            "reason": "the caller pressed 0 for a person",
        }
    ]
    pipeline = ScriptedPipeline.made[0]
    (pcm, rate), *_ = pipeline.audio
    assert rate == 16000 and pcm.dtype == np.float32
    np.testing.assert_array_equal(pcm, caller / np.float32(32768))
    assert pipeline.marks == ["1.0.1", "2.0.2"] and pipeline.keys == ["0"]
    call = registry.get(call_id)
    assert call.state is CallState.FINISHED and call.failure is None
    assert call.outcome.action is Action.TRANSFER
    assert call.handoff is not None and call.handoff.department == "billing"
    assert call.stream_sid == ""  # no Twilio stream


def test_a_barge_in_tells_the_page_to_clear():
    client = make_client()
    with client.websocket_connect("/browser/call") as ws:
        start_call(ws)
        ws.send_json({"type": "dtmf", "digit": "9"})
        assert receive(ws) == {"type": "clear"}
        ws.send_json({"type": "hangup"})


def test_float32_audio_at_the_devices_rate_is_taken_and_made_safe():
    client = make_client()
    with client.websocket_connect("/browser/call") as ws:
        start_call(ws, sample_rate=48000, encoding="pcm_f32le")
        ws.send_bytes(np.array([0.5, np.nan, 3.0, -np.inf], dtype="<f4").tobytes())
        ws.send_json({"type": "hangup"})
    ((pcm, rate),) = ScriptedPipeline.made[0].audio
    assert rate == 48000
    assert pcm.tolist() == [0.5, 0.0, 1.0, 0.0]


def test_malformed_messages_are_counted_and_the_call_goes_on():
    client = make_client()
    counters = client.app.state.voice.counters
    with client.websocket_connect("/browser/call") as ws:
        call_id, _ = start_call(ws)
        ws.send_text("{not json")
        ws.send_json({"type": "a-future-type"})
        ws.send_json({"type": "dtmf", "digit": "12"})
        ws.send_json({"type": "mark"})  # no name
        ws.send_json({"type": "mark", "name": "x" * 2000})  # over the text limit
        ws.send_bytes(b"\x00\x01\x02")  # not whole int16 samples
        ws.send_bytes(bytes(protocol.MAX_AUDIO_BYTES + 2))
        ws.send_json({"type": "dtmf", "digit": "9"})  # still answered
        assert receive(ws) == {"type": "clear"}
        ws.send_json({"type": "hangup"})
    assert counters.protocol_errors == 7
    assert client.app.state.voice.registry.get(call_id).protocol_errors == 7
    assert ScriptedPipeline.made[0].audio == []


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (b"\x00\x00", None),  # audio before start
        ({"type": "mark", "name": "1.0.1"}, None),
        ({"type": "dtmf", "digit": "0"}, None),
        ({"type": "start"}, {"type": "start"}),  # a second start
    ],
)
def test_messages_out_of_order_close_the_call(first, second):
    client = make_client()
    counters = client.app.state.voice.counters
    with client.websocket_connect("/browser/call") as ws:
        send = ws.send_bytes if isinstance(first, bytes) else ws.send_json
        if second is None:
            send(first)
        else:
            start_call(ws)
            ws.send_json(second)
        code, seen = closed_with(ws)
    assert code == 1008
    assert seen[-1]["type"] == "error" and seen[-1]["detail"].startswith("protocol error: ")
    assert counters.protocol_closes == 1
    for call in client.app.state.voice.registry.all():
        assert call.state is CallState.FINISHED
        assert call.failure.startswith("browser call closed for breaking the protocol")


def test_no_start_in_time_closes_the_socket(monkeypatch):
    monkeypatch.setattr(protocol, "START_TIMEOUT_S", 0.1)
    client = make_client()
    with client.websocket_connect("/browser/call") as ws:
        code, seen = closed_with(ws)
    assert code == 1008
    assert seen == [{"type": "error", "detail": "protocol error: no 'start' within 0.1 s"}]


def test_a_hang_up_ends_the_call_and_a_lost_connection_is_its_failure():
    client = make_client()
    registry = client.app.state.voice.registry
    with client.websocket_connect("/browser/call") as ws:
        hung_up, _ = start_call(ws)
        ws.send_json({"type": "hangup"})
    with client.websocket_connect("/browser/call") as ws:
        dropped, _ = start_call(ws)
    for call_id in (hung_up, dropped):
        assert registry.get(call_id).state is CallState.FINISHED
    assert registry.get(hung_up).failure is None
    assert registry.get(dropped).failure == CUT_SHORT
    assert all(pipeline.closed for pipeline in ScriptedPipeline.made)


def test_over_the_call_limit_the_page_hears_why_and_the_call_is_recorded():
    client = make_client(max_calls=1)
    registry = client.app.state.voice.registry
    with client.websocket_connect("/browser/call") as first:
        start_call(first)
        with client.websocket_connect("/browser/call") as second:
            second.send_json({"type": "start"})
            code, seen = closed_with(second)
        first.send_json({"type": "hangup"})
    assert code == 1000
    decision, handover = seen
    assert decision["decision"]["rule"] == "over_capacity"
    assert handover["action"] == "transfer" and handover["rule"] == "over_capacity"
    turned_away = [call for call in registry.all() if call.outcome and call.outcome.rule == "over_capacity"]
    assert len(turned_away) == 1 and CALL_ID.match(turned_away[0].call_sid)
    assert turned_away[0].handoff is not None  # on the desk, as a phone call over the limit is
    assert len(ScriptedPipeline.made) == 1


def test_during_a_drain_a_new_browser_call_goes_to_a_person_and_a_live_one_is_held_for_the_deadline():
    client = make_client()
    state = client.app.state.voice
    with client.websocket_connect("/browser/call") as first:
        start_call(first)
        (live,) = ScriptedPipeline.made
        assert state.drain.holds(live)  # a drain that reaches its deadline hands it over
        state.drain.draining = True
        with client.websocket_connect("/browser/call") as second:
            second.send_json({"type": "start"})
            code, seen = closed_with(second)
        first.send_json({"type": "hangup"})
    assert code == 1000
    decision, handover = seen
    assert handover["action"] == "transfer" and handover["rule"] == "over_capacity"
    assert "restarting" in decision["decision"]["transfer_reason"]
    assert not state.drain.holds(live)  # the hung-up call is no longer held
    assert len(ScriptedPipeline.made) == 1


def test_audio_faster_than_real_time_is_dropped():
    now = [0.0]
    budget = RealTimeBudget(16_000, slack_s=2.0, clock=lambda: now[0])
    assert budget.take(32_000)  # the slack: two seconds at once
    assert not budget.take(320)
    now[0] = 0.02
    assert budget.take(320)  # 20 ms later, 20 ms more
    assert not budget.take(320)


def test_a_flood_of_audio_is_cut_at_real_time_over_the_socket():
    client = make_client()
    second = np.zeros(16_000, dtype="<i2").tobytes()
    with client.websocket_connect("/browser/call") as ws:
        call_id, _ = start_call(ws)
        for _ in range(10):  # 10 s of audio, sent at once
            ws.send_bytes(second)
        ws.send_json({"type": "hangup"})
    fed = ScriptedPipeline.made[0].audio
    assert len(fed) == 2  # the slack of two seconds; the rest ran ahead of the clock
    assert client.app.state.voice.registry.get(call_id).protocol_errors == 8


# --- the page -----------------------------------------------------------------------------------------------------


def test_the_call_page_is_for_desk_users_and_its_files_are_served():
    anonymous = make_client(log_in=False)
    response = anonymous.get("/desk/call", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/desk?next=call"

    client = make_client()
    page = client.get("/desk/call")
    assert page.status_code == 200 and "Call the agent" in page.text
    assert "connect-src 'self'" in page.headers["content-security-policy"]
    for name, kind in (("call.js", "javascript"), ("call-worklet.js", "javascript"), ("call.css", "css")):
        asset = anonymous.get(f"/desk/{name}")
        assert asset.status_code == 200 and kind in asset.headers["content-type"], name
    assert 'href="/desk/call"' in client.get("/desk").text
