"""Twilio's side of a Media Stream, emulated for the QA replay: what Twilio sends, and how it treats what it gets.

    TwilioSide: the inbound messages (connected, start, media, dtmf, mark echoes, stop), numbered as Twilio numbers
        them
    check_server_message: each message the server sends, validated as Twilio would (media, mark or clear only;
        the call's stream SID; a media payload of exactly one 160-byte frame)
    PlaybackBuffer: Twilio's outbound playback, 20 ms per tick, marks echoed when playback reaches them; it also
        counts underruns (playback running dry in the middle of an answer)

The server's own models for these messages are in `telephony.twilio.messages`; this module is the other end of the
wire, and checks what the server sends as strictly as Twilio does.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections import deque
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from telephony.twilio.framing import FRAME_BYTES, FRAME_MS, TWILIO_SAMPLE_RATE_HZ
from telephony.twilio.messages import MULAW_ENCODING


class TwilioSide:
    """Builds the messages Twilio sends on one stream, numbered and shaped as Twilio sends them.

    Twilio sends ``sequenceNumber``, ``chunk`` and ``timestamp`` as strings; ``sequenceNumber`` counts every
    message from ``start`` on (``connected`` has none), ``chunk`` counts media messages from 1, and ``timestamp`` is
    the frame's position in the stream in milliseconds.
    """

    def __init__(self, account_sid: str, call_sid: str, stream_sid: str) -> None:
        """Bind the builder to one call and stream."""
        self.account_sid = account_sid
        self.call_sid = call_sid
        self.stream_sid = stream_sid
        self.custom_parameters: dict[str, str] = {}
        """The ``<Stream><Parameter>`` values of the call's TwiML (`qa.twilio_signing.admit_call` fills them in)."""
        self._sequence = 0
        self._chunk = 0

    @classmethod
    def random(cls) -> TwilioSide:
        """A builder with fresh random SIDs, formed as Twilio forms them (two letters and 32 hex digits)."""
        return cls("AC" + secrets.token_hex(16), "CA" + secrets.token_hex(16), "MZ" + secrets.token_hex(16))

    def _message(self, event: str, **body: Any) -> str:
        self._sequence += 1
        return json.dumps({"event": event, "sequenceNumber": str(self._sequence), "streamSid": self.stream_sid, **body})

    def connected(self) -> str:
        """The first message on the socket."""
        return json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})

    def start(self) -> str:
        """Stream metadata: the SIDs, the track, the stream's parameters and the media format (8 kHz mu-law mono)."""
        return self._message(
            "start",
            start={
                "accountSid": self.account_sid,
                "streamSid": self.stream_sid,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "customParameters": dict(self.custom_parameters),
                "mediaFormat": {"encoding": MULAW_ENCODING, "sampleRate": TWILIO_SAMPLE_RATE_HZ, "channels": 1},
            },
        )

    def media(self, frame: bytes, timestamp_ms: int) -> str:
        """One 20 ms frame of the caller's audio."""
        self._chunk += 1
        payload = base64.b64encode(frame).decode("ascii")
        return self._message(
            "media",
            media={"track": "inbound", "chunk": str(self._chunk), "timestamp": str(timestamp_ms), "payload": payload},
        )

    def dtmf(self, digit: str) -> str:
        """A key press."""
        return self._message("dtmf", dtmf={"track": "inbound_track", "digit": digit})

    def mark(self, name: str) -> str:
        """The echo of a mark: playback reached it, or it was cleared."""
        return self._message("mark", mark={"name": name})

    def stop(self) -> str:
        """The end of the stream."""
        return self._message("stop", stop={"accountSid": self.account_sid, "callSid": self.call_sid})


class ServerProtocolError(ValueError):
    """A message from the server that Twilio would refuse (error 31951) or that is not one of media/mark/clear."""


@dataclass(frozen=True, slots=True)
class AgentMedia:
    """20 ms of agent audio to queue for playback."""

    frame: bytes
    """160 bytes of 8 kHz mu-law."""


@dataclass(frozen=True, slots=True)
class AgentMark:
    """A mark to echo once playback reaches it."""

    name: str


@dataclass(frozen=True, slots=True)
class AgentClear:
    """Drop the buffered audio and echo the pending marks."""


class _Outbound(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    stream_sid: str = Field(alias="streamSid")


class _OutboundPayload(BaseModel):
    payload: str


class _OutboundMedia(_Outbound):
    event: Literal["media"]
    media: _OutboundPayload


class _OutboundMarkName(BaseModel):
    name: str = Field(min_length=1)


class _OutboundMark(_Outbound):
    event: Literal["mark"]
    mark: _OutboundMarkName


class _OutboundClear(_Outbound):
    event: Literal["clear"]


_OUTBOUND = TypeAdapter(
    Annotated[_OutboundMedia | _OutboundMark | _OutboundClear, Field(discriminator="event")],
)


def check_server_message(message: str | bytes, stream_sid: str) -> AgentMedia | AgentMark | AgentClear:
    """Validate one message the server sent, as Twilio would.

    Args:
        message: the WebSocket message (Twilio accepts JSON text only).
        stream_sid: the stream the socket carries.

    Returns:
        The message's meaning for the playback buffer.

    Raises:
        ServerProtocolError: a binary frame, not JSON, an event other than media/mark/clear, a missing field, another
            stream's SID, or a media payload that is not base64 of exactly one 160-byte frame.
    """
    if isinstance(message, bytes):
        raise ServerProtocolError(f"binary frame of {len(message)} bytes (Twilio takes JSON text)")
    try:
        data = json.loads(message)
    except json.JSONDecodeError as error:
        raise ServerProtocolError(f"not JSON: {error.msg}") from error
    if not isinstance(data, dict) or data.get("event") not in ("media", "mark", "clear"):
        event = data.get("event") if isinstance(data, dict) else None
        raise ServerProtocolError(f"event {event!r}: expected 'media', 'mark' or 'clear'")
    try:
        parsed = _OUTBOUND.validate_python(data)
    except ValidationError as error:
        first = error.errors()[0]
        location = ".".join(str(part) for part in first["loc"][1:]) or "(message)"
        raise ServerProtocolError(f"bad {data['event']!r}: {location}: {first['msg']}") from error
    if parsed.stream_sid != stream_sid:
        raise ServerProtocolError(f"{parsed.event!r} for stream {parsed.stream_sid!r}, expected {stream_sid!r}")
    if isinstance(parsed, _OutboundMark):
        return AgentMark(parsed.mark.name)
    if isinstance(parsed, _OutboundClear):
        return AgentClear()
    try:
        frame = base64.b64decode(parsed.media.payload, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ServerProtocolError(f"'media': payload is not valid base64 ({error})") from error
    if len(frame) != FRAME_BYTES:
        raise ServerProtocolError(f"'media': payload decodes to {len(frame)} bytes, expected {FRAME_BYTES} (20 ms)")
    return AgentMedia(frame)


@dataclass(frozen=True, slots=True)
class PlaybackTick:
    """What one 20 ms tick of playback did."""

    frame: bytes | None
    """The frame played during this tick, or None when nothing was buffered."""
    marks: tuple[str, ...]
    """Marks reached before this tick's frame (the audio before them has finished playing)."""


class PlaybackBuffer:
    """Twilio's outbound playback for one stream, simulated: in order, 20 ms per tick, no back-pressure.

    A mark is reached when every frame queued before it has been played, so it is echoed on the tick after its
    last frame. `clear` drops the queued frames and hands back the pending marks, which Twilio echoes at once.

    An underrun is playback running dry inside one answer: agent audio arrives again after at least one empty tick,
    with no `clear` and no caller speech (`caller_spoke`) since the last frame played. The caller hears a hole in the
    reply, such as a sentence that was not ready when the previous one ended. Silence before an answer (the response
    latency) is not an underrun: the caller's speech opens a new answer.
    """

    def __init__(self) -> None:
        """Start empty."""
        # Frames (bytes) and marks (str) in the order they arrived.
        self._queue: deque[bytes | str] = deque()
        self._frames = 0
        self.frames_played = 0
        """Frames played so far."""
        self.frames_cleared = 0
        """Frames dropped by `clear` before they were played."""
        self.underruns = 0
        """Holes in an answer: agent audio that arrived after playback had run dry within the same answer."""
        self.underrun_ms = 0
        """The length of all those holes together."""
        self.longest_underrun_ms = 0
        """The longest hole."""
        # Empty ticks since the last frame played, counted only while an answer is open (a frame has played since
        # the last clear or caller speech).
        self._answer_open = False
        self._dry_ticks = 0

    @property
    def buffered_frames(self) -> int:
        """Frames waiting to be played."""
        return self._frames

    @property
    def idle(self) -> bool:
        """Nothing waits: every frame has been played and every mark reached."""
        return not self._queue

    def add_media(self, frame: bytes) -> None:
        """Queue one frame."""
        if self._answer_open and self._dry_ticks:
            hole_ms = self._dry_ticks * FRAME_MS
            self.underruns += 1
            self.underrun_ms += hole_ms
            self.longest_underrun_ms = max(self.longest_underrun_ms, hole_ms)
            self._dry_ticks = 0
        self._queue.append(bytes(frame))
        self._frames += 1

    def caller_spoke(self) -> None:
        """The caller spoke or pressed a key: agent audio after this belongs to a new answer, not a hole in this one."""
        self._answer_open = False
        self._dry_ticks = 0

    def add_mark(self, name: str) -> None:
        """Queue a mark behind the frames queued so far."""
        self._queue.append(str(name))

    def tick(self) -> PlaybackTick:
        """Play the next 20 ms: first report the marks now reached, then take the next frame."""
        marks = []
        while self._queue and isinstance(self._queue[0], str):
            marks.append(self._queue.popleft())
        frame = None
        if self._queue:
            frame = self._queue.popleft()
            self._frames -= 1
            self.frames_played += 1
            self._answer_open = True
            self._dry_ticks = 0
        elif self._answer_open:
            self._dry_ticks += 1
        return PlaybackTick(frame, tuple(marks))

    def clear(self) -> tuple[str, ...]:
        """Drop every queued frame.

        Returns:
            The pending marks, in order: all of them are echoed at once.
        """
        marks = tuple(item for item in self._queue if isinstance(item, str))
        self.frames_cleared += self._frames
        self._queue.clear()
        self._frames = 0
        # Whatever comes next is a new answer.
        self._answer_open = False
        self._dry_ticks = 0
        return marks
