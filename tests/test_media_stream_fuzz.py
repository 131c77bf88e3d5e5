"""Property-based fuzzing of the media-stream handler: whatever a peer sends, the server survives it.

Each example plays one hostile stream (random and malformed JSON, binary and huge frames, bad base64, events out of
order, another stream's SID, no stop) next to a well-behaved call. Properties: nothing raises out of the handler
(the TestClient re-raises the app's exceptions), the good call is still answered, and every call's record is
finished once its socket is closed; afterwards the app still answers /healthz and a new call.
"""

from __future__ import annotations

import base64
import itertools
import json

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from telephony.calls import CallState
from telephony.twilio.media_stream import MAX_MESSAGE_CHARS

from .helpers import (
    app_client,
    call_sid,
    dtmf_message,
    receive_until_mark,
    start_message,
    stream_sid,
    twilio_stream,
)

FUZZ_STREAM = stream_sid("fuzz")
GOOD_STREAM = stream_sid("good")
# A placeholder replaced by a fresh call SID for every start sent, so each example's calls can be looked up.
CALL_PLACEHOLDER = call_sid("placeholder")

# Mostly the hostile stream's own SID, so that its messages get past the SID check often enough.
_stream_sids = st.sampled_from([FUZZ_STREAM, FUZZ_STREAM, FUZZ_STREAM, GOOD_STREAM, stream_sid("other"), ""])
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


def _start(stream_sid: str, encoding: str, rate: int) -> dict:
    message = start_message(stream_sid=stream_sid, call_sid=CALL_PLACEHOLDER)
    message["start"]["mediaFormat"].update(encoding=encoding, sampleRate=rate)
    return message


_starts = st.builds(
    _start,
    _stream_sids,
    st.sampled_from(["audio/x-mulaw", "audio/x-mulaw", "audio/l16"]),
    st.sampled_from([8000, 8000, 16000, 0]),
)
_payloads = st.one_of(
    st.binary(max_size=400).map(lambda data: base64.b64encode(data).decode()),  # any length, not only 160
    st.text(max_size=40),  # mostly not base64
    st.sampled_from(["!!!", "QUJD=", "=", "\u00ff\u00fe"]),
    _json_values,  # not even a string
)
_media = st.builds(
    lambda sid, track, payload: {"event": "media", "streamSid": sid, "media": {"track": track, "payload": payload}},
    _stream_sids,
    st.sampled_from(["inbound", "inbound_track", "outbound", "both", ""]),
    _payloads,
)
_dtmf = st.builds(
    lambda sid, digit: {"event": "dtmf", "streamSid": sid, "dtmf": {"track": "inbound_track", "digit": digit}},
    _stream_sids,
    st.text(max_size=3),
)
_mark = st.builds(
    lambda sid, name: {"event": "mark", "streamSid": sid, "mark": {"name": name}}, _stream_sids, st.text()
)
_stop = st.builds(lambda sid: {"event": "stop", "streamSid": sid}, _stream_sids)
# A known event with any other fields: shapes the parser must reject without crashing.
_misshapen = st.builds(
    lambda event, fields: {**fields, "event": event},
    st.sampled_from(["connected", "start", "media", "dtmf", "mark", "stop", "future-event"]),
    st.dictionaries(st.sampled_from(["streamSid", "start", "media", "dtmf", "mark", "sequenceNumber"]), _json_values),
)
_messages = st.one_of(_starts, _media, _dtmf, _mark, _stop, _misshapen, _json_values).map(json.dumps)
_frames = st.one_of(
    _messages,
    _messages,
    st.text(max_size=200),  # anything at all, mostly not JSON
    st.binary(max_size=300),  # Twilio never sends binary frames
    st.integers(MAX_MESSAGE_CHARS - 10, 3 * MAX_MESSAGE_CHARS).map(lambda size: '{"event": "media"' + " " * size),
)


def _send(ws, frame: str | bytes, call_sids: itertools.count, opened: list[str]) -> None:
    if isinstance(frame, bytes):
        ws.send_bytes(frame)
        return
    if CALL_PLACEHOLDER in frame:
        # A start (the only frames naming the placeholder): a call of its own, admitted, so that it can open.
        sid = call_sid(f"fuzz-{next(call_sids)}")
        opened.append(sid)
        ws.admit(sid)
        ws.send_json(json.loads(frame.replace(CALL_PLACEHOLDER, sid)))  # with the call's stream secret
        return
    ws.send_text(frame)


def _answers_a_key(ws, stream_sid: str) -> None:
    """The good call answers key 7 (opening hours): a reply with audio, after its greeting."""
    ws.send_json(dtmf_message("7", stream_sid))
    mark, events = "", []
    while not mark.startswith("2."):  # marks are named <exchange>.<sentence>.<n>: 1 is the greeting
        messages, mark = receive_until_mark(ws)
        events += [message["event"] for message in messages]
    assert "media" in events


@pytest.fixture
def client(voice_services):
    # Every hostile start is admitted first; those refused before claiming their admission hold it for a while.
    with app_client(voice_services, max_calls=1000) as client:
        yield client


def test_no_hostile_stream_crashes_the_server_or_disturbs_another_call(client):
    registry = client.app.state.voice.registry
    call_sids = itertools.count()
    good_calls = itertools.count()

    @settings(
        max_examples=40,
        deadline=None,
        database=None,  # nothing written into the working tree
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    # Two in three hostile streams begin well, so that what follows reaches a live call.
    @given(begins_well=st.sampled_from([True, True, False]), frames=st.lists(_frames, max_size=20))
    def hostile_stream_beside_a_good_call(begins_well: bool, frames: list[str | bytes]) -> None:
        if begins_well:
            frames = [json.dumps(start_message(FUZZ_STREAM, CALL_PLACEHOLDER)), *frames]
        good_sid = call_sid(f"good-{next(good_calls)}")
        opened: list[str] = []
        with twilio_stream(client) as good:
            good.send_json(start_message(GOOD_STREAM, good_sid))
            receive_until_mark(good)
            with twilio_stream(client) as hostile:
                for frame in frames:
                    _send(hostile, frame, call_sids, opened)
                # Leaving the block closes the socket, with or without a stop sent before.
            _answers_a_key(good, GOOD_STREAM)
            good.send_json({"event": "stop", "streamSid": GOOD_STREAM})
        for sid in [*opened, good_sid]:
            call = registry.get(sid)
            assert call is None or call.state is CallState.FINISHED, sid  # None: refused before it opened
        assert registry.get(good_sid).failure is None
        assert registry.live_count() == 0
        # Shown by --hypothesis-show-statistics: how often a hostile stream got as far as a call.
        event("a hostile call was opened" if any(registry.get(sid) for sid in opened) else "no hostile call opened")

    hostile_stream_beside_a_good_call()

    health = client.get("/healthz").json()
    assert (health["status"], health["live_calls"]) == ("ok", 0)
    with twilio_stream(client) as ws:
        ws.send_json(start_message(GOOD_STREAM, call_sid("after-fuzz")))
        receive_until_mark(ws)
        _answers_a_key(ws, GOOD_STREAM)
        ws.send_json({"event": "stop", "streamSid": GOOD_STREAM})
