"""QA replay: fixture calls played to the server exactly as Twilio Media Streams would, with a report.

    fixture JSON -> caller audio ("say": the bundled Piper voice; "audio": a WAV file) -> 20 ms mu-law frames
    -> WS /twilio/media in real time: connected, start, a media frame every 20 ms (silence between turns), dtmf, stop
    <- media, mark, clear: each one checked, then queued in a simulated Twilio playback buffer that plays 20 ms per
       tick and echoes each mark when playback reaches it (and every pending mark at once on a clear)

Per caller turn it measures the response latency (last voiced caller frame sent -> first agent frame received) and
the barge-in reaction (first voiced caller frame sent over buffered agent audio -> clear received), and records both
directions on one 8 kHz timeline: what the caller sent and what the caller really heard (the frames dequeued from
the playback buffer, so a cleared reply is cut where Twilio would cut it). The report folder gets a JSON file and a
stereo WAV (left caller, right agent) per call, and a summary.md.

By default the server runs in this process (the app of `telephony.app`, served by uvicorn on 127.0.0.1 in a
background thread), so the transcripts and decisions can be read from the app after each call. With a `--server`
URL the replay talks to a running server; transcripts and decisions are then reported as null until the call API
(`GET /api/calls/{call_sid}`) exists.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import bisect
import contextlib
import json
import math
import secrets
import socket
import sys
import threading
import time
import wave
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

import httpx
import numpy as np
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter, ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from voice.codec import mulaw_to_pcm16, pcm16_to_float32
from voice.events import Decision, Dtmf, Transcript
from voice.framing import FRAME_BYTES, FRAME_MS, MULAW_SILENCE, TWILIO_SAMPLE_RATE_HZ, pcm_to_twilio_frames

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

    from voice.pipeline import TurnRecord, VoiceServices
    from voice.tts_piper import PiperSynthesizer

DEFAULT_GAP_MS = 600
"""Silence the caller leaves after the agent finished speaking before taking their turn, as people do."""
VOICED_RMS_DBFS = -40.0
"""A 20 ms caller frame counts as voiced at this RMS level or above: well above the -60 dBFS line noise of the
recorded fixtures and Piper's near-silent edges, below every syllable of speech at a normal level."""
CALLER_PEAK_DBFS = -6.0
"""Peak level of the synthesised caller speech: Piper normalises each sentence to full scale, and a real line
leaves headroom (the recorded fixtures are made at the same level)."""
CALLER_LENGTH_SCALE = 1.0
"""Default speaking pace of the synthesised caller: the voice's natural pace, brisker than the agent's calm 1.35."""
REPLY_TIMEOUT_S = 15.0
"""Longest wait for the agent to start answering a turn; the server gives up on ASR after 10 s and transfers."""
END_GRACE_S = 2.0
"""The caller stays on the line (silent) this long after the last turn before the replay sends `stop`."""
CLOSE_TIMEOUT_S = 5.0
"""Longest wait for the server to close the socket after `stop`, and for it to finish the call afterwards."""
SERVER_START_TIMEOUT_S = 300.0
"""Longest wait for the in-process server to load its models (tens of seconds on two cores)."""
MAX_VIOLATION_EXAMPLES = 20
"""Protocol violations kept verbatim per call; all of them are counted."""
MEDIA_PATH = "/twilio/media"
AFTER_STREAM_PATH = "/twilio/after-stream"

_FRAME_S = FRAME_MS / 1000
_SILENCE_FRAME = bytes([MULAW_SILENCE]) * FRAME_BYTES
# How often the script looks at the playback state while it waits; half a tick, so no tick goes unseen.
_POLL_S = _FRAME_S / 2


class FixtureError(ValueError):
    """A fixture call file is missing, malformed or refers to audio that cannot be used; names the file and field."""


class ReplayError(RuntimeError):
    """The replay could not run at all (the in-process server did not start)."""


Progress = Callable[[str], None]
"""Receives one line of progress per event (greeting played, turn answered, call ended)."""


def progress_to_stderr(line: str) -> None:
    """The default `Progress`: one line on stderr, flushed at once."""
    print(line, file=sys.stderr, flush=True)


# --- fixture format -------------------------------------------------------------------------------------------------


class _TurnBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ClassVar[str]
    wait: Literal["reply", "none"] = "reply"
    """After this turn: "reply" waits until the agent's answer has been played in full (every mark echoed), plus
    `gap_ms`; "none" goes on with the next turn at once (to talk over the agent)."""
    gap_ms: int = Field(default=DEFAULT_GAP_MS, ge=0, le=10_000)
    """Silence after the agent's answer before the next turn, with `wait` "reply"."""


class SayTurn(_TurnBase):
    """The caller says `say`, synthesised at replay time with the bundled Piper voice."""

    kind: ClassVar[str] = "say"
    say: str = Field(min_length=1, max_length=1000)
    """What the caller says."""
    length_scale: float | None = Field(default=None, ge=0.5, le=2.0)
    """Piper's pace for this turn (above 1 is slower); default `CALLER_LENGTH_SCALE`."""


class AudioTurn(_TurnBase):
    """The caller plays a recording: a mono 16-bit PCM WAV at any rate, resampled to 8 kHz."""

    kind: ClassVar[str] = "audio"
    audio: str = Field(min_length=1)
    """Path of the WAV file, relative to the fixture file."""


class DtmfTurn(_TurnBase):
    """The caller presses a key."""

    kind: ClassVar[str] = "dtmf"
    dtmf: str = Field(pattern=r"^[0-9*#]$")
    """One of 0-9, * and #."""


class PauseTurn(_TurnBase):
    """The caller stays silent (the line keeps sending silence frames)."""

    kind: ClassVar[str] = "pause"
    pause_ms: int = Field(gt=0, le=60_000)
    """How long, in milliseconds (rounded up to whole 20 ms frames)."""
    wait: Literal["reply", "none"] = "none"
    """A pause answers nothing: by default the next turn follows at once; "reply" then waits until the agent is
    quiet."""


class HangupTurn(BaseModel):
    """The caller hangs up: the replay closes the socket without sending `stop`. Only as the last turn."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ClassVar[str] = "hangup"
    hangup: Literal[True]


# The key that makes a JSON object a turn of each kind; exactly one must be present.
_TURN_KEYS = ("say", "audio", "dtmf", "pause_ms", "hangup")


def _turn_key(value: Any) -> str | None:
    if isinstance(value, dict):
        present = [key for key in _TURN_KEYS if key in value]
        return present[0] if len(present) == 1 else None
    return next((key for key in _TURN_KEYS if hasattr(value, key)), None)


Turn = Annotated[
    Annotated[SayTurn, Tag("say")]
    | Annotated[AudioTurn, Tag("audio")]
    | Annotated[DtmfTurn, Tag("dtmf")]
    | Annotated[PauseTurn, Tag("pause_ms")]
    | Annotated[HangupTurn, Tag("hangup")],
    Discriminator(
        _turn_key,
        custom_error_type="turn_kind",
        custom_error_message="expected an object with exactly one of 'say', 'audio', 'dtmf', 'pause_ms', 'hangup'",
    ),
]


class Fixture(BaseModel):
    """One fixture call: a script of caller turns (see audio_fixtures/README.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
    """Names the call in the report and its files (letters, digits, '_', '-', '.')."""
    language: Literal["en"] = "en"
    """Language of the call; English only for now (the bundled Piper voice and Whisper tiny.en are English)."""
    description: str = ""
    """What the call checks, for the people who read the report."""
    wait_for_greeting: bool = True
    """Listen to the whole greeting (plus the default gap) before the first turn; false starts the turns at once
    (a leading pause turn then places them inside the greeting)."""
    turns: tuple[Turn, ...] = Field(min_length=1)
    """The caller's turns, in order."""


def _location(loc: Sequence[int | str]) -> str:
    """Pydantic's error location as a JSON path: ``("turns", 2, "say", "wait")`` -> ``turns[2].wait``."""
    parts = list(loc)
    # The discriminator adds the turn's kind to the path; the file has no such level.
    if len(parts) >= 3 and parts[0] == "turns" and isinstance(parts[1], int) and parts[2] in _TURN_KEYS:
        del parts[2]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def read_wav_mono16(path: Path) -> tuple[np.ndarray, int]:
    """Read a mono 16-bit PCM WAV file.

    Args:
        path: the file.

    Returns:
        The samples as int16 and the sample rate in Hz.

    Raises:
        ValueError: not a WAV file, not mono, not 16-bit PCM, or empty; the message says which.
        OSError: the file cannot be read.
    """
    try:
        with wave.open(str(path), "rb") as reader:
            channels, width, rate = reader.getnchannels(), reader.getsampwidth(), reader.getframerate()
            data = reader.readframes(reader.getnframes())
    except (wave.Error, EOFError) as error:
        raise ValueError(f"not a PCM WAV file ({error})") from error
    if channels != 1:
        raise ValueError(f"expected a mono WAV, got {channels} channels")
    if width != 2:
        raise ValueError(f"expected 16-bit samples, got {8 * width}-bit")
    samples = np.frombuffer(data, dtype="<i2").astype(np.int16)
    if samples.size == 0:
        raise ValueError("the WAV file holds no audio")
    return samples, rate


@dataclass(frozen=True, slots=True)
class LoadedFixture:
    """A validated fixture and where it came from."""

    path: Path
    """The fixture file."""
    fixture: Fixture
    """Its content."""

    def audio_path(self, turn: AudioTurn) -> Path:
        """Where an audio turn's WAV file is: relative paths start at the fixture's folder."""
        return (self.path.parent / turn.audio).resolve()


def load_fixture(path: Path) -> LoadedFixture:
    """Read and validate one fixture call file, including the WAV files it refers to.

    Args:
        path: a JSON fixture file.

    Returns:
        The validated fixture.

    Raises:
        FixtureError: "<file>: <field>: <problem>", such as "calls/x.json: turns[2].wait: Input should be 'reply'
            or 'none'".
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FixtureError(f"{path}: fixture file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise FixtureError(f"{path}: cannot be read: {error}") from error
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise FixtureError(f"{path}: not valid JSON: line {error.lineno} column {error.colno}: {error.msg}") from error
    try:
        fixture = Fixture.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        raise FixtureError(f"{path}: {_location(first['loc'])}: {first['msg']}") from error

    loaded = LoadedFixture(path=path, fixture=fixture)
    for index, turn in enumerate(fixture.turns):
        if isinstance(turn, HangupTurn) and index != len(fixture.turns) - 1:
            raise FixtureError(f"{path}: turns[{index}].hangup: a hang-up must be the last turn")
        if isinstance(turn, AudioTurn):
            audio = loaded.audio_path(turn)
            if not audio.is_file():
                raise FixtureError(f"{path}: turns[{index}].audio: {audio}: file not found")
            try:
                read_wav_mono16(audio)
            except (ValueError, OSError) as error:
                raise FixtureError(f"{path}: turns[{index}].audio: {audio}: {error}") from error
    return loaded


def load_fixtures(paths: Sequence[Path]) -> list[LoadedFixture]:
    """Load several fixture files; their names must differ, as they name the report files.

    Raises:
        FixtureError: naming the file and the field at fault.
    """
    loaded = [load_fixture(Path(path)) for path in paths]
    seen: dict[str, Path] = {}
    for item in loaded:
        other = seen.setdefault(item.fixture.name, item.path)
        if other != item.path:
            raise FixtureError(f"{item.path}: name: {item.fixture.name!r} is also the name of {other}")
    return loaded


# --- caller audio ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PreparedTurn:
    """A turn ready to send: its 20 ms mu-law frames and which of them are voiced."""

    index: int
    """Position in the call, from 1."""
    spec: SayTurn | AudioTurn | DtmfTurn | PauseTurn | HangupTurn
    """The turn as the fixture states it."""
    frames: tuple[bytes, ...] = ()
    """160-byte mu-law frames (none for dtmf and hangup)."""
    voiced: tuple[bool, ...] = ()
    """Per frame: its energy reaches `VOICED_RMS_DBFS`."""

    @property
    def kind(self) -> str:
        """say, audio, dtmf, pause or hangup."""
        return self.spec.kind

    def describe(self) -> str:
        """The turn in a few words, for progress lines."""
        spec = self.spec
        if isinstance(spec, SayTurn):
            return f"say {spec.say!r}"
        if isinstance(spec, AudioTurn):
            return f"audio {spec.audio} ({len(self.frames) * FRAME_MS / 1000:.1f} s)"
        if isinstance(spec, DtmfTurn):
            return f"dtmf {spec.dtmf}"
        if isinstance(spec, PauseTurn):
            return f"pause {spec.pause_ms} ms"
        return "hang up"


@dataclass(frozen=True, slots=True)
class PreparedCall:
    """A fixture with its caller audio made, ready to replay."""

    source: LoadedFixture
    turns: tuple[PreparedTurn, ...]

    @property
    def name(self) -> str:
        """The fixture's name."""
        return self.source.fixture.name


def voiced_frames(frames: Sequence[bytes], threshold_dbfs: float = VOICED_RMS_DBFS) -> tuple[bool, ...]:
    """Which mu-law frames carry speech, judged by their energy alone.

    Args:
        frames: 8 kHz mu-law frames.
        threshold_dbfs: RMS level, relative to full scale, from which a frame counts as voiced.

    Returns:
        One flag per frame.
    """
    threshold = 32768.0 * 10 ** (threshold_dbfs / 20)
    flags = []
    for frame in frames:
        pcm = mulaw_to_pcm16(frame).astype(np.float64)
        flags.append(bool(pcm.size) and math.sqrt(float(np.mean(pcm * pcm))) >= threshold)
    return tuple(flags)


class CallerVoice:
    """The synthetic caller: the bundled Piper voice, one loaded model per pace, made deterministic."""

    def __init__(self) -> None:
        """Nothing is loaded until the first `say` turn needs it."""
        self._voices: dict[float, PiperSynthesizer] = {}

    def speak(self, text: str, length_scale: float | None) -> tuple[np.ndarray, int]:
        """Synthesise `text`.

        Returns:
            float32 mono samples at the peak `CALLER_PEAK_DBFS`, and their rate in Hz.
        """
        # Imported here: replaying recorded audio only needs no TTS, and piper-tts is an optional (GPL) backend.
        from voice.models import piper_voice_files
        from voice.tts_piper import PiperOptions, PiperSynthesizer

        scale = length_scale if length_scale is not None else CALLER_LENGTH_SCALE
        synthesizer = self._voices.get(scale)
        if synthesizer is None:
            # No generator noise: the same fixture makes the same audio on every run, so runs are comparable.
            options = PiperOptions(length_scale=scale, noise_scale=0.0, noise_w_scale=0.0)
            synthesizer = self._voices[scale] = PiperSynthesizer(*piper_voice_files(None), options=options)
        chunks = list(synthesizer.synthesize(text))
        audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, dtype=np.float32)
        peak = float(np.abs(audio).max()) if audio.size else 0.0
        if peak > 0:
            audio *= 10 ** (CALLER_PEAK_DBFS / 20) / peak
        return audio, synthesizer.sample_rate_hz


def prepare_call(source: LoadedFixture, voice: CallerVoice) -> PreparedCall:
    """Make the caller audio of every turn: synthesise the `say` turns, read and resample the `audio` turns.

    Raises:
        voice.models.ModelNotFound: a `say` turn needs the Piper voice and it is not installed.
    """
    turns = []
    for index, spec in enumerate(source.fixture.turns, start=1):
        frames: list[bytes] = []
        if isinstance(spec, SayTurn):
            audio, rate = voice.speak(spec.say, spec.length_scale)
            frames = pcm_to_twilio_frames(audio, rate)
        elif isinstance(spec, AudioTurn):
            samples, rate = read_wav_mono16(source.audio_path(spec))
            frames = pcm_to_twilio_frames(pcm16_to_float32(samples), rate)
        elif isinstance(spec, PauseTurn):
            frames = [_SILENCE_FRAME] * math.ceil(spec.pause_ms / FRAME_MS)
        turns.append(PreparedTurn(index, spec, tuple(frames), voiced_frames(frames)))
    return PreparedCall(source=source, turns=tuple(turns))


# --- the wire, Twilio's side ----------------------------------------------------------------------------------------


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
        """Stream metadata: the SIDs, the track and the media format (8 kHz mu-law mono)."""
        return self._message(
            "start",
            start={
                "accountSid": self.account_sid,
                "streamSid": self.stream_sid,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "customParameters": {},
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": TWILIO_SAMPLE_RATE_HZ, "channels": 1},
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
        self._queue.append(bytes(frame))
        self._frames += 1

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
        return marks


# --- one call -------------------------------------------------------------------------------------------------------


class EndedBy(StrEnum):
    """How the replayed call ended."""

    SERVER_CLOSED = "server_closed"
    """The server closed the socket (after a transfer or a goodbye, or on an error: see the close code)."""
    STOP_SENT = "stop_sent"
    """The script ran to its end and the replay sent `stop`, as Twilio does when the stream ends."""
    HUNG_UP = "hung_up"
    """The script's last turn hung up: the socket was closed without `stop`."""
    ERROR = "error"
    """The replay could not connect, or the connection broke."""


@dataclass(slots=True)
class TurnLog:
    """What happened to one caller turn, filled in while the call runs. Times in ms from the start of the stream:
    `*_ms` positions count 20 ms frames (they match the WAV); latencies are measured on the wall clock."""

    turn: PreparedTurn
    played: bool = False
    """False when the call had ended before this turn."""
    start_ms: int | None = None
    """Position of the turn's first frame, or of the key press."""
    end_ms: int | None = None
    """End of the turn's last frame."""
    voiced_start_ms: int | None = None
    """Position of the first voiced frame."""
    voiced_end_ms: int | None = None
    """End of the last voiced frame."""
    response_latency_ms: float | None = None
    """Last voiced frame (or the key press) sent -> first agent frame received after it."""
    barge_in_buffered_ms: int | None = None
    """Agent audio still buffered when the caller started speaking (or pressed the key); None when none was."""
    barge_in_clear_ms: float | None = None
    """First voiced frame (or key press) sent over buffered agent audio -> `clear` received."""
    note: str | None = None
    """Anything unexpected: no reply within `REPLY_TIMEOUT_S`, not played."""
    first_sent_s: float | None = None
    """Wall clock of the first voiced frame or the key press, in seconds from the start of the stream."""
    last_sent_s: float | None = None
    """Wall clock of the last voiced frame or the key press."""


@dataclass(slots=True)
class CallLog:
    """The client's record of one replayed call."""

    call: PreparedCall
    twilio: TwilioSide
    turns: list[TurnLog]
    started_at: str = ""
    """Wall-clock time the stream started, ISO 8601 UTC."""
    ended_by: EndedBy | None = None
    """How the call ended; None while it runs."""
    close_code: int | None = None
    """The WebSocket close code the server sent, if it closed."""
    detail: str | None = None
    """Why the call ended with an error."""
    duration_ms: int = 0
    greeting_first_audio_ms: float | None = None
    """Start sent -> first agent frame received."""
    agent_media_s: list[float] = field(default_factory=list)
    """Wall clock of every agent frame received, in seconds from the start of the stream."""
    clears_ms: list[float] = field(default_factory=list)
    """When each `clear` arrived."""
    marks_echoed: int = 0
    violations: int = 0
    violation_examples: list[str] = field(default_factory=list)
    caller_track: bytearray = field(default_factory=bytearray)
    """Mu-law, one frame per tick: what the caller sent."""
    agent_track: bytearray = field(default_factory=bytearray)
    """Mu-law, one frame per tick: what playback played (silence when nothing was buffered)."""
    frames_received: int = 0
    frames_played: int = 0
    frames_cleared: int = 0

    @property
    def completed(self) -> bool:
        """The call ran to its end: the script finished, or the server closed the stream normally."""
        if self.ended_by is EndedBy.SERVER_CLOSED:
            return self.close_code == 1000
        return self.ended_by in (EndedBy.STOP_SENT, EndedBy.HUNG_UP)


class _CallRunner:
    """Plays one prepared call over one WebSocket: a clock task, a receiver task and the script."""

    def __init__(self, call: PreparedCall, ws_url: str, progress: Progress) -> None:
        self._call = call
        self._url = ws_url
        self._progress = progress
        self._twilio = TwilioSide.random()
        self.log = CallLog(call=call, twilio=self._twilio, turns=[TurnLog(turn) for turn in call.turns])
        self._playback = PlaybackBuffer()
        # Caller frames waiting for their tick, with their voiced flag and turn; key presses go out on the next tick.
        self._frames: deque[tuple[bytes, bool, TurnLog]] = deque()
        self._keys: deque[TurnLog] = deque()
        self._send_lock = asyncio.Lock()
        self._closed = asyncio.Event()
        self._ticking = True
        self._tick = 0
        self._t0 = 0.0
        self._barge_in: TurnLog | None = None
        self._ws: ClientConnection | None = None

    def _now_s(self) -> float:
        return time.perf_counter() - self._t0

    def _say(self, text: str) -> None:
        self._progress(f"[{self._call.name}] {self._now_s():6.2f} s  {text}")

    async def _send(self, text: str) -> None:
        assert self._ws is not None
        async with self._send_lock:
            await self._ws.send(text)

    async def run(self) -> CallLog:
        """Replay the call to its end and return what happened."""
        try:
            # No compression and no pings: Twilio uses neither, and the server should see what Twilio sends.
            self._ws = await connect(self._url, compression=None, ping_interval=None, open_timeout=10, max_size=2**20)
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as error:
            self.log.ended_by = EndedBy.ERROR
            self.log.detail = f"cannot connect to {self._url}: {error}"
            self._progress(f"[{self._call.name}] {self.log.detail}")
            return self.log
        ws = self._ws
        self.log.started_at = datetime.now(UTC).isoformat(timespec="seconds")
        try:
            await ws.send(self._twilio.connected())
            await ws.send(self._twilio.start())
        except ConnectionClosed as error:
            self.log.ended_by = EndedBy.ERROR
            self.log.detail = f"the server closed the socket before the stream started ({error})"
            return self.log
        self._t0 = time.perf_counter()
        receiver = asyncio.create_task(self._receive(ws), name=f"replay-receive-{self._call.name}")
        clock = asyncio.create_task(self._run_clock(), name=f"replay-clock-{self._call.name}")
        try:
            hang_up = await self._run_script()
            await self._finish(clock, hang_up)
        finally:
            self._ticking = False
            await _cancel(clock)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(receiver), CLOSE_TIMEOUT_S)
            await _cancel(receiver)
            await ws.close()
        self._summarise()
        return self.log

    async def _finish(self, clock: asyncio.Task[None], hang_up: bool) -> None:
        if not hang_up:
            # A caller stays on the line a moment after the last words; a server that hands the call over after its
            # last reply closes the stream itself in that time, and the report should say so.
            await self._wait_until(self._closed.is_set, END_GRACE_S)
        if self._closed.is_set():
            return
        # Twilio sends nothing after the stream ends: stop the clock first.
        self._ticking = False
        await _cancel(clock)
        assert self._ws is not None
        try:
            if hang_up:
                self.log.ended_by = EndedBy.HUNG_UP
                self._say("caller hangs up (socket closed without stop)")
                await self._ws.close()
            else:
                self.log.ended_by = EndedBy.STOP_SENT
                self._say("script done: stop sent")
                await self._send(self._twilio.stop())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closed.wait(), CLOSE_TIMEOUT_S)
        except ConnectionClosed:
            pass

    # --- the three tasks ----------------------------------------------------------------------------------------

    async def _run_clock(self) -> None:
        """Every 20 ms, drift-corrected: play 20 ms of agent audio, then send 20 ms of caller audio."""
        try:
            while self._ticking and not self._closed.is_set():
                delay = self._t0 + self._tick * _FRAME_S - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                await self._on_tick()
                self._tick += 1
        except ConnectionClosed:
            pass  # the receiver records how and why

    async def _on_tick(self) -> None:
        now_s = self._now_s()
        position_ms = self._tick * FRAME_MS
        played = self._playback.tick()
        self.log.agent_track += played.frame or _SILENCE_FRAME
        for name in played.marks:
            await self._send(self._twilio.mark(name))
            self.log.marks_echoed += 1

        while self._keys:
            turn = self._keys.popleft()
            self._caller_onset(turn, now_s)
            turn.start_ms = turn.end_ms = turn.voiced_start_ms = turn.voiced_end_ms = position_ms
            turn.last_sent_s = now_s
            await self._send(self._twilio.dtmf(turn.turn.spec.dtmf))

        frame, voiced, turn = self._frames.popleft() if self._frames else (_SILENCE_FRAME, False, None)
        if turn is not None:
            if turn.start_ms is None:
                turn.start_ms = position_ms
            turn.end_ms = position_ms + FRAME_MS
            if voiced:
                if turn.voiced_start_ms is None:
                    turn.voiced_start_ms = position_ms
                    self._caller_onset(turn, now_s)
                turn.voiced_end_ms = position_ms + FRAME_MS
                turn.last_sent_s = now_s
        await self._send(self._twilio.media(frame, position_ms))
        self.log.caller_track += frame

    def _caller_onset(self, turn: TurnLog, now_s: float) -> None:
        """The caller starts speaking (or presses a key): over buffered agent audio, that is a barge-in."""
        turn.first_sent_s = now_s
        if self._playback.buffered_frames:
            turn.barge_in_buffered_ms = self._playback.buffered_frames * FRAME_MS
            self._barge_in = turn

    async def _receive(self, ws: ClientConnection) -> None:
        try:
            async for message in ws:
                await self._on_message(message)
        except ConnectionClosed:
            pass
        finally:
            received = ws.protocol.close_rcvd
            self.log.close_code = received.code if received is not None else None
            if self.log.ended_by is None:
                # Neither `stop` nor a hang-up from our side: the server ended the stream (or the line broke).
                if received is None:
                    self.log.ended_by = EndedBy.ERROR
                    self.log.detail = "the connection broke without a close frame"
                    self._say("connection lost")
                else:
                    self.log.ended_by = EndedBy.SERVER_CLOSED
                    self._say(f"server closed the stream (code {received.code})")
            self._closed.set()

    async def _on_message(self, message: str | bytes) -> None:
        now_s = self._now_s()
        try:
            event = check_server_message(message, self._twilio.stream_sid)
        except ServerProtocolError as violation:
            self.log.violations += 1
            if len(self.log.violation_examples) < MAX_VIOLATION_EXAMPLES:
                self.log.violation_examples.append(f"{now_s * 1000:.0f} ms: {violation}")
            self._say(f"PROTOCOL VIOLATION: {violation}")
            return
        match event:
            case AgentMedia(frame=frame):
                self._playback.add_media(frame)
                self.log.agent_media_s.append(now_s)
                self.log.frames_received += 1
            case AgentMark(name=name):
                self._playback.add_mark(name)
            case AgentClear():
                self.log.clears_ms.append(now_s * 1000)
                if self._barge_in is not None and self._barge_in.first_sent_s is not None:
                    self._barge_in.barge_in_clear_ms = (now_s - self._barge_in.first_sent_s) * 1000
                    self._barge_in = None
                for name in self._playback.clear():
                    await self._send(self._twilio.mark(name))
                    self.log.marks_echoed += 1

    async def _run_script(self) -> bool:
        """Play the turns in order. Returns True when the last turn hangs up."""
        if self._call.source.fixture.wait_for_greeting:
            note = await self._wait_for_reply(since_s=0.0, gap_ms=DEFAULT_GAP_MS)
            self._say(f"greeting played{f' ({note})' if note else ''}")
        for turn in self.log.turns:
            spec = turn.turn.spec
            if self._closed.is_set():
                turn.note = "not played: the stream had ended"
                continue
            if isinstance(spec, HangupTurn):
                turn.played = True
                return True
            turn.played = True
            if isinstance(spec, DtmfTurn):
                self._keys.append(turn)
            else:
                self._frames.extend(
                    zip(turn.turn.frames, turn.turn.voiced, [turn] * len(turn.turn.frames), strict=True)
                )
            await self._wait_until(lambda: not self._frames and not self._keys, timeout_s=None)
            if spec.wait == "reply" and not self._closed.is_set():
                # A pause answers nothing: wait only for the agent to be quiet. Otherwise wait for the answer to
                # start after the turn's last voiced frame (or its end, when nothing in it was voiced).
                since_s = None if isinstance(spec, PauseTurn) else (turn.last_sent_s or self._now_s())
                turn.note = await self._wait_for_reply(since_s, spec.gap_ms)
            self._say(self._turn_line(turn))
        return False

    # --- waiting --------------------------------------------------------------------------------------------------

    async def _wait_until(self, condition: Callable[[], bool], timeout_s: float | None) -> bool:
        """Poll `condition` until it holds (True), the stream ends or the timeout passes (False)."""
        deadline = None if timeout_s is None else time.perf_counter() + timeout_s
        while not condition():
            if self._closed.is_set() or (deadline is not None and time.perf_counter() >= deadline):
                return False
            await asyncio.sleep(_POLL_S)
        return True

    async def _wait_for_reply(self, since_s: float | None, gap_ms: int) -> str | None:
        """Wait until the agent's answer has started (after `since_s`), been played in full and `gap_ms` passed.

        Returns:
            None, or a note when no answer came within `REPLY_TIMEOUT_S`.
        """
        media = self.log.agent_media_s
        if since_s is not None:
            started = await self._wait_until(lambda: bool(media) and media[-1] > since_s, REPLY_TIMEOUT_S)
            if not started and not self._closed.is_set():
                return f"no agent audio within {REPLY_TIMEOUT_S:.0f} s"
        # An answer may come as several sentences: it is over when playback has stayed idle (every frame played,
        # every mark echoed) for the whole gap.
        quiet_since: float | None = None
        while not self._closed.is_set():
            now = time.perf_counter()
            if not self._playback.idle:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = now
            elif now - quiet_since >= gap_ms / 1000:
                return None
            await asyncio.sleep(_POLL_S)
        return None

    # --- results ----------------------------------------------------------------------------------------------

    def _turn_line(self, turn: TurnLog) -> str:
        line = f"turn {turn.turn.index} {turn.turn.describe()}"
        if turn.barge_in_buffered_ms is not None:
            line += f"; barged in over {turn.barge_in_buffered_ms} ms of agent audio"
            line += f", clear after {_ms_text(turn.barge_in_clear_ms)}"
        reply_ms = self._latency_ms(turn)
        if reply_ms is not None:
            line += f"; agent answered after {reply_ms:.0f} ms"
        if turn.note:
            line += f"; {turn.note}"
        return line

    def _latency_ms(self, turn: TurnLog) -> float | None:
        """First agent frame received after the turn's last voiced frame, before the next turn's first one."""
        if turn.last_sent_s is None or isinstance(turn.turn.spec, PauseTurn | HangupTurn):
            return None
        later = [other.first_sent_s for other in self.log.turns if other.turn.index > turn.turn.index]
        bound = next((value for value in later if value is not None), math.inf)
        media = self.log.agent_media_s
        position = bisect.bisect_right(media, turn.last_sent_s)
        if position < len(media) and media[position] < bound:
            return (media[position] - turn.last_sent_s) * 1000
        return None

    def _summarise(self) -> None:
        log = self.log
        log.duration_ms = len(log.caller_track) // FRAME_BYTES * FRAME_MS
        log.greeting_first_audio_ms = log.agent_media_s[0] * 1000 if log.agent_media_s else None
        log.frames_played = self._playback.frames_played
        log.frames_cleared = self._playback.frames_cleared
        for turn in log.turns:
            turn.response_latency_ms = self._latency_ms(turn)


async def _cancel(task: asyncio.Task[Any]) -> None:
    if not task.done():
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _ms_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


# --- the server -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerView:
    """What the server recorded about one call (in-process replays only)."""

    records: tuple[TurnRecord, ...]
    """Every exchange of the call, greeting first."""
    outcome: Decision | None
    """The decision that ended the automated part (transfer or goodbye), if any."""
    protocol_errors: int
    """Malformed messages the server received from the replay (should be 0: the replay speaks as Twilio does)."""
    failure: str | None
    """Why the pipeline gave up, if it did."""


class InProcessServer:
    """The voice-agent app, served by uvicorn on 127.0.0.1 (a free port) in a background thread.

    A thread, not a task on the replay's loop: the server's work must not delay the replay's 20 ms clock, which
    would then measure its own lateness. Configured from the environment, as `voice-agent serve` is.
    """

    def __init__(self, language: str = "en", services: VoiceServices | None = None) -> None:
        """Read the configuration; nothing is loaded or served until `start`.

        Args:
            language: the fixtures' language, which the server must speak.
            services: models already loaded in this process to share (tests do); default: load them in `start`.

        Raises:
            telephony.settings.SettingsError: naming the variable at fault.
        """
        from telephony.settings import load_settings

        self.settings = load_settings(language=language)
        self.services = services
        self._owns_services = services is None
        self.app: FastAPI | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def ws_url(self) -> str:
        """The media-stream URL."""
        return f"ws://127.0.0.1:{self.port}{MEDIA_PATH}"

    @property
    def http_base(self) -> str:
        """The HTTP base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Load the models (unless given), start serving and wait until ``/healthz`` says ready.

        Raises:
            voice.prompts.PromptError, telephony.deployment.DeploymentError: naming the file and the entry at fault.
            voice.models.ModelNotFound: a model is missing (the message says what to install).
            ReplayError: the server did not start for another reason.
        """
        import warnings

        import uvicorn

        from telephony.app import create_app, load_voice_services
        from voice.prompts import load_catalogue

        catalogue = load_catalogue(self.settings.prompts_dir, self.settings.language)
        if self.services is None:
            # Loaded here rather than in the app's lifespan, so that a missing model is raised to the caller with
            # its message instead of being logged by uvicorn in the server's thread.
            self.services = load_voice_services(self.settings, catalogue)
        self.app = create_app(self.settings, services=self.services)
        with warnings.catch_warnings():
            # The same WebSocket implementation as `voice-agent serve`, which uvicorn and websockets announce as
            # deprecated on import. Imported once here, so that the notices do not land among the progress lines.
            warnings.filterwarnings("ignore", message="The `websockets` implementation is deprecated")
            warnings.filterwarnings("ignore", message="websockets.legacy is deprecated")
            import uvicorn.protocols.websockets.websockets_impl

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", ws="websockets-sansio", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="replay-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ReplayError("the in-process server did not start; see the log above")
            time.sleep(0.05)
        response = httpx.get(f"{self.http_base}/healthz", timeout=5)
        if response.status_code != 200:
            self.stop()
            raise ReplayError(f"the in-process server is not ready: /healthz answered {response.status_code}")

    def stop(self) -> None:
        """Stop serving, and shut the model workers down if `start` loaded them."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
        if self._owns_services and self.services is not None:
            self.services.workers.shutdown()
            self.services = None

    def __enter__(self) -> InProcessServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def view(self, call_sid: str) -> ServerView | None:
        """What the server recorded about a call, once it has finished it (None for an unknown call).

        The registry lives on the server's thread; reading a few attributes from here is safe (the GIL keeps each
        read whole), and nothing is written.
        """
        from telephony.calls import CallState

        if self.app is None:
            raise ReplayError("the in-process server has not been started")
        registry = self.app.state.voice.registry
        info = registry.get(call_sid)
        deadline = time.monotonic() + CLOSE_TIMEOUT_S
        while info is not None and info.state is not CallState.FINISHED and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if info is None:
            return None
        return ServerView(
            records=tuple(info.records),
            outcome=info.outcome,
            protocol_errors=info.protocol_errors,
            failure=info.failure,
        )


def http_base_of(ws_url: str) -> str:
    """The HTTP base URL of the server behind a media-stream URL: ``ws://h:p/twilio/media`` -> ``http://h:p``.

    Raises:
        ValueError: not a ws:// or wss:// URL with a host.
    """
    parts = urlsplit(ws_url)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise ValueError(f"expected a ws:// or wss:// URL such as ws://127.0.0.1:8080{MEDIA_PATH}, got {ws_url!r}")
    return ("https" if parts.scheme == "wss" else "http") + "://" + parts.netloc


async def fetch_after_stream(
    http_base: str, twilio: TwilioSide, auth_token: str | None = None, public_url: str | None = None
) -> dict[str, Any]:
    """Ask ``POST /twilio/after-stream`` what Twilio would do next with the call, as Twilio asks it.

    Args:
        http_base: the server's HTTP base URL.
        twilio: the call's SIDs.
        auth_token: when the server checks webhook signatures, the Twilio auth token to sign with.
        public_url: the server's configured public URL, which is what a signature covers.

    Returns:
        ``{"status", "twiml", "verb"}``; verb is the first TwiML verb (Dial, Hangup, Enqueue) or None.
    """
    form = {"CallSid": twilio.call_sid, "AccountSid": twilio.account_sid, "CallStatus": "in-progress"}
    headers = {}
    if auth_token:
        from twilio.request_validator import RequestValidator

        signed_url = (public_url or http_base).rstrip("/") + AFTER_STREAM_PATH
        headers["X-Twilio-Signature"] = RequestValidator(auth_token).compute_signature(signed_url, form)
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(http_base + AFTER_STREAM_PATH, data=form, headers=headers)
    except httpx.HTTPError as error:
        return {"status": None, "twiml": None, "verb": None, "error": str(error)}
    return {"status": response.status_code, "twiml": response.text, "verb": _first_verb(response.text)}


def _first_verb(twiml: str) -> str | None:
    import xml.etree.ElementTree as ElementTree

    try:
        root = ElementTree.fromstring(twiml)
    except ElementTree.ParseError:
        return None
    first = next(iter(root), None)
    return first.tag if first is not None else None


# --- linking the server's records to the caller's turns -------------------------------------------------------------


def _decision_json(decision: Decision) -> dict[str, Any]:
    return {
        "intent": decision.intent,
        "confidence": decision.confidence,
        "action": decision.action.value,
        "reply": decision.reply,
        "rule": decision.rule,
        "department": decision.department,
        "transfer_reason": decision.transfer_reason,
        "reasons": list(decision.reasons),
    }


def _exchange_json(record: TurnRecord) -> dict[str, Any]:
    caller = record.caller
    heard: dict[str, Any] | None = None
    if isinstance(caller, Transcript):
        heard = {
            "text": caller.text,
            "confidence": caller.confidence,
            "start_ms": caller.start_ms,
            "end_ms": caller.end_ms,
        }
    elif isinstance(caller, Dtmf):
        heard = {"dtmf": caller.digit}
    return {
        "caller": heard,
        "decision": _decision_json(record.decision),
        "processing_ms": record.processing_ms,
        "heard_in_full": record.heard,
        "interrupted": record.interrupted,
    }


# A transcript may start a little before the frame we call voiced (the VAD's 32 ms windows, soxr's delay).
_TRANSCRIPT_SLACK_MS = 100


def link_records(
    turns: Sequence[TurnLog], records: Sequence[TurnRecord]
) -> tuple[TurnRecord | None, dict[int, list[TurnRecord]], list[TurnRecord]]:
    """Match the server's exchanges to the caller turns they answer.

    A transcript belongs to the last turn that had started where the transcript starts (server stream time equals
    our frame count); a key press to the next dtmf turn with that key. The greeting is the first record with no
    caller input.

    Returns:
        (greeting record or None, records per turn index, records that match no turn, such as a failure transfer).
    """
    greeting = None
    per_turn: dict[int, list[TurnRecord]] = {turn.turn.index: [] for turn in turns}
    others: list[TurnRecord] = []
    used_keys: set[int] = set()
    for position, record in enumerate(records):
        caller = record.caller
        if caller is None:
            if position == 0 and record.decision.rule == "greeting":
                greeting = record
            else:
                others.append(record)
            continue
        match: TurnLog | None = None
        if isinstance(caller, Dtmf):
            match = next(
                (
                    turn
                    for turn in turns
                    if isinstance(turn.turn.spec, DtmfTurn)
                    and turn.turn.spec.dtmf == caller.digit
                    and turn.turn.index not in used_keys
                    and turn.played
                ),
                None,
            )
            if match is not None:
                used_keys.add(match.turn.index)
        elif isinstance(caller, Transcript):
            started = [
                turn
                for turn in turns
                if turn.start_ms is not None
                and not isinstance(turn.turn.spec, DtmfTurn)
                and turn.start_ms <= caller.start_ms + _TRANSCRIPT_SLACK_MS
            ]
            match = started[-1] if started else None
        if match is None:
            others.append(record)
        else:
            per_turn[match.turn.index].append(record)
    return greeting, per_turn, others


# --- the report -----------------------------------------------------------------------------------------------------

SERVER_DATA_MISSING = (
    "transcripts and decisions are not available when replaying against --server: they come with the call API "
    "(GET /api/calls/{call_sid}), which does not exist yet"
)


@dataclass(frozen=True, slots=True)
class CallReport:
    """One replayed call, as written to the report folder."""

    name: str
    ok: bool
    """Completed without protocol violations (either way)."""
    data: dict[str, Any]
    """The JSON written to `json_path`."""
    json_path: Path
    wav_path: Path


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """Every call of one replay run."""

    calls: tuple[CallReport, ...]
    report_dir: Path
    summary_path: Path

    @property
    def exit_code(self) -> int:
        """0 when every call completed without protocol violations, else 1."""
        return 0 if all(call.ok for call in self.calls) else 1


def _call_json(log: CallLog, server: str, view: ServerView | None, after_stream: dict[str, Any]) -> dict[str, Any]:
    fixture = log.call.source.fixture
    greeting = None
    per_turn: dict[int, list[TurnRecord]] = {}
    others: list[TurnRecord] = []
    if view is not None:
        greeting, per_turn, others = link_records(log.turns, view.records)
    outcome = None
    if view is not None and view.outcome is not None:
        outcome = {"action": view.outcome.action.value, "department": view.outcome.department}
    turns = []
    for turn in log.turns:
        exchanges = None if view is None else [_exchange_json(record) for record in per_turn[turn.turn.index]]
        texts = [item["caller"]["text"] for item in exchanges or () if item["caller"] and "text" in item["caller"]]
        turns.append(
            {
                "index": turn.turn.index,
                "kind": turn.turn.kind,
                "input": turn.turn.spec.model_dump(),
                "played": turn.played,
                "start_ms": turn.start_ms,
                "end_ms": turn.end_ms,
                "voiced_start_ms": turn.voiced_start_ms,
                "voiced_end_ms": turn.voiced_end_ms,
                "transcript": " ".join(texts) if view is not None and texts else None,
                "exchanges": exchanges,
                "response_latency_ms": _round(turn.response_latency_ms),
                "barge_in": None
                if turn.barge_in_buffered_ms is None
                else {
                    "agent_audio_buffered_ms": turn.barge_in_buffered_ms,
                    "clear_after_ms": _round(turn.barge_in_clear_ms),
                },
                "note": turn.note,
            }
        )
    server_violations = view.protocol_errors if view is not None else None
    return {
        "name": fixture.name,
        "description": fixture.description,
        "fixture": str(log.call.source.path),
        "server": server,
        "server_data": "in-process app" if view is not None else SERVER_DATA_MISSING,
        "call_sid": log.twilio.call_sid,
        "stream_sid": log.twilio.stream_sid,
        "started_at": log.started_at,
        "duration_ms": log.duration_ms,
        "completed": log.completed,
        "ok": log.completed and log.violations == 0 and not server_violations,
        "ended": {
            "by": log.ended_by.value if log.ended_by else None,
            "close_code": log.close_code,
            "detail": log.detail,
            "outcome": outcome,
            "pipeline_failure": view.failure if view is not None else None,
        },
        "greeting": {
            "first_audio_ms": _round(log.greeting_first_audio_ms),
            "exchange": _exchange_json(greeting) if greeting is not None else None,
        },
        "turns": turns,
        "other_exchanges": [_exchange_json(record) for record in others] if view is not None else None,
        "agent_audio": {
            "frames_received": log.frames_received,
            "frames_played": log.frames_played,
            "frames_cleared": log.frames_cleared,
            "marks_echoed": log.marks_echoed,
            "clears_at_ms": [_round(value) for value in log.clears_ms],
        },
        "protocol": {
            "violations": log.violations,
            "examples": log.violation_examples,
            "server_reported_errors": server_violations,
        },
        "after_stream": after_stream,
        "audio": f"{fixture.name}.wav",
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def write_timeline_wav(path: Path, caller_mulaw: bytes, agent_mulaw: bytes) -> None:
    """Write both directions of a call as one stereo WAV: left the caller, right the agent, 8 kHz 16-bit.

    Args:
        path: the file to write.
        caller_mulaw: the caller's track, 8 kHz mu-law.
        agent_mulaw: the agent's track as played, 8 kHz mu-law, on the same timeline.
    """
    length = max(len(caller_mulaw), len(agent_mulaw))
    silence = bytes([MULAW_SILENCE])
    left = mulaw_to_pcm16(bytes(caller_mulaw) + silence * (length - len(caller_mulaw)))
    right = mulaw_to_pcm16(bytes(agent_mulaw) + silence * (length - len(agent_mulaw)))
    stereo = np.column_stack([left, right]).astype("<i2")
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(2)
        writer.setsampwidth(2)
        writer.setframerate(TWILIO_SAMPLE_RATE_HZ)
        writer.writeframes(stereo.tobytes())


def _outcome_text(data: dict[str, Any]) -> str:
    outcome = data["ended"]["outcome"]
    if outcome is not None:
        action = outcome["action"]
        return f"{action} to {outcome['department']}" if outcome["department"] else action
    verb = data["after_stream"].get("verb")
    return f"after-stream: {verb}" if verb else "-"


def _ended_text(data: dict[str, Any]) -> str:
    ended = data["ended"]
    text = ended["by"].replace("_", " ")
    if ended["close_code"] is not None and ended["by"] in ("server_closed", "error"):
        text += f" ({ended['close_code']})"
    return text


def _summary_markdown(reports: Sequence[CallReport], server: str) -> str:
    lines = [
        "# Replay report",
        "",
        f"{len(reports)} calls against {server}, {datetime.now(UTC).isoformat(timespec='seconds')}. "
        "Latencies in ms: response = the caller's last voiced frame sent -> the first agent frame received; "
        "barge-in = the first voiced caller frame over buffered agent audio -> `clear` received.",
        "",
    ]
    if any(report.data["server_data"] == SERVER_DATA_MISSING for report in reports):
        lines += [f"Note: {SERVER_DATA_MISSING}.", ""]
    lines += [
        "| call | result | ended | outcome | turns | greeting first audio | response latency per turn "
        "| barge-in -> clear | violations |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for report in reports:
        data = report.data
        played = sum(1 for turn in data["turns"] if turn["played"])
        latencies = [
            _ms_text(turn["response_latency_ms"]).removesuffix(" ms")
            for turn in data["turns"]
            if turn["kind"] in ("say", "audio", "dtmf") and turn["played"]
        ]
        barge_ins = [
            _ms_text(turn["barge_in"]["clear_after_ms"]).removesuffix(" ms")
            for turn in data["turns"]
            if turn["barge_in"]
        ]
        violations = data["protocol"]["violations"]
        if data["protocol"]["server_reported_errors"]:
            violations = f"{violations} (+{data['protocol']['server_reported_errors']} reported by the server)"
        result = "ok" if report.ok else ("violations" if data["completed"] else "incomplete")
        lines.append(
            f"| {report.name} | {result} | {_ended_text(data)} | {_outcome_text(data)} | {played}/{len(data['turns'])} "
            f"| {_ms_text(data['greeting']['first_audio_ms'])} | {', '.join(latencies) or '-'} "
            f"| {', '.join(barge_ins) or '-'} | {violations} |"
        )
    for report in reports:
        data = report.data
        lines += ["", f"## {report.name}", ""]
        if data["description"]:
            lines += [data["description"], ""]
        lines += [f"Files: `{report.json_path.name}`, `{report.wav_path.name}` (left caller, right agent).", ""]
        lines += [
            "| turn | caller | heard as | decision | response | barge-in -> clear | note |",
            "|---|---|---|---|---|---|---|",
        ]
        greeting = data["greeting"]["exchange"]
        if greeting is not None:
            lines.append(
                f"| greeting | - | - | {_decision_text(greeting['decision'])} "
                f"| first audio {_ms_text(data['greeting']['first_audio_ms'])} | - | - |"
            )
        for turn in data["turns"]:
            decisions = "; ".join(_decision_text(item["decision"]) for item in turn["exchanges"] or ()) or "-"
            barge_in = _ms_text(turn["barge_in"]["clear_after_ms"]) if turn["barge_in"] else "-"
            lines.append(
                f"| {turn['index']} | {_input_text(turn['input'])} | {_cell(turn['transcript'])} | {decisions} "
                f"| {_ms_text(turn['response_latency_ms'])} | {barge_in} | {_cell(turn['note'])} |"
            )
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    return "-" if value in (None, "") else str(value).replace("|", "\\|")


def _input_text(spec: dict[str, Any]) -> str:
    for key in _TURN_KEYS:
        if key in spec:
            if key == "hangup":
                return "hang up"
            if key == "pause_ms":
                return f"pause {spec[key]} ms"
            return _cell(f"{key}: {spec[key]}")
    return "-"


def _decision_text(decision: dict[str, Any]) -> str:
    text = f"{decision['action']} ({decision['rule']}"
    if decision["intent"]:
        text += f", {decision['intent']} {decision['confidence']:.2f}"
    if decision["department"]:
        text += f", to {decision['department']}"
    return text + ")"


# --- running --------------------------------------------------------------------------------------------------------


async def replay_calls(
    calls: Sequence[PreparedCall],
    report_dir: Path,
    *,
    server_url: str | None = None,
    in_process: InProcessServer | None = None,
    parallel: bool = False,
    progress: Progress = progress_to_stderr,
) -> ReplayResult:
    """Replay prepared calls against a server and write the report.

    Args:
        calls: the calls, with their caller audio made.
        report_dir: the folder for the report (created if needed).
        server_url: the media-stream URL of a running server; or None with `in_process`.
        in_process: a started `InProcessServer`, whose app also tells the transcripts and decisions.
        parallel: replay all calls at once (faster; the latencies then include the calls' competition for the CPU).
        progress: gets one line per event.

    Returns:
        The reports of the calls, in the order given.
    """
    if in_process is not None:
        ws_url, http_base, server_name = in_process.ws_url, in_process.http_base, "in-process server"
        token = in_process.settings.twilio_auth_token
        auth_token = token.get_secret_value() if token else None
        public_url = in_process.settings.public_url
    elif server_url is not None:
        import os

        ws_url, http_base, server_name = server_url, http_base_of(server_url), server_url
        auth_token = os.environ.get("TWILIO_AUTH_TOKEN") or None
        public_url = os.environ.get("VOICE_AGENT_PUBLIC_URL") or None
    else:
        raise ValueError("give server_url or in_process")
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)

    async def one(call: PreparedCall) -> CallReport:
        log = await _CallRunner(call, ws_url, progress).run()
        view = await in_process.view(log.twilio.call_sid) if in_process is not None else None
        after_stream = await fetch_after_stream(http_base, log.twilio, auth_token, public_url)
        data = _call_json(log, server_name, view, after_stream)
        json_path = report_dir / f"{call.name}.json"
        wav_path = report_dir / f"{call.name}.wav"
        json_path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        write_timeline_wav(wav_path, log.caller_track, log.agent_track)
        return CallReport(name=call.name, ok=data["ok"], data=data, json_path=json_path, wav_path=wav_path)

    if parallel:
        reports = list(await asyncio.gather(*(one(call) for call in calls)))
    else:
        reports = [await one(call) for call in calls]
    summary_path = report_dir / "summary.md"
    summary_path.write_text(_summary_markdown(reports, server_name), encoding="utf-8")
    return ReplayResult(calls=tuple(reports), report_dir=report_dir, summary_path=summary_path)


def run_replay(
    paths: Sequence[Path],
    report_dir: Path = Path("replay-report"),
    *,
    server_url: str | None = None,
    parallel: bool = False,
    services: VoiceServices | None = None,
    progress: Progress = progress_to_stderr,
) -> ReplayResult:
    """Load, prepare and replay fixture calls, in-process unless `server_url` is given; write the report.

    Args:
        paths: fixture call files.
        report_dir: the folder for the report.
        server_url: ``ws://host:port/twilio/media`` of a running server, or None to run the app in this process.
        parallel: replay all calls at once.
        services: for the in-process server, models already loaded in this process; default: load them.
        progress: gets one line per event.

    Returns:
        The reports; `ReplayResult.exit_code` is the command's exit code.

    Raises:
        FixtureError: a fixture is invalid (raised before anything is played).
        ValueError: `server_url` is not a ws:// or wss:// URL.
        voice.models.ModelNotFound, ReplayError: the in-process server cannot start.
    """
    loaded = load_fixtures(paths)
    if server_url is not None:
        http_base_of(server_url)
    voice = CallerVoice()
    calls = [prepare_call(item, voice) for item in loaded]
    progress(f"{len(calls)} calls prepared; replaying against {server_url or 'an in-process server'}")
    if server_url is not None:
        return asyncio.run(replay_calls(calls, report_dir, server_url=server_url, parallel=parallel, progress=progress))
    with InProcessServer(language=loaded[0].fixture.language, services=services) as server:
        return asyncio.run(replay_calls(calls, report_dir, in_process=server, parallel=parallel, progress=progress))


def iter_summary(result: ReplayResult) -> Iterator[str]:
    """One line per call, for the end of the command's output."""
    for call in result.calls:
        data = call.data
        latencies = [turn["response_latency_ms"] for turn in data["turns"] if turn["response_latency_ms"] is not None]
        figures = ", ".join(f"{value:.0f}" for value in latencies) or "-"
        state = "ok" if call.ok else "FAILED"
        yield (
            f"{call.name}: {state}; {_ended_text(data)}; {_outcome_text(data)}; response latency ms: {figures}; "
            f"violations: {data['protocol']['violations']}"
        )
