"""Named desk accounts, failed-login throttling, the call-back queue's API and the audit trail, on the real app.

The app is built by `create_app` but its lifespan (the models) is not started: these routes need only the database.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient

from telephony.app import create_app
from telephony.cli import main as cli_main
from telephony.roles import Role
from telephony.settings import load_settings
from telephony.twilio.recordings import RecordingFetcher
from telephony.web.auth import MAX_FAILURES_PER_ADDRESS, MAX_FAILURES_PER_NAME, SESSION_COOKIE, LoginThrottle

from .helpers import FakeTwilio, voicemail_wav

AGENT_TOKEN = "accounts-agent-token-0123456789"
ADMIN_TOKEN = "accounts-admin-token-9876543210"
CALLER = "+31612345678"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "fake-twilio-auth-token"
RECORDING = "RE" + "5" * 32
PASSWORDS = {"alice": "alice-long-password", "root": "root-long-password-2"}


@pytest.fixture(autouse=True)
def _no_tokens_from_the_environment(monkeypatch):
    # TWILIO_AUTH_TOKEN stays as tests/conftest.py sets it: the app refuses to start without it.
    for name in ("VOICE_AGENT_AGENT_TOKEN", "VOICE_AGENT_ADMIN_TOKEN", "TWILIO_ACCOUNT_SID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def build_app(recordings: RecordingFetcher | None = None, **settings: object) -> FastAPI:
    """The app with its database migrated and two accounts (cheap hashes: the tests check behaviour, not cost)."""
    app = create_app(load_settings(agent_token=AGENT_TOKEN, admin_token=ADMIN_TOKEN, **settings), recordings=recordings)
    state = app.state.voice
    state.store.migrate()
    state.accounts._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    state.accounts.add("alice", Role.AGENT, PASSWORDS["alice"])
    state.accounts.add("root", Role.ADMIN, PASSWORDS["root"])
    return app


@pytest.fixture
def app():
    app = build_app()
    yield app
    app.state.voice.store.close()


def login(client: TestClient, name: str, password: str | None = None):
    return client.post("/desk/login", json={"name": name, "password": password or PASSWORDS[name.strip().lower()]})


def audit_rows(app: FastAPI) -> list[tuple[str, str, str | None, str]]:
    return [(e.actor, e.action, e.target, e.outcome) for e in app.state.voice.audit.events()]


def request_callback(app: FastAPI, call_sid: str = "CA-cb", recording_sid: str | None = None) -> None:
    app.state.voice.callbacks.request(
        call_sid,
        CALLER,
        caller_key="k" * 64,
        intent="billing_question",
        department="billing",
        reason="the caller asked for a person",
        recording_sid=recording_sid,
    )


# --- logging in -------------------------------------------------------------------------------------------------


def test_an_account_logs_in_by_name_and_every_attempt_is_audited(app):
    client = TestClient(app)
    refused = login(client, "alice", "not-her-password")
    assert refused.status_code == 401 and "name and password were refused" in refused.json()["detail"]
    assert SESSION_COOKIE not in refused.cookies
    assert login(client, "nobody", "whatever-password").status_code == 401
    response = login(client, "Alice ")  # names are not case-sensitive, and spaces around them are dropped
    assert response.status_code == 200 and response.json() == {"role": "agent", "name": "alice"}
    assert client.get("/api/callbacks").status_code == 200
    assert audit_rows(app) == [
        ("alice", "login", "alice", "refused"),
        ("unknown", "login", None, "refused"),  # an unknown name is not kept: it may be a mistyped password
        ("alice", "login", "alice", "ok"),
    ]
    assert app.state.voice.audit.events()[-1].address == "testclient"


def test_tokens_still_log_in_machines_named_token_role(app):
    client = TestClient(app)
    assert client.post("/desk/login", json={"token": "wrong-token-wrong-token"}).status_code == 401
    assert client.post("/desk/login", json={"token": AGENT_TOKEN}).json()["role"] == "agent"
    assert audit_rows(app) == [("unknown", "login", None, "refused"), ("token:agent", "login", None, "ok")]


def test_failed_logins_are_throttled_per_name_then_per_address(app):
    client = TestClient(app)
    for _ in range(MAX_FAILURES_PER_NAME):
        assert login(client, "alice", "guess-guess-guess").status_code == 401
    throttled = login(client, "alice")  # even the right password waits
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) > 0
    assert "Too many failed logins" in throttled.json()["detail"]
    assert login(client, "root").status_code == 200  # another name from the same address is not locked out
    for index in range(MAX_FAILURES_PER_ADDRESS - MAX_FAILURES_PER_NAME):
        login(client, f"guess{index}", "guess-guess-guess")
    assert login(client, "root").status_code == 429  # the address has now failed too often
    refused = [row for row in audit_rows(app) if row[3] == "refused"]
    assert len(refused) == MAX_FAILURES_PER_ADDRESS  # throttled tries are not written: a flood cannot fill the table


def test_the_throttle_forgets_old_failures_and_bounds_its_memory():
    now = [0.0]
    throttle = LoginThrottle(max_failures=2, window_s=60, max_keys=3, clock=lambda: now[0])
    throttle.failed("a")
    throttle.failed("a")
    assert throttle.retry_after("a") == 60
    now[0] = 30
    assert throttle.retry_after("a") == 30
    now[0] = 61
    assert throttle.retry_after("a") == 0
    for key in ("b", "c", "d", "e"):
        throttle.failed(key)
    assert len(throttle) == 3


def test_a_session_ends_when_its_password_is_set_again_or_the_account_is_removed(app):
    client = TestClient(app)
    assert login(client, "alice").status_code == 200
    assert client.get("/api/callbacks").status_code == 200
    app.state.voice.accounts.set_password("alice", "a-new-long-password")
    assert client.get("/api/callbacks").status_code == 401
    assert login(client, "alice", "a-new-long-password").status_code == 200
    app.state.voice.accounts.remove("alice")
    assert client.get("/api/callbacks").status_code == 401


# --- who may do what, and the trail it leaves -------------------------------------------------------------------


def test_an_agent_may_not_delete_purge_forget_or_read_the_audit_and_tries_are_audited(app):
    agent = TestClient(app)
    login(agent, "alice")
    assert agent.delete("/api/calls/CA-x").status_code == 403
    assert agent.post("/api/purge").status_code == 403
    assert agent.post("/api/callers/forget", json={"number": CALLER}).status_code == 403
    assert agent.get("/api/audit").status_code == 403

    admin = TestClient(app)
    login(admin, "root")
    assert admin.delete("/api/calls/CA-x").status_code == 404  # allowed; there is no such call
    assert admin.post("/api/purge", json={"older_than_days": 1}).json() == {"deleted": 0}
    events = admin.get("/api/audit")
    assert events.status_code == 200 and events.headers["Cache-Control"] == "no-store"
    rows = [(e["actor"], e["action"], e["target"], e["outcome"]) for e in events.json()]
    assert rows[1:] == [
        ("alice", "delete_call", "CA-x", "refused"),
        ("alice", "purge", None, "refused"),
        ("alice", "forget_caller", None, "refused"),
        ("root", "login", "root", "ok"),
        ("root", "delete_call", "CA-x", "not_found"),
        ("root", "purge", None, "ok"),
    ]
    assert events.json()[-1]["detail"] == {"deleted_calls": 0, "older_than_days": 1.0}
    assert admin.get("/api/audit", params={"days": 1, "limit": 2}).json()[-1]["action"] == "purge"
    # A machine's token is named by its role.
    assert TestClient(app).post("/api/purge", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).status_code == 200
    assert audit_rows(app)[-1] == ("token:admin", "purge", None, "ok")


# --- the call-back queue ----------------------------------------------------------------------------------------


def test_the_queue_shows_requests_masked_and_a_reveal_is_audited_before_the_number_is_sent(app):
    request_callback(app)
    agent = TestClient(app)
    login(agent, "alice")
    [queued] = agent.get("/api/callbacks").json()
    assert queued["caller"] == "*********78" and queued["has_number"] and not queued["has_voicemail"]
    assert queued["department"] == "billing" and queued["reason"] == "the caller asked for a person"
    assert "612345" not in json.dumps(queued)

    revealed = agent.post("/api/callbacks/CA-cb/reveal")
    assert revealed.status_code == 200 and revealed.json()["number"] == CALLER
    assert revealed.headers["Cache-Control"] == "no-store"
    assert audit_rows(app)[-1] == ("alice", "reveal_number", "CA-cb", "ok")

    done = agent.post("/api/callbacks/CA-cb/done")
    assert done.json()["done_by"] == "alice" and done.json()["has_number"] is False
    assert agent.get("/api/callbacks").json() == []
    assert agent.get("/api/callbacks", params={"done": True}).json()[0]["done_by"] == "alice"
    assert agent.post("/api/callbacks/CA-cb/reveal").status_code == 404  # the number is gone
    assert audit_rows(app)[-2:] == [
        ("alice", "callback_done", "CA-cb", "ok"),
        ("alice", "reveal_number", "CA-cb", "not_found"),
    ]
    assert TestClient(app).get("/api/callbacks").status_code == 401


def test_a_voicemail_is_played_through_the_server_from_twilio_with_the_accounts_credentials(tmp_path):
    audio = voicemail_wav(b"\x00\x10")  # half a second
    with FakeTwilio(recordings={RECORDING: audio}, credentials=(ACCOUNT_SID, TWILIO_TOKEN)) as twilio:
        fetcher = RecordingFetcher(ACCOUNT_SID, TWILIO_TOKEN, api_base_url=twilio.url)
        app = build_app(fetcher)
        request_callback(app, "CA-vm", recording_sid=RECORDING)
        request_callback(app, "CA-gone", recording_sid="RE" + "6" * 32)
        agent = TestClient(app)
        login(agent, "alice")
        [first, second] = agent.get("/api/callbacks").json()
        assert first["has_voicemail"] and second["has_voicemail"]
        played = agent.get("/api/callbacks/CA-vm/voicemail")
        assert played.status_code == 200 and played.content == audio
        assert played.headers["content-type"] == "audio/x-wav" and played.headers["Cache-Control"] == "no-store"
        assert twilio.requests[0]["path"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{RECORDING}.wav"
        missing = agent.get("/api/callbacks/CA-gone/voicemail")
        assert missing.status_code == 502 and "HTTP 404" in missing.json()["detail"]
        assert TWILIO_TOKEN not in missing.text
        request_callback(app, "CA-plain")
        assert agent.get("/api/callbacks/CA-plain/voicemail").status_code == 404
        app.state.voice.store.close()
    assert audit_rows(app)[-1] == ("alice", "play_voicemail", "CA-vm", "ok")


def test_without_twilio_credentials_a_voicemail_cannot_be_played_and_says_why(app):
    request_callback(app, "CA-vm", recording_sid=RECORDING)
    agent = TestClient(app)
    login(agent, "alice")
    response = agent.get("/api/callbacks/CA-vm/voicemail")
    assert response.status_code == 503 and "TWILIO_ACCOUNT_SID" in response.json()["detail"]


def test_the_recording_fetcher_only_talks_to_twilio_or_a_loopback_fake():
    with pytest.raises(ValueError, match="api_base_url"):
        RecordingFetcher(ACCOUNT_SID, TWILIO_TOKEN, api_base_url="https://recordings.example.com")


# --- the command line ---------------------------------------------------------------------------------------


def test_users_are_managed_from_the_command_line_and_every_change_is_audited(monkeypatch, capsys, tmp_path):
    def run(*args: str, stdin: str = "") -> int:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        return cli_main(list(args))

    assert run("users", "add", "carol", "--role", "admin", "--password-stdin", stdin="carol-long-password\n") == 0
    assert run("users", "add", "dave", "--password-stdin", stdin="dave-long-password\n") == 0
    assert "added agent account 'dave'" in capsys.readouterr().err
    assert run("users", "list") == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[:2] for line in listed] == [["carol", "admin"], ["dave", "agent"]]
    assert "long-password" not in "".join(listed)

    assert run("users", "add", "dave", "--password-stdin", stdin="dave-long-password\n") == 2
    assert "already an account 'dave'" in capsys.readouterr().err
    assert run("users", "add", "Not A Name", "--password-stdin", stdin="long-enough-password\n") == 2
    assert run("users", "add", "erin", "--password-stdin", stdin="short\n") == 2
    assert "at least 12 characters" in capsys.readouterr().err
    assert run("users", "set-password", "dave", "--password-stdin", stdin="dave-new-long-password\n") == 0
    assert run("users", "set-password", "nobody", "--password-stdin", stdin="long-enough-password\n") == 2
    assert run("users", "remove", "dave") == 0
    assert run("users", "remove", "dave") == 1
    capsys.readouterr()

    # The new accounts log in to the server that shares the database.
    app = create_app(load_settings())
    assert login(TestClient(app), "carol", "carol-long-password").status_code == 200
    app.state.voice.store.close()

    output = tmp_path / "audit.jsonl"
    assert run("audit", "--output", str(output)) == 0
    events = [json.loads(line) for line in output.read_text().splitlines()]
    actions = [(event["action"], event["target"]) for event in events]
    assert actions == [
        ("account_added", "carol"),
        ("account_added", "dave"),
        ("password_set", "dave"),
        ("account_removed", "dave"),
        ("login", "carol"),
    ]
    assert all(event["actor"].startswith("cli:") for event in events[:4])
    assert run("audit", "--days", "1") == 0
    assert len(capsys.readouterr().out.splitlines()) == 5


def test_exports_and_purges_from_the_command_line_are_audited(capsys):
    assert cli_main(["export", "CA-nobody"]) == 1
    assert cli_main(["purge", "--call", "CA-nobody"]) == 0
    assert cli_main(["purge", "--caller", CALLER]) == 0
    assert cli_main(["purge"]) == 0
    capsys.readouterr()
    assert cli_main(["audit"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(event["action"], event["outcome"]) for event in events] == [
        ("export", "not_found"),
        ("delete_call", "not_found"),
        ("forget_caller", "ok"),
        ("purge", "ok"),
    ]
    assert "612345" not in json.dumps(events)  # a forgotten caller leaves no trace in the trail


def test_a_bad_number_key_stops_the_start_naming_the_setting(monkeypatch):
    monkeypatch.setenv("VOICE_AGENT_NUMBER_KEY", "not-a-fernet-key")
    with pytest.raises(ValueError, match="VOICE_AGENT_NUMBER_KEY must be a Fernet key"):
        create_app(load_settings())


def test_no_file_in_the_data_directory_holds_the_number_in_clear(app, _data_dir: Path):
    request_callback(app, "CA-file")
    app.state.voice.store.close()
    raw = b"".join(path.read_bytes() for path in _data_dir.rglob("*") if path.is_file())
    assert b"*********78" in raw
    assert [CALLER[i : i + 6] for i in range(1, len(CALLER) - 5) if CALLER[i : i + 6].encode() in raw] == []
