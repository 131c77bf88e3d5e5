"""Twilio Media Streams messages: validated on the way in, built only well-formed on the way out.

Twilio sends JSON text frames (``connected``, ``start``, ``media``, ``dtmf``, ``mark``, ``stop``); we send ``media``,
``mark`` and ``clear``. A message Twilio cannot use is an error on its side (31951), so outbound messages can only
be built through `OutboundBuilder`, which is bound to one stream SID.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

MULAW_ENCODING = "audio/x-mulaw"
"""The only ``mediaFormat.encoding`` of Media Streams (at `telephony.twilio.framing.TWILIO_SAMPLE_RATE_HZ`)."""


class ProtocolError(ValueError):
    """A frame from Twilio that is not a valid Media Streams message."""


class _Message(BaseModel):
    # Twilio adds fields over time; unknown fields are ignored, missing or mistyped required ones are errors.
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class _StreamEvent(_Message):
    """Every event after ``connected`` names its stream."""

    stream_sid: str = Field(alias="streamSid", min_length=1)
    sequence_number: int = Field(alias="sequenceNumber", default=0)


class Connected(_Message):
    event: Literal["connected"]
    protocol: str = "Call"
    version: str = ""


class MediaFormat(_Message):
    encoding: str
    sample_rate: int = Field(alias="sampleRate")
    channels: int = 1


class StartInfo(_Message):
    account_sid: str = Field(alias="accountSid")
    call_sid: str = Field(alias="callSid")
    stream_sid: str = Field(alias="streamSid", default="")
    tracks: list[str] = Field(default_factory=lambda: ["inbound"])
    custom_parameters: dict[str, str] = Field(alias="customParameters", default_factory=dict)
    media_format: MediaFormat = Field(alias="mediaFormat")


class Start(_StreamEvent):
    event: Literal["start"]
    start: StartInfo


class MediaPayload(_Message):
    track: str = "inbound"
    chunk: int = 0
    timestamp_ms: int = Field(alias="timestamp", default=0)
    payload: bytes

    @field_validator("payload", mode="before")
    @classmethod
    def _decode_base64(cls, value: Any) -> bytes:
        if not isinstance(value, str):
            raise ValueError("expected a base64 string")
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error as error:
            raise ValueError(f"invalid base64: {error}") from error


class Media(_StreamEvent):
    event: Literal["media"]
    media: MediaPayload


class DtmfInfo(_Message):
    track: str = "inbound_track"
    digit: str = Field(pattern=r"^[0-9*#]$")


class Dtmf(_StreamEvent):
    event: Literal["dtmf"]
    dtmf: DtmfInfo


class MarkInfo(_Message):
    name: str


class Mark(_StreamEvent):
    event: Literal["mark"]
    mark: MarkInfo


class Stop(_StreamEvent):
    event: Literal["stop"]


class Unknown(_Message):
    """An event this server does not handle (Twilio may add more); ignored in one place."""

    event: str


InboundMessage = Annotated[Connected | Start | Media | Dtmf | Mark | Stop, Field(discriminator="event")]
_INBOUND = TypeAdapter(InboundMessage)
_KNOWN_EVENTS = frozenset({"connected", "start", "media", "dtmf", "mark", "stop"})


def parse_inbound(text: str) -> Connected | Start | Media | Dtmf | Mark | Stop | Unknown:
    """Validate one text frame from Twilio.

    Raises:
        ProtocolError: not JSON, not an object, or a known event with a bad shape (the message names the field).
    """
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        raise ProtocolError(f"not JSON: {error}") from error
    if not isinstance(data, dict) or not isinstance(data.get("event"), str):
        raise ProtocolError("expected a JSON object with a string 'event'")
    if data["event"] not in _KNOWN_EVENTS:
        return Unknown(event=data["event"])
    try:
        return _INBOUND.validate_python(data)
    except ValidationError as error:
        first = error.errors()[0]
        location = ".".join(str(part) for part in first["loc"][1:]) or "(message)"
        raise ProtocolError(f"bad {data['event']!r} message: {location}: {first['msg']}") from error


class OutboundBuilder:
    """Builds the only messages we send, for one stream: a wrong-stream message cannot be built."""

    def __init__(self, stream_sid: str) -> None:
        if not stream_sid:
            raise ValueError("stream_sid must not be empty")
        self.stream_sid = stream_sid

    def media(self, mulaw_frame: bytes) -> str:
        """A ``media`` message carrying raw 8 kHz mu-law audio (no file header)."""
        if not mulaw_frame:
            raise ValueError("a media message needs audio")
        payload = base64.b64encode(mulaw_frame).decode("ascii")
        return json.dumps({"event": "media", "streamSid": self.stream_sid, "media": {"payload": payload}})

    def mark(self, name: str) -> str:
        """A ``mark`` message; Twilio echoes it when playback reaches this point."""
        if not name:
            raise ValueError("a mark needs a name")
        return json.dumps({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})

    def clear(self) -> str:
        """A ``clear`` message: Twilio drops the audio buffered so far and returns the pending marks."""
        return json.dumps({"event": "clear", "streamSid": self.stream_sid})
