"""The transfer's steps on the desk: recorded from Twilio's webhooks, pushed over the live event stream, kept with the
call and shown in its record (the desk's call view)."""

from __future__ import annotations

import json

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from qa.loopback_server import LoopbackServer
from telephony.calls import CallState
from telephony.transfer_timeline import TransferState

from .helpers import TWILIO, admit_on, call_sid, dtmf_message, make_app, mark_message, start_message, stream_sid
from .test_api import AGENT_TOKEN, bearer, read_events, wait_until

SID_ELSEWHERE = call_sid("elsewhere")
SID_GONE = call_sid("gone")
SID_PERSON_LEG = call_sid("person-leg")
SID_QUEUE = call_sid("queue")
SID_RING = call_sid("ring")

# Customer service (key 0) rings a number; billing waits in a queue.
DEPLOYMENT = """\
departments:
  customer_service: {number: "+15005550101"}
  billing: {queue: billing}
  technical_support: {number: "+15005550103"}
  orders: {number: "+15005550104"}
  retention: {number: "+15005550105"}
  complaints: {number: "+15005550106"}
  fraud: {number: "+15005550107"}
  care: {queue: care}
"""


@pytest.fixture(autouse=True)
def _no_tokens_from_the_environment(monkeypatch):
    for name in ("VOICE_AGENT_AGENT_TOKEN", "VOICE_AGENT_ADMIN_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def live(voice_services, tmp_path):
    deployment = tmp_path / "departments.yaml"
    deployment.write_text(DEPLOYMENT, encoding="utf-8")
    # The streams below press keys and send no audio: a long silence deadline keeps them open until handed over.
    app = make_app(voice_services, agent_token=AGENT_TOKEN, deployment_file=deployment, stream_silence_timeout_s=120)
    with LoopbackServer(app) as server:
        yield server


class _Desk:
    """The desk's side: the live event stream and the call API, with the agent's token."""

    def __init__(self, server: LoopbackServer, http: httpx.Client, lines) -> None:
        self.server, self.http, self.lines = server, http, lines

    def webhook(self, path: str, **form: str) -> httpx.Response:
        """POST a webhook signed as Twilio signs it."""
        url = f"{self.server.http_base}{path}"
        response = self.http.post(url, data=form, headers=TWILIO.headers(url, form))
        assert response.status_code == 200, response.text
        return response

    def next_state(self, call_sid: str, state: TransferState) -> dict:
        """Wait for the live event that says `call_sid`'s transfer reached `state`."""
        events = read_events(
            self.lines, lambda events: events[-1]["call_sid"] == call_sid and events[-1]["transfer_state"] == state
        )
        return events[-1]

    def record(self, call_sid: str) -> dict:
        return self.http.get(f"{self.server.http_base}/api/calls/{call_sid}", headers=bearer(AGENT_TOKEN)).json()


def _desk_test(live, body) -> None:
    streams = live.app.state.event_streams
    with (
        httpx.Client(timeout=20) as http,
        http.stream("GET", f"{live.http_base}/api/events", headers=bearer(AGENT_TOKEN)) as response,
    ):
        assert response.status_code == 200
        assert wait_until(lambda: len(streams) == 1)
        body(_Desk(live, http, response.iter_lines()))


def transfer_call(server: LoopbackServer, call_sid: str, *keys: str) -> None:
    """A call as Twilio streams it: the caller presses `keys` during the greeting and is handed over; returns once
    the call's record is finished (Twilio's webhooks come after that)."""
    stream = stream_sid(call_sid)
    parameters = admit_on(server.http_base, call_sid)  # /twilio/voice first, as Twilio does: the stream's ticket
    headers = TWILIO.headers(server.ws_url)
    with ws_connect(server.ws_url, open_timeout=10, max_queue=None, additional_headers=headers) as ws:
        ws.send(json.dumps(start_message(stream_sid=stream, call_sid=call_sid, parameters=parameters)))
        for key in keys:
            ws.send(json.dumps(dtmf_message(key, stream_sid=stream)))
        try:
            for raw in ws:  # echo every mark, as Twilio does once the audio is played, until the server closes
                message = json.loads(raw)
                if message["event"] == "mark":
                    ws.send(json.dumps(mark_message(message["mark"]["name"], stream_sid=stream)))
        except ConnectionClosed:
            pass
    registry = server.app.state.voice.registry
    assert wait_until(lambda: registry.get(call_sid).state is CallState.FINISHED), f"{call_sid} was not finished"


def test_a_dialled_transfer_goes_live_from_ringing_to_answered_to_completed(live):
    def body(desk: _Desk) -> None:
        transfer_call(live, SID_RING, "7", "0")  # opening hours (key 7), then a person
        desk.webhook("/twilio/after-stream", CallSid=SID_RING)
        assert desk.next_state(SID_RING, TransferState.RINGING)["has_handoff"] is True
        desk.webhook(f"/twilio/whisper?call={SID_RING}", CallSid=SID_PERSON_LEG)
        desk.next_state(SID_RING, TransferState.ANSWERED)
        desk.webhook("/twilio/dial-status", CallSid=SID_RING, DialCallStatus="completed")
        desk.next_state(SID_RING, TransferState.COMPLETED)

        record = desk.record(SID_RING)
        assert record["transfer_state"] == "completed"
        steps = [(step["state"], step["detail"]) for step in record["transfer_timeline"]]
        assert steps == [("ringing", None), ("answered", None), ("completed", "completed")]
        times = [step["at"] for step in record["transfer_timeline"]]
        assert times == sorted(times)
        assert record["handoff"]["summary"] == (
            "The caller asked about opening hours and already heard the automated answer. "
            "They pressed 0 to speak to a person."
        )

    _desk_test(live, body)


def test_a_queued_transfer_nobody_takes_ends_in_a_call_back(live):
    def body(desk: _Desk) -> None:
        transfer_call(live, SID_QUEUE, "1", "0")  # a bill (key 1), then a person: billing's queue
        desk.webhook("/twilio/after-stream", CallSid=SID_QUEUE)
        desk.next_state(SID_QUEUE, TransferState.QUEUED)
        # Twilio asks for the wait message again and again: a step only when the position changes.
        for position in ("2", "2", "1"):
            desk.webhook("/twilio/queue-wait", CallSid=SID_QUEUE, QueuePosition=position)
        desk.webhook("/twilio/dial-status", CallSid=SID_QUEUE, QueueResult="queue-full")
        desk.next_state(SID_QUEUE, TransferState.NOT_ANSWERED)
        desk.webhook("/twilio/dial-choice", CallSid=SID_QUEUE, Digits="")
        desk.next_state(SID_QUEUE, TransferState.CALLBACK_REQUESTED)

        steps = [(step["state"], step["detail"]) for step in desk.record(SID_QUEUE)["transfer_timeline"]]
        assert steps == [
            ("queued", None),
            ("queued", "position 2"),
            ("queued", "position 1"),
            ("not_answered", "queue-full"),
            ("callback_requested", None),
        ]

    _desk_test(live, body)


def test_a_caller_who_hangs_up_in_the_queue_is_not_shown_as_answered(live):
    def body(desk: _Desk) -> None:
        transfer_call(live, SID_GONE, "2", "0")  # a payment: billing's queue
        desk.webhook("/twilio/after-stream", CallSid=SID_GONE)
        desk.webhook("/twilio/dial-status", CallSid=SID_GONE, QueueResult="hangup")
        desk.next_state(SID_GONE, TransferState.CALLER_HUNG_UP)

    _desk_test(live, body)


def test_a_step_reported_to_another_instance_is_added_to_the_stored_record(live):
    """The stream ran on another instance: only the database knows the call, and the step is kept there."""
    transfer_call(live, SID_ELSEWHERE, "0")
    with httpx.Client(timeout=20) as http:
        desk = _Desk(live, http, iter(()))
        desk.webhook("/twilio/after-stream", CallSid=SID_ELSEWHERE)  # written to the database with its step
        assert wait_until(lambda: desk.record(SID_ELSEWHERE)["transfer_state"] == "ringing")
        live.app.state.voice.registry.forget(SID_ELSEWHERE)
        assert live.app.state.voice.registry.get(SID_ELSEWHERE) is None
        desk.webhook("/twilio/dial-status", CallSid=SID_ELSEWHERE, DialCallStatus="no-answer")
        record = desk.record(SID_ELSEWHERE)
    assert [step["state"] for step in record["transfer_timeline"]] == ["ringing", "not_answered"]
    assert record["transfer_state"] == "not_answered" and record["transfer_status"] == "no-answer"
