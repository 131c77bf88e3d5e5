"""The call API: bearer tokens and desk sessions, the call records it shows (masked), and the live event stream."""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from websockets.sync.client import connect as ws_connect

from qa.loopback_server import LoopbackServer
from telephony.call_record import call_record
from telephony.calls import CallInfo, CallState
from telephony.settings import SettingsError, load_settings
from telephony.web import auth as auth_module
from telephony.web.auth import SESSION_COOKIE, Authenticator, DeskSessions, Role, require_role
from voice.events import Action, Decision, Transcript
from voice.pipeline import TurnRecord

from .helpers import (
    TWILIO,
    admit_on,
    app_client,
    call_sid,
    dtmf_message,
    make_app,
    play_until_closed,
    receive_until_mark,
    start_message,
    stream_sid,
    twilio_stream,
)

AGENT_TOKEN = "agent-token-0123456789abcdef"
ADMIN_TOKEN = "admin-token-fedcba9876543210"
CALLER = "+15005550006"
# Any four consecutive digits of the caller's number would be a leak; the masked form keeps only the last two.
CALLER_PIECES = {CALLER[i : i + 4] for i in range(1, len(CALLER) - 3)}
PROTECTED = ("/api/calls", f"/api/calls/{call_sid('any')}", "/api/events")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(autouse=True)
def _no_tokens_from_the_environment(monkeypatch):
    # Each test states its tokens; a developer's shell must not open (or close) the API behind its back.
    for name in ("VOICE_AGENT_AGENT_TOKEN", "VOICE_AGENT_ADMIN_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def client(voice_services):
    # The API's documentation on: the tests check that even the schema shows no caller's number.
    with app_client(voice_services, agent_token=AGENT_TOKEN, admin_token=ADMIN_TOKEN, api_docs=True) as client:
        yield client


# --- who gets in --------------------------------------------------------------------------------------------


def test_requests_without_a_token_are_refused_with_a_bearer_challenge(client):
    for path in PROTECTED:
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "token" in response.json()["detail"]


@pytest.mark.parametrize(
    "headers",
    [
        bearer("wrong-token-wrong-token"),
        bearer(AGENT_TOKEN[:-1]),  # a prefix of a real token
        bearer(AGENT_TOKEN + "x"),
        bearer(AGENT_TOKEN.upper()),
        {"Authorization": f"Basic {AGENT_TOKEN}"},  # not a bearer token
        {"Authorization": AGENT_TOKEN},
        bearer("x" * 100_000),
    ],
)
def test_an_invalid_token_is_refused(client, headers):
    for path in PROTECTED:
        response = client.get(path, headers=headers)
        assert response.status_code == 401, path
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_an_invalid_bearer_token_is_refused_even_with_a_valid_desk_session(client):
    assert client.post("/desk/login", json={"token": AGENT_TOKEN}).status_code == 200
    assert client.get("/api/calls").status_code == 200
    assert client.get("/api/calls", headers=bearer("wrong-token-wrong-token")).status_code == 401


def test_with_no_token_configured_everything_is_refused(voice_services):
    with app_client(voice_services) as client:
        for path in PROTECTED:
            for headers in ({}, bearer("None"), bearer(""), bearer(AGENT_TOKEN)):
                response = client.get(path, headers=headers)
                assert response.status_code == 401, (path, headers)
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "VOICE_AGENT_AGENT_TOKEN" in client.get("/api/calls").json()["detail"]
        login = client.post("/desk/login", json={"token": AGENT_TOKEN})
        assert login.status_code == 401 and "closed" in login.json()["detail"]
        assert SESSION_COOKIE not in login.cookies


def test_agent_and_admin_tokens_both_read_calls(client):
    for token in (AGENT_TOKEN, ADMIN_TOKEN):
        response = client.get("/api/calls", headers=bearer(token))
        assert response.status_code == 200
        assert response.json() == []
        assert response.headers["Cache-Control"] == "no-store"


def test_tokens_are_compared_in_constant_time_against_every_token(client, monkeypatch):
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def counting(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth_module.hmac, "compare_digest", counting)
    for token in (AGENT_TOKEN, ADMIN_TOKEN, "wrong-token-wrong-token"):
        calls.clear()
        client.get("/api/calls", headers=bearer(token))
        # Both configured tokens, every time: a match does not end the loop early, so timing tells nothing.
        assert len(calls) == 2, token
        # Fixed-size digests are compared, so not even the token's length shows in the timing.
        assert all(len(a) == len(b) == 32 for a, b in calls)


def test_admin_routes_refuse_an_agent():
    app = FastAPI()
    app.state.auth = Authenticator({Role.AGENT: AGENT_TOKEN, Role.ADMIN: ADMIN_TOKEN})

    @app.get("/purge", dependencies=[Depends(require_role(Role.ADMIN))])
    async def purge() -> dict[str, str]:
        return {"purged": "nothing"}

    client = TestClient(app)
    assert client.get("/purge").status_code == 401
    assert client.get("/purge", headers=bearer(AGENT_TOKEN)).status_code == 403
    assert client.get("/purge", headers=bearer(ADMIN_TOKEN)).status_code == 200


@pytest.mark.parametrize(
    ("settings", "variable"),
    [
        ({"agent_token": "short-secret"}, "VOICE_AGENT_AGENT_TOKEN"),
        ({"agent_token": AGENT_TOKEN, "admin_token": AGENT_TOKEN}, "VOICE_AGENT_ADMIN_TOKEN"),
    ],
)
def test_weak_or_shared_tokens_stop_start_up_without_echoing_them(settings, variable):
    with pytest.raises(SettingsError, match=variable) as raised:
        load_settings(**settings)
    for value in settings.values():
        assert value not in str(raised.value)


def test_tokens_are_never_shown_by_the_settings():
    settings = load_settings(agent_token=AGENT_TOKEN, admin_token=ADMIN_TOKEN)
    assert AGENT_TOKEN not in repr(settings) and ADMIN_TOKEN not in str(settings)


def test_desk_login_sets_a_strict_http_only_session_cookie_and_logout_ends_it(client):
    refused = client.post("/desk/login", json={"token": "wrong-token-wrong-token"})
    assert refused.status_code == 401 and "refused" in refused.json()["detail"]
    assert SESSION_COOKIE not in client.cookies

    login = client.post("/desk/login", data={"token": ADMIN_TOKEN})  # a form works as well as JSON
    assert login.status_code == 200 and login.json() == {"role": "admin", "name": "token:admin"}
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    session_id = client.cookies[SESSION_COOKIE]
    assert ADMIN_TOKEN not in cookie and len(session_id) >= 40  # a random id, not the token
    assert client.get("/api/calls").status_code == 200

    assert client.post("/desk/logout").status_code == 204
    assert client.get("/api/calls").status_code == 401
    # The session is over on the server, not only in this browser: the old cookie no longer works.
    client.cookies.set(SESSION_COOKIE, session_id)
    assert client.get("/api/calls").status_code == 401


def test_desk_login_rejects_a_malformed_body(client):
    malformed = client.post("/desk/login", content=b"{not json", headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400 and "token" in malformed.json()["detail"]
    assert client.post("/desk/login", json={"token": 12345}).status_code == 400
    assert client.post("/desk/login", json=["token"]).status_code == 400


def test_desk_sessions_expire():
    now = [1000.0]
    sessions = DeskSessions(ttl_s=60, clock=lambda: now[0])
    session_id = sessions.create(Role.AGENT)
    assert sessions.role_of(session_id) is Role.AGENT
    now[0] += 61
    assert sessions.role_of(session_id) is None
    assert sessions.role_of("made-up") is None


def test_desk_sessions_are_bounded():
    sessions = DeskSessions(max_sessions=3)
    first = sessions.create(Role.AGENT)
    for _ in range(5):
        sessions.create(Role.AGENT)
    assert len(sessions) == 3
    assert sessions.role_of(first) is None  # the oldest was logged out


# --- what the API shows -------------------------------------------------------------------------------------


def test_an_unknown_call_is_404(client):
    response = client.get(f"/api/calls/{call_sid('nobody')}", headers=bearer(AGENT_TOKEN))
    assert response.status_code == 404
    assert call_sid("nobody") in response.json()["detail"]


def press_zero_call(client: TestClient, call_sid: str) -> None:
    """A call as Twilio streams it: the caller presses 0 during the greeting and is handed over."""
    with twilio_stream(client) as ws:
        start = start_message(call_sid=call_sid)
        start["start"]["customParameters"] = {"caller": CALLER}
        ws.send_json(start)
        receive_until_mark(ws)
        ws.send_json(dtmf_message("0"))
        play_until_closed(ws)  # the server closes the stream after the transfer sentence
    # The close reaches the client before the server has finished the call's record; Twilio's next request comes
    # after that, and so does the test's.
    registry = client.app.state.voice.registry
    assert wait_until(lambda: registry.get(call_sid).state is CallState.FINISHED), f"{call_sid} was not finished"


def test_the_record_of_a_transferred_call(client):
    press_zero_call(client, call_sid("api"))
    headers = bearer(AGENT_TOKEN)

    [summary] = client.get("/api/calls", headers=headers).json()
    assert summary["call_sid"] == call_sid("api") and summary["state"] == "finished"
    assert summary["intent"] == "speak_to_person"
    assert summary["outcome"] == {"action": "transfer", "department": "customer_service"}
    assert summary["has_handoff"] is True
    assert summary["duration_s"] > 0 and summary["ended_at"] >= summary["started_at"]

    record = client.get(f"/api/calls/{call_sid('api')}", headers=headers).json()
    assert record["caller"] == "*********06"
    greeting, key = record["turns"]
    assert greeting["caller"] is None and greeting["decision"]["rule"] == "greeting"
    assert greeting["interrupted"] is True  # the key press cut the greeting short
    assert key["caller"] == {
        "kind": "dtmf",
        "digit": "0",
        "text": None,
        "confidence": None,
        "start_ms": None,
        "end_ms": None,
    }
    decision = key["decision"]
    assert decision["action"] == "transfer" and decision["rule"] == "dtmf_zero"
    assert decision["intent"] == "speak_to_person" and decision["confidence"] == 1.0
    assert decision["department"] == "customer_service"
    assert decision["transfer_reason"] == "the caller pressed 0 for a person"
    assert "rule dtmf_zero" in decision["reasons"]
    assert decision["reply"].startswith("I am connecting you")
    assert isinstance(key["processing_ms"], float)

    handoff = record["handoff"]
    assert handoff["caller"] == "*********06"
    assert handoff["department"] == "customer_service" and handoff["intent"] == "speak_to_person"
    assert handoff["reason"] == "the caller pressed 0 for a person"
    assert "pressed: 0" in handoff["facts"]
    assert {"speaker": "caller", "text": "pressed 0"} in handoff["transcript"]
    assert handoff["summary"] == ("The caller did not say what the call is about. They pressed 0 to speak to a person.")
    assert handoff["kind"] == "person_key" and handoff["topics"] == [] and handoff["answered"] == []
    assert handoff["reason_text"] == "They pressed 0 to speak to a person."
    # Nothing reported by Twilio yet: no transfer steps.
    assert summary["transfer_state"] is None and record["transfer_timeline"] == []
    assert record["protocol_errors"] == 0 and record["failure"] is None


def test_the_caller_number_never_appears_unmasked(client):
    press_zero_call(client, call_sid("private"))
    headers = bearer(ADMIN_TOKEN)
    texts = [
        client.get("/api/calls", headers=headers).text,
        client.get(f"/api/calls/{call_sid('private')}", headers=headers).text,
        client.get("/openapi.json").text,
    ]
    for text in texts:
        assert not any(piece in text for piece in CALLER_PIECES), text
    assert "*********06" in texts[1]


def test_spoken_numbers_are_masked_in_transcripts_replies_and_reasons():
    said = "my card is 4111 1111 1111 1111 and my phone 06-1234-5678"
    decision = Decision(
        reply="I heard 4111 1111 1111 1111.",
        action=Action.TRANSFER,
        rule="sensitive",
        intent="card_problem",
        confidence=0.9,
        department="fraud",
        transfer_reason="a card was mentioned",
        reasons=("matched 'my card is 4111 1111 1111 1111'",),
    )
    info = CallInfo(call_sid=call_sid("mask"), stream_sid=stream_sid("mask"), caller_number="+31 6 1234 5678")
    info.records.append(TurnRecord(caller=Transcript(said, 0.8, 100, 2000), decision=decision))
    info.failure = "ASR failed on 06-1234-5678"
    text = call_record(info).model_dump_json()
    for secret in ("4111", "1234", "5678"):
        assert secret not in text
    assert call_record(info).caller == "*********78"


# --- the live event stream (over a real socket: TestClient cannot end an endless response) ------------------


def read_events(lines: Iterator[str], until, timeout_s: float = 20.0) -> list[dict]:
    """Parse SSE `call` events from a stream's lines until `until(events)` is true; comments are skipped."""
    events: list[dict] = []
    deadline = time.monotonic() + timeout_s
    kind = None
    for line in lines:
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: ") and kind == "call":
            events.append(json.loads(line.removeprefix("data: ")))
            if until(events):
                return events
        assert time.monotonic() < deadline, f"no matching event within {timeout_s} s: {events}"
    raise AssertionError(f"the stream ended before a matching event: {events}")


def wait_until(condition, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def live(voice_services):
    with LoopbackServer(make_app(voice_services, agent_token=AGENT_TOKEN, admin_token=ADMIN_TOKEN)) as server:
        yield server


def test_the_event_stream_needs_a_token(live):
    response = httpx.get(f"{live.http_base}/api/events", timeout=5)
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")


def test_the_event_stream_delivers_call_changes_and_ends_when_the_client_goes_away(live):
    streams = live.app.state.event_streams
    with (
        httpx.Client(timeout=20) as http,
        http.stream("GET", f"{live.http_base}/api/events", headers=bearer(AGENT_TOKEN)) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        assert wait_until(lambda: len(streams) == 1)
        lines = response.iter_lines()
        # An unbounded queue: the greeting's frames, unread here, must not hold up the closing handshake.
        signed = TWILIO.headers(live.ws_url)
        with ws_connect(live.ws_url, additional_headers=signed, open_timeout=10, max_queue=None) as call:
            parameters = admit_on(live.http_base, call_sid("sse"), caller=CALLER)
            call.send(json.dumps(start_message(stream_sid("sse"), call_sid("sse"), parameters=parameters)))
            events = read_events(lines, lambda events: any(e["call_sid"] == call_sid("sse") for e in events))
            call.send(json.dumps({"event": "stop", "streamSid": stream_sid("sse")}))
            events += read_events(lines, lambda events: events[-1]["state"] == "finished")
        assert {event["call_sid"] for event in events} == {call_sid("sse")}
        assert events[0]["state"] == "live" and events[-1]["state"] == "finished"
        assert set(events[0]) == {
            "call_sid",
            "state",
            "started_at",
            "ended_at",
            "duration_s",
            "intent",
            "outcome",
            "has_handoff",
            "transfer_state",
        }
        assert not any(piece in json.dumps(events) for piece in CALLER_PIECES)
    # The client went away: the server ends the stream and drops its subscription (no task, no queue left over).
    assert wait_until(lambda: len(streams) == 0), "the event stream outlived its client"
    assert not live.app.state.voice.registry._subscribers


def test_the_event_stream_sends_heartbeats_while_idle(live):
    live.app.state.event_streams.heartbeat_s = 0.2
    with (
        httpx.Client(timeout=10) as http,
        http.stream("GET", f"{live.http_base}/api/events", headers=bearer(AGENT_TOKEN)) as response,
    ):
        lines = response.iter_lines()
        assert next(lines).startswith("retry: ")
        heartbeats = [line for line, _ in zip(lines, range(6), strict=False) if line == ": heartbeat"]
        assert len(heartbeats) >= 2


def test_an_event_stream_ends_after_its_maximum_age_so_the_browser_reconnects_and_is_checked_again(live):
    live.app.state.event_streams.max_age_s = 0.5
    started = time.monotonic()
    with (
        httpx.Client(timeout=10) as http,
        http.stream("GET", f"{live.http_base}/api/events", headers=bearer(AGENT_TOKEN)) as response,
    ):
        lines = list(response.iter_lines())  # to the end, which the server makes
    assert lines[0].startswith("retry: ")
    assert time.monotonic() - started < 5
    assert wait_until(lambda: len(live.app.state.event_streams) == 0)


def test_a_server_shutdown_ends_open_event_streams(voice_services):
    server = LoopbackServer(make_app(voice_services, agent_token=AGENT_TOKEN))
    server.start()
    try:
        with (
            httpx.Client(timeout=10) as http,
            http.stream("GET", f"{server.http_base}/api/events", headers=bearer(AGENT_TOKEN)) as response,
        ):
            assert response.status_code == 200
            assert wait_until(lambda: len(server.app.state.event_streams) == 1)
            stopper = threading.Thread(target=server.stop)
            started = time.monotonic()
            stopper.start()
            stopper.join(timeout=15)
            assert not stopper.is_alive()
            assert server.stopped_cleanly, "the server had to be forced: it waited for the open event stream"
            assert time.monotonic() - started < 5
            # The stream was ended properly (the last chunk sent), not cut: reading it to the end just stops.
            rest = list(response.iter_lines())
            assert all(line == "" or line.startswith(("retry:", ":")) for line in rest)
    finally:
        server.stop()
    assert not server.app.state.voice.registry._subscribers


def test_the_api_is_in_the_openapi_schema_with_its_security(client):
    schema = client.get("/openapi.json").json()
    assert {"/api/calls", "/api/calls/{call_sid}", "/api/events"} <= set(schema["paths"])
    schemes = schema["components"]["securitySchemes"]
    assert "VOICE_AGENT_ADMIN_TOKEN" in schemes["AgentOrAdminToken"]["description"]
    assert schema["paths"]["/api/calls"]["get"]["security"] == [{"AgentOrAdminToken": []}, {"DeskSession": []}]
