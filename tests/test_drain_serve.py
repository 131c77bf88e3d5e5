"""Graceful drain through `voice-agent serve` and a real SIGTERM: a live call finishes its turns and is handed
over, a call that just sits there is handed to a person at the deadline, a new call goes to a person, /healthz says
draining, and every record is in the database once the process has exited."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
import xml.etree.ElementTree as ElementTree

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from qa.load_harness import ServerProcess
from telephony.drain import DRAIN_REASON
from telephony.storage.store import CallStore, default_database_url
from voice.events import HAND_OVER_NOW_RULE

from .helpers import TWILIO, admit_on, call_sid, dtmf_message, mark_message, start_message, stream_sid

DRAIN_TIMEOUT_S = 15
"""Long enough for the busy call's two key presses on a loaded machine (its replies come from the phrase cache)."""
WAIT_S = 60.0
"""Bound on every wait for the server."""


class Caller:
    """One media-stream call, as Twilio plays it: every mark is echoed as soon as it arrives (the audio "played")."""

    def __init__(self, ws: ClientConnection, call_sid: str, stream_sid: str, parameters: dict[str, str]) -> None:
        self.stream_sid = stream_sid
        self.ws = ws
        self.ws.send(json.dumps(start_message(stream_sid=stream_sid, call_sid=call_sid, parameters=parameters)))
        self.received: list[dict] = []
        self.closed = threading.Event()
        self._marks = 0
        self._marked = threading.Condition()
        self._thread = threading.Thread(target=self._play, daemon=True)
        self._thread.start()

    def _play(self) -> None:
        try:
            for text in self.ws:
                message = json.loads(text)
                self.received.append(message)
                if message["event"] == "mark":
                    self.ws.send(json.dumps(mark_message(message["mark"]["name"], self.stream_sid)))
                    with self._marked:
                        self._marks += 1
                        self._marked.notify_all()
        except ConnectionClosed:
            pass
        finally:
            self.closed.set()

    def wait_for_marks(self, count: int) -> None:
        with self._marked:
            assert self._marked.wait_for(lambda: self._marks >= count, WAIT_S), f"{self._marks} marks, not {count}"

    def press(self, digit: str) -> None:
        self.ws.send(json.dumps(dtmf_message(digit, self.stream_sid)))

    def media_after(self, index: int) -> int:
        return sum(1 for message in self.received[index:] if message["event"] == "media")

    def join(self) -> None:
        self._thread.join(WAIT_S)


def _health(server: ServerProcess) -> dict:
    return httpx.get(f"{server.http_base}/healthz", timeout=10).json()


@pytest.mark.slow
def test_sigterm_drains_live_calls_turns_new_ones_away_and_keeps_every_record(monkeypatch):
    monkeypatch.setenv("VOICE_AGENT_DRAIN_TIMEOUT_S", str(DRAIN_TIMEOUT_S))
    # These callers send no audio frames (Twilio's would, silence included): the silence bound must not end them.
    monkeypatch.setenv("VOICE_AGENT_STREAM_SILENCE_TIMEOUT_S", "300")
    callers: list[Caller] = []
    with ServerProcess() as server, contextlib.ExitStack() as streams:

        def call(sid: str, stream: str) -> Caller:
            parameters = admit_on(server.http_base, sid)
            signed = TWILIO.headers(server.ws_url)
            ws = streams.enter_context(
                connect(server.ws_url, additional_headers=signed, open_timeout=WAIT_S, close_timeout=5)
            )
            callers.append(Caller(ws, sid, stream, parameters))
            return callers[-1]

        try:
            busy = call(call_sid("busy"), stream_sid("busy"))
            busy.wait_for_marks(1)  # the greeting
            quiet = call(call_sid("quiet"), stream_sid("quiet"))
            quiet.wait_for_marks(1)
            health = _health(server)
            assert health["status"] == "ok" and health["live_calls"] == 2

            server.popen.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + WAIT_S
            while (health := _health(server))["status"] != "draining":
                assert time.monotonic() < deadline, health
                time.sleep(0.1)
            assert health == {"status": "draining", "live_calls": 2}

            # A new call goes to a person after the calm message; a stream is never offered.
            url, form = f"{server.http_base}/twilio/voice", {"CallSid": call_sid("new")}
            response = httpx.post(url, data=form, headers=TWILIO.headers(url, form), timeout=10)
            assert [verb.tag for verb in ElementTree.fromstring(response.text)] == ["Say", "Dial"]

            # The busy caller goes on: opening hours (key 7), then a person (key 0); the stream is then closed.
            busy.press("7")
            busy.wait_for_marks(2)
            busy.press("0")
            assert busy.closed.wait(WAIT_S), "the busy call was not handed over"
            assert not quiet.closed.is_set()  # still waiting for the deadline

            # The quiet caller hears the apology at the deadline, and the stream is closed.
            before = len(quiet.received)
            assert quiet.closed.wait(DRAIN_TIMEOUT_S + WAIT_S), "the quiet call was not handed over at the deadline"
            assert quiet.media_after(before) > 0
            assert server.popen.wait(WAIT_S) is not None  # and then the process stops by itself
        finally:
            streams.close()
            for caller in callers:
                caller.join()
        store = CallStore(default_database_url(server.data_dir))
        try:
            busy_record, quiet_record, new_record = (store.get(sid) for sid in map(call_sid, ("busy", "quiet", "new")))
        finally:
            store.close()

    assert busy_record.outcome.action == "transfer"
    assert [turn.decision.rule for turn in busy_record.turns][-1] == "dtmf_zero"
    assert busy_record.turns[-2].decision.intent == "opening_hours"

    last = quiet_record.turns[-1].decision
    assert quiet_record.outcome.action == "transfer" and last.rule == HAND_OVER_NOW_RULE
    assert DRAIN_REASON in last.reasons and DRAIN_REASON in quiet_record.handoff.reason
    assert quiet_record.ended_at is not None

    # Turned away before any exchange: the handoff says why.
    assert new_record.outcome.action == "transfer" and new_record.outcome.department == "customer_service"
    assert new_record.handoff.reason == f"the automated agent was taking no new calls: {DRAIN_REASON}"
