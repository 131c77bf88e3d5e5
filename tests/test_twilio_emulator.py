"""Twilio's side of the wire, as the QA replay emulates it: inbound messages, server message checks, playback."""

from __future__ import annotations

import base64
import json

import pytest

from qa.twilio_emulator import (
    AgentClear,
    AgentMark,
    AgentMedia,
    PlaybackBuffer,
    ServerProtocolError,
    TwilioSide,
    check_server_message,
)
from telephony.twilio.messages import Dtmf, Mark, Media, Start, Stop, parse_inbound

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


def test_playback_running_dry_inside_an_answer_is_an_underrun():
    buffer = PlaybackBuffer()
    buffer.add_media(FRAME)
    buffer.add_mark("sentence-1")
    for _ in range(4):  # one frame played, then three empty ticks: the next sentence is late
        buffer.tick()
    buffer.add_media(FRAME)
    buffer.add_media(FRAME)
    buffer.tick()
    buffer.tick()
    assert (buffer.underruns, buffer.underrun_ms, buffer.longest_underrun_ms) == (1, 60, 60)


def test_silence_before_an_answer_or_after_a_clear_is_not_an_underrun():
    buffer = PlaybackBuffer()
    for _ in range(10):  # waiting for the greeting: the response latency, not a hole
        buffer.tick()
    buffer.add_media(FRAME)
    buffer.tick()
    for _ in range(5):
        buffer.tick()
    buffer.caller_spoke()  # the caller's turn: what follows is a new answer
    buffer.add_media(FRAME)
    buffer.add_media(FRAME)
    buffer.tick()
    buffer.clear()  # barge-in: the answer is over
    buffer.tick()
    buffer.add_media(FRAME)
    buffer.tick()
    assert buffer.frames_played == 3 and buffer.underruns == 0 and buffer.underrun_ms == 0


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
