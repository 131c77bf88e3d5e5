"""Faults during a call: the caller hangs up, the socket drops, speech recognition or synthesis fails or hangs.

Whenever the socket is still open, the caller hears the technical-problem sentence (from memory) and is handed to a
person; the failure is on the call's record and in the log, and the record is finished. The failing models are
fakes around the real ones: the fault is what is under test. Each app here gets its own worker pool, so a hung
model call never holds a thread of the shared one.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import logging
import socket
import threading
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from websockets.exceptions import ConnectionClosedOK
from websockets.sync.client import connect

from qa.loopback_server import LoopbackServer
from telephony.calls import CallInfo, CallState
from telephony.twilio.framing import pcm_to_twilio_frames
from telephony.twilio.media_stream import CUT_SHORT
from voice.pipeline import VoiceServices
from voice.workers import ModelWorkers

from .helpers import (
    SILENCE,
    STREAM_SID,
    TWILIO,
    admit_on,
    app_client,
    call_sid,
    dtmf_message,
    make_app,
    mark_message,
    media_message,
    play_until_closed,
    post_webhook,
    receive_until_mark,
    speech_frames,
    start_message,
    twilio_stream,
)

FAULT_TIMEOUT_S = 0.5
# Longest a test waits for anything (a hung fake is released by then at the latest).
WAIT_S = 30.0
OPENING_HOURS_KEY = "7"


class Gate:
    """Holds a hung fake until the test ends."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.released = threading.Event()

    def hang(self) -> None:
        self.entered.set()
        self.released.wait(timeout=WAIT_S)


class FaultyRecognizer:
    """Raises, or hangs, on every transcription."""

    def __init__(self, gate: Gate | None = None) -> None:
        self.gate = gate

    def transcribe(self, samples, start_ms=0):
        if self.gate is not None:
            self.gate.hang()
        raise RuntimeError("speech model crashed")


class FaultySpeech:
    """The real phrase cache, except that getting the audio of `text` raises or hangs."""

    def __init__(self, real, text: str, gate: Gate | None = None) -> None:
        self.real = real
        self.text = text
        self.gate = gate

    @property
    def sample_rate_hz(self) -> int:
        return self.real.sample_rate_hz

    def __contains__(self, text: object) -> bool:
        return text in self.real

    def get_or_synthesize(self, text: str):
        if text != self.text:
            return self.real.get_or_synthesize(text)
        if self.gate is not None:
            self.gate.hang()
        raise RuntimeError("speech synthesis crashed")


@pytest.fixture
def gate() -> Iterator[Gate]:
    gate = Gate()
    yield gate
    gate.released.set()


@contextlib.contextmanager
def faulty_app(
    voice_services: VoiceServices, gate: Gate, timeout_s: float = FAULT_TIMEOUT_S, **faults
) -> Iterator[TestClient]:
    """An app over the real models but for `faults` (recognizer=..., speech=...), with its own worker pool."""
    workers = ModelWorkers(2)
    services = dataclasses.replace(
        voice_services, workers=workers, asr_timeout_s=timeout_s, tts_timeout_s=timeout_s, **faults
    )
    try:
        with app_client(services) as client:
            yield client
    finally:
        gate.released.set()
        workers.shutdown(wait=True)


def opening_hours_reply(voice_services: VoiceServices) -> str:
    return voice_services.engine.catalogue.intents["opening_hours"].reply


def greet(ws, call_sid: str, voice_services: VoiceServices) -> None:
    """Start the call and play the whole greeting (each sentence's mark echoed), so the next input is no barge-in."""
    greeting = voice_services.engine.catalogue.replies.greeting
    ws.send_json(start_message(call_sid=call_sid))
    for _sentence in voice_services.speech.get_or_synthesize(greeting):
        _, mark = receive_until_mark(ws)
        ws.send_json(mark_message(mark))


def speak(ws) -> None:
    for frame in [SILENCE] * 10 + speech_frames() + [SILENCE] * 75:
        ws.send_json(media_message(frame))


def assert_apology_then_a_person(client: TestClient, ws, voice_services: VoiceServices, call_sid: str) -> CallInfo:
    """The server plays the technical-problem sentence and closes the stream; after it, a person is dialled."""
    messages: list[dict] = []
    play_until_closed(ws, messages)
    sent = [base64.b64decode(m["media"]["payload"]) for m in messages if m["event"] == "media"]
    apology = voice_services.engine.catalogue.replies.technical_problem
    speech = voice_services.speech
    # Played as one piece of audio under one mark.
    expected = pcm_to_twilio_frames(np.concatenate(speech.get_or_synthesize(apology)), speech.sample_rate_hz)
    assert sent == expected  # exactly the sentence, from memory

    call = client.app.state.voice.registry.get(call_sid)
    assert call.state is CallState.FINISHED
    assert call.outcome.action.value == "transfer" and call.outcome.rule == "technical_failure"
    assert call.records[-1].decision.reply == apology
    assert call.handoff.reason.startswith("technical problem in the automated agent")
    dial = ElementTree.fromstring(post_webhook(client, "/twilio/after-stream", {"CallSid": call_sid}).text).find("Dial")
    assert dial.find("Number").text == "+15005550101"  # customer service: no topic yet
    return call


def pipeline_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "voice.pipeline" and r.levelno == logging.ERROR]


def test_speech_recognition_error_apologises_and_transfers(voice_services, gate, caplog):
    with (
        faulty_app(voice_services, gate, recognizer=FaultyRecognizer()) as client,
        twilio_stream(client) as ws,
    ):
        greet(ws, call_sid("asr-error"), voice_services)
        speak(ws)
        call = assert_apology_then_a_person(client, ws, voice_services, call_sid("asr-error"))
    assert call.failure == "speech recognition failed: RuntimeError('speech model crashed')"
    assert pipeline_errors(caplog) == [f"voice pipeline failure: {call.failure}"]


def test_speech_recognition_that_hangs_times_out_apologises_and_transfers(voice_services, gate, caplog):
    with (
        faulty_app(voice_services, gate, recognizer=FaultyRecognizer(gate)) as client,
        twilio_stream(client) as ws,
    ):
        greet(ws, call_sid("asr-hang"), voice_services)
        speak(ws)
        call = assert_apology_then_a_person(client, ws, voice_services, call_sid("asr-hang"))
        assert gate.entered.is_set() and not gate.released.is_set()  # still hung: the timeout ended the wait
    assert call.failure == "speech recognition failed: TimeoutError()"
    assert pipeline_errors(caplog) == [f"voice pipeline failure: {call.failure}"]


def test_speech_synthesis_error_apologises_from_memory_and_transfers(voice_services, gate, caplog):
    speech = FaultySpeech(voice_services.speech, opening_hours_reply(voice_services))
    with faulty_app(voice_services, gate, speech=speech) as client, twilio_stream(client) as ws:
        greet(ws, call_sid("tts-error"), voice_services)
        ws.send_json(dtmf_message(OPENING_HOURS_KEY))
        call = assert_apology_then_a_person(client, ws, voice_services, call_sid("tts-error"))
    assert call.failure == "speech synthesis failed: RuntimeError('speech synthesis crashed')"
    assert pipeline_errors(caplog) == [f"voice pipeline failure: {call.failure}"]


def test_speech_synthesis_that_hangs_times_out_apologises_and_transfers(voice_services, gate, caplog):
    speech = FaultySpeech(voice_services.speech, opening_hours_reply(voice_services), gate)
    with faulty_app(voice_services, gate, speech=speech) as client, twilio_stream(client) as ws:
        greet(ws, call_sid("tts-hang"), voice_services)
        ws.send_json(dtmf_message(OPENING_HOURS_KEY))
        call = assert_apology_then_a_person(client, ws, voice_services, call_sid("tts-hang"))
        assert gate.entered.is_set() and not gate.released.is_set()
    assert call.failure == "speech synthesis failed: TimeoutError()"
    assert pipeline_errors(caplog) == [f"voice pipeline failure: {call.failure}"]


def test_caller_hanging_up_mid_sentence_finishes_the_record(voice_services, caplog):
    with app_client(voice_services) as client:
        with twilio_stream(client) as ws:
            ws.send_json(start_message(call_sid=call_sid("gone")))
            first = ws.receive_json()
            assert first["event"] == "media"  # the greeting is playing; its mark has not come back
            # Leaving the block closes the socket: no stop, mid-greeting.
        call = client.app.state.voice.registry.get(call_sid("gone"))
        assert call.state is CallState.FINISHED and call.ended_at is not None
        assert call.outcome is None and call.handoff is None
        assert call.failure == CUT_SHORT
        assert "call cut short: " + call.failure in caplog.messages
        health = client.get("/healthz").json()
        assert (health["status"], health["live_calls"]) == ("ok", 0)


def test_caller_hanging_up_while_the_reply_is_being_made_stops_it_cleanly(voice_services, gate):
    speech = FaultySpeech(voice_services.speech, opening_hours_reply(voice_services), gate)
    # A long timeout: the caller hangs up before the synthesis could time out.
    with faulty_app(voice_services, gate, timeout_s=WAIT_S, speech=speech) as client:
        with twilio_stream(client) as ws:
            greet(ws, call_sid("gone-mid-reply"), voice_services)
            ws.send_json(dtmf_message(OPENING_HOURS_KEY))
            assert gate.entered.wait(timeout=WAIT_S)
            # Leaving the block closes the socket while the reply's audio is still being made.
        call = client.app.state.voice.registry.get(call_sid("gone-mid-reply"))
        assert call.state is CallState.FINISHED and call.outcome is None
        assert call.failure == CUT_SHORT
        gate.released.set()  # the synthesis returns late, to a call that no longer exists: nothing happens
        with twilio_stream(client) as ws:  # and the server takes the next call
            greet(ws, call_sid("next"), voice_services)
            ws.send_json({"event": "stop", "streamSid": STREAM_SID})
        assert client.app.state.voice.registry.get(call_sid("next")).failure is None


def _wait_finished(client_app, call_sid: str) -> CallInfo:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        call = client_app.state.voice.registry.get(call_sid)
        if call is not None and call.state is CallState.FINISHED:
            return call
        time.sleep(0.05)
    raise AssertionError(f"{call_sid} was not finished within {WAIT_S:.0f} s")


def test_a_dropped_connection_without_stop_is_recorded_and_dialled_to_a_person(voice_services):
    app = make_app(voice_services)
    with LoopbackServer(app, name="fault-server") as server:
        signed = TWILIO.headers(server.ws_url)
        with connect(server.ws_url, additional_headers=signed, open_timeout=10, close_timeout=1) as ws:
            parameters = admit_on(server.http_base, call_sid("dropped"))
            ws.send(json.dumps(start_message(call_sid=call_sid("dropped"), parameters=parameters)))
            first = json.loads(ws.recv(timeout=WAIT_S))
            assert first["event"] == "media"
            # The TCP connection dies without a close frame, as when the network between Twilio and us fails.
            ws.socket.shutdown(socket.SHUT_RDWR)
        call = _wait_finished(app, call_sid("dropped"))
        assert call.failure == CUT_SHORT
        assert call.outcome is None
        # Twilio then asks what to do with the call: a person (the default department), never silence.
        url, form = server.http_base + "/twilio/after-stream", {"CallSid": call_sid("dropped")}
        after = httpx.post(url, data=form, headers=TWILIO.headers(url, form), timeout=WAIT_S)
        assert ElementTree.fromstring(after.text).find("Dial/Number").text == "+15005550101"

        with connect(server.ws_url, additional_headers=signed, open_timeout=10) as ws:  # it goes on taking calls
            parameters = admit_on(server.http_base, call_sid("after-drop"))
            ws.send(json.dumps(start_message(call_sid=call_sid("after-drop"), parameters=parameters)))
            assert json.loads(ws.recv(timeout=WAIT_S))["event"] == "media"
            ws.send(json.dumps({"event": "stop", "streamSid": STREAM_SID}))
            with pytest.raises(ConnectionClosedOK):  # Twilio reads on until the server closes after the stop
                while True:
                    ws.recv(timeout=WAIT_S)
        assert _wait_finished(app, call_sid("after-drop")).failure is None


def test_closing_a_stream_whose_peer_just_went_does_not_raise():
    """The peer's close (or a dropped connection) can arrive between the state check and our close frame; seen on
    a real socket when the caller closed while the server was still sending."""
    from starlette.websockets import WebSocketDisconnect, WebSocketState

    from telephony.session import CLOSE_NORMAL, close_websocket

    class GoneMeanwhile:
        application_state = WebSocketState.CONNECTED
        client_state = WebSocketState.CONNECTED
        closes = 0

        async def close(self, code: int) -> None:
            self.closes += 1
            raise WebSocketDisconnect(code=1006)

    websocket = GoneMeanwhile()
    asyncio.run(close_websocket(websocket, CLOSE_NORMAL))
    assert websocket.closes == 1
