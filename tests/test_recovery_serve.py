"""A server killed mid-call (``kill -9``) leaves the call's record live; the next start finishes it as "the server
stopped during the call", through `voice-agent serve` and a real SIGKILL."""

from __future__ import annotations

import contextlib
import json
import time

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from qa.load_harness import ServerProcess
from telephony.calls import CallState
from telephony.storage.instances import SERVER_STOPPED
from telephony.storage.store import CallStore

from .helpers import TWILIO, admit_on, call_sid, start_message

WAIT_S = 60.0
"""Bound on every wait for the servers."""


def _wait_for(store: CallStore, sid: str, state: CallState):
    deadline = time.monotonic() + WAIT_S
    while (record := store.get(sid)) is None or record.state is not state:
        assert time.monotonic() < deadline, f"{sid} is not {state.value}: {record}"
        time.sleep(0.2)
    return record


@pytest.mark.slow
def test_a_call_live_when_the_server_is_killed_is_finished_once_it_restarts(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'shared' / 'calls.sqlite3'}"
    monkeypatch.setenv("VOICE_AGENT_DATABASE_URL", url)  # both processes, one database
    monkeypatch.setenv("VOICE_AGENT_INSTANCE_HEARTBEAT_S", "1")
    monkeypatch.setenv("VOICE_AGENT_STREAM_SILENCE_TIMEOUT_S", "300")  # the caller sends no audio
    sid = call_sid("killed")
    store = CallStore(url)
    try:
        with ServerProcess() as first:
            parameters = admit_on(first.http_base, sid)
            with connect(first.ws_url, additional_headers=TWILIO.headers(first.ws_url), open_timeout=10) as ws:
                ws.send(json.dumps(start_message(call_sid=sid, parameters=parameters)))
                assert json.loads(ws.recv(timeout=WAIT_S))["event"] == "media"  # the greeting
                live = _wait_for(store, sid, CallState.LIVE)
                first.popen.kill()  # SIGKILL: no drain, no last write
                first.popen.wait(WAIT_S)
                with contextlib.suppress(ConnectionClosed):  # the socket died with the process
                    ws.recv(timeout=WAIT_S)
        assert store.get(sid).state is CallState.LIVE and live.failure is None

        with ServerProcess():
            finished = _wait_for(store, sid, CallState.FINISHED)
        assert finished.failure == SERVER_STOPPED and finished.ended_at is not None
        assert finished.turns == live.turns  # what was recorded before the kill is kept
    finally:
        store.close()
