"""Media Streams messages: every inbound shape validated, outbound built only well-formed for one stream."""

from __future__ import annotations

import base64
import json

import pytest

from telephony.twilio.messages import (
    Connected,
    Dtmf,
    Mark,
    Media,
    OutboundBuilder,
    ProtocolError,
    Start,
    Stop,
    Unknown,
    parse_inbound,
)

START = {
    "event": "start",
    "sequenceNumber": "1",
    "streamSid": "MZ1",
    "start": {
        "accountSid": "AC1",
        "streamSid": "MZ1",
        "callSid": "CA1",
        "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": {"lang": "en"},
    },
}


def media(payload: bytes = bytes(160), **overrides) -> str:
    message = {
        "event": "media",
        "sequenceNumber": "3",
        "streamSid": "MZ1",
        "media": {"track": "inbound", "chunk": "1", "timestamp": "20", "payload": base64.b64encode(payload).decode()},
    }
    message.update(overrides)
    return json.dumps(message)


def test_every_twilio_event_parses_to_its_type():
    assert isinstance(parse_inbound('{"event":"connected","protocol":"Call","version":"1.0.0"}'), Connected)
    start = parse_inbound(json.dumps(START))
    assert isinstance(start, Start)
    assert start.start.call_sid == "CA1" and start.start.media_format.sample_rate == 8000
    assert start.start.custom_parameters == {"lang": "en"}
    parsed = parse_inbound(media(b"\xff" * 160))
    assert isinstance(parsed, Media) and parsed.media.payload == b"\xff" * 160 and parsed.media.timestamp_ms == 20
    dtmf = parse_inbound('{"event":"dtmf","streamSid":"MZ1","dtmf":{"track":"inbound_track","digit":"0"}}')
    assert isinstance(dtmf, Dtmf) and dtmf.dtmf.digit == "0"
    assert isinstance(parse_inbound('{"event":"mark","streamSid":"MZ1","mark":{"name":"1.0"}}'), Mark)
    assert isinstance(parse_inbound('{"event":"stop","streamSid":"MZ1","stop":{"callSid":"CA1"}}'), Stop)


def test_unknown_events_are_recognised_not_errors():
    assert parse_inbound('{"event":"something-new","streamSid":"MZ1"}') == Unknown(event="something-new")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"no_event": 1}', "expected a JSON object with a string 'event'"),
        (media(streamSid=""), "streamSid"),
        ('{"event":"media","streamSid":"MZ1","media":{"payload":"***"}}', "media.payload: Value error, invalid base64"),
        ('{"event":"media","streamSid":"MZ1","media":{"payload":5}}', "media.payload"),
        ('{"event":"dtmf","streamSid":"MZ1","dtmf":{"digit":"12"}}', "dtmf.digit"),
        ('{"event":"mark","streamSid":"MZ1"}', "mark: Field required"),
        ('{"event":"start","streamSid":"MZ1","start":{"accountSid":"AC1"}}', "start.callSid: Field required"),
    ],
)
def test_bad_shapes_raise_protocol_error_naming_the_field(text, error):
    with pytest.raises(ProtocolError, match=error):
        parse_inbound(text)


def test_deeply_nested_json_is_a_protocol_error_not_a_crash():
    with pytest.raises(ProtocolError):
        parse_inbound("[" * 100_000 + "]" * 100_000)


def test_outbound_messages_carry_the_stream_sid_and_raw_mulaw():
    builder = OutboundBuilder("MZ9")
    sent = json.loads(builder.media(b"\x01" * 160))
    assert sent == {
        "event": "media",
        "streamSid": "MZ9",
        "media": {"payload": base64.b64encode(b"\x01" * 160).decode()},
    }
    assert json.loads(builder.mark("greeting.0")) == {
        "event": "mark",
        "streamSid": "MZ9",
        "mark": {"name": "greeting.0"},
    }
    assert json.loads(builder.clear()) == {"event": "clear", "streamSid": "MZ9"}


def test_malformed_outbound_messages_cannot_be_built():
    with pytest.raises(ValueError, match="stream_sid"):
        OutboundBuilder("")
    builder = OutboundBuilder("MZ9")
    with pytest.raises(ValueError, match="needs audio"):
        builder.media(b"")
    with pytest.raises(ValueError, match="needs a name"):
        builder.mark("")
