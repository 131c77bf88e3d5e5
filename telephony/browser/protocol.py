"""The browser call's wire protocol: one WebSocket, JSON text messages for control and binary messages for audio.

The call page (``GET /desk/call``) opens ``WS /browser/call`` with the desk's session cookie. Nothing of Twilio's is
imitated: audio is plain little-endian PCM, and the server names the call (``BR`` and 32 hex digits).

Browser to server:

``{"type": "start", "sample_rate": 16000, "encoding": "pcm_s16le"}``
    First, and once: the format of the microphone audio that follows. ``sample_rate`` is 8000 to 48000 Hz,
    ``encoding`` is ``pcm_s16le`` (int16) or ``pcm_f32le`` (float32); both are optional (16000, ``pcm_s16le``).
binary
    Caller audio, mono, in the declared format: whole samples, at most `MAX_AUDIO_BYTES` a message (the page sends
    20 ms from its AudioWorklet). Audio that runs more than `AUDIO_SLACK_S` ahead of real time is dropped.
``{"type": "mark", "name": "..."}``
    Playback reached this mark, or a ``clear`` dropped the audio before it.
``{"type": "dtmf", "digit": "0"}``
    A key of the page's keypad: 0-9, ``*`` or ``#``.
``{"type": "hangup"}``
    The caller hangs up. A socket that closes without it, before a handover, is a call cut short (its failure).

Server to browser:

``{"type": "ready", "call_id": "BR...", "sample_rate": 16000, "encoding": "pcm_s16le"}``
    The call is live (admitted, and on the desk); the agent's audio comes in this format.
binary
    Agent audio, mono int16 little-endian at the ``ready`` rate, in chunks of at most `CHUNK_MS`; play them in order.
``{"type": "mark", "name": "..."}``
    Follows each sentence's audio: send it back when playback reaches this point.
``{"type": "clear"}``
    The caller spoke over the agent: stop playback, drop the queued audio, and send back every pending mark.
``{"type": "decision", "index": 2, "caller": {...} | null, "decision": {...}}``
    A decision, sent before its reply plays: what the caller said (redacted and masked, as the desk shows it; null
    for the greeting) and the engine's decision (reply, rule, intent, confidence, action, department, reasons), in
    the shapes of the call API's turns (`telephony.call_record.CallerTurn`, `telephony.call_record.DecisionView`).
``{"type": "handover", "action": "transfer" | "end", "department": "billing" | null, "rule": "...", "reason": ...}``
    The automated part of the call is over, once its last reply has played: a phone call would now be transferred
    to ``department`` (``reason`` says why) or hung up. The server then closes the socket (1000).
``{"type": "error", "detail": "..."}``
    Sent before the server closes for a protocol violation (1008) or because its models are still loading (1013).

Malformed messages (not JSON, an unknown type, a bad field, too large, audio that is not whole samples) are counted,
logged and ignored. Audio, marks or keys before ``start``, a second ``start``, or no ``start`` within
`START_TIMEOUT_S`, close the socket (1008).
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from telephony.call_record import turn_view
from voice.events import Decision
from voice.pcm import float32_to_pcm16, pcm16_to_float32
from voice.pipeline import TurnRecord

BROWSER_CALL_PATH = "/browser/call"
OUTPUT_SAMPLE_RATE_HZ = 16_000
"""The rate of the agent's audio: the wideband rate of the recogniser, ample for the voice."""
PCM_S16LE = "pcm_s16le"
PCM_F32LE = "pcm_f32le"
_SAMPLE_TYPES = {PCM_S16LE: np.dtype("<i2"), PCM_F32LE: np.dtype("<f4")}
MIN_SAMPLE_RATE_HZ = 8_000
MAX_SAMPLE_RATE_HZ = 48_000
CHUNK_MS = 100
"""The longest piece of agent audio in one binary message."""
MAX_AUDIO_BYTES = 32 * 1024
"""The largest caller audio message: 1 s of int16 at 16 kHz, 170 ms of float32 at 48 kHz."""
MAX_TEXT_CHARS = 1024
"""The largest control message (every one the page sends is under 100 characters)."""
AUDIO_SLACK_S = 2.0
"""How far caller audio may run ahead of real time (network bunching) before the excess is dropped."""
START_TIMEOUT_S = 10.0
"""How long the server waits for ``start`` after accepting the socket."""


class ProtocolError(ValueError):
    """A message from the browser that is not valid in this protocol."""


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Start(_Message):
    type: Literal["start"]
    sample_rate: int = Field(default=OUTPUT_SAMPLE_RATE_HZ, ge=MIN_SAMPLE_RATE_HZ, le=MAX_SAMPLE_RATE_HZ, strict=True)
    encoding: Literal["pcm_s16le", "pcm_f32le"] = PCM_S16LE


class Marked(_Message):
    type: Literal["mark"]
    name: str = Field(min_length=1, max_length=64)


class Key(_Message):
    type: Literal["dtmf"]
    digit: str = Field(pattern=r"^[0-9*#]$")


class Hangup(_Message):
    type: Literal["hangup"]


ClientMessage = Annotated[Start | Marked | Key | Hangup, Field(discriminator="type")]
_CLIENT = TypeAdapter(ClientMessage)


def parse_text(text: str) -> Start | Marked | Key | Hangup:
    """Validate one text message from the browser.

    Raises:
        ProtocolError: too large, not JSON, not an object with a known ``type``, or a bad field (named).
    """
    if len(text) > MAX_TEXT_CHARS:
        raise ProtocolError(f"text message of {len(text)} characters (at most {MAX_TEXT_CHARS})")
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        raise ProtocolError(f"not JSON: {error}") from error
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError("expected a JSON object with a string 'type'")
    try:
        return _CLIENT.validate_python(data)
    except ValidationError as error:
        first = error.errors()[0]
        location = ".".join(str(part) for part in first["loc"][1:]) or "(message)"
        raise ProtocolError(f"bad {data['type'][:32]!r} message: {location}: {first['msg']}") from error


def decode_audio(data: bytes, encoding: str) -> np.ndarray:
    """Caller audio from one binary message, as float32 in [-1.0, 1.0].

    Args:
        data: the message.
        encoding: the encoding the ``start`` declared.

    Raises:
        ProtocolError: too large, or not a whole number of samples.
    """
    if len(data) > MAX_AUDIO_BYTES:
        raise ProtocolError(f"audio message of {len(data)} bytes (at most {MAX_AUDIO_BYTES})")
    sample_type = _SAMPLE_TYPES[encoding]
    if len(data) % sample_type.itemsize:
        raise ProtocolError(f"audio message of {len(data)} bytes is not whole {encoding} samples")
    samples = np.frombuffer(data, dtype=sample_type)
    if encoding == PCM_S16LE:
        return pcm16_to_float32(samples.astype(np.int16))
    # Float from the wire may hold anything: NaN and infinities become silence, the rest is clipped to full scale.
    floats = np.nan_to_num(samples.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(floats, -1.0, 1.0)


def encode_audio(audio: np.ndarray, sample_rate_hz: int = OUTPUT_SAMPLE_RATE_HZ) -> list[bytes]:
    """Agent audio (float PCM at `sample_rate_hz`) as int16 little-endian chunks of at most `CHUNK_MS`."""
    pcm = float32_to_pcm16(audio).astype("<i2").tobytes()
    step = sample_rate_hz * CHUNK_MS // 1000 * 2
    return [pcm[start : start + step] for start in range(0, len(pcm), step)]


def _json(message: dict[str, object]) -> str:
    return json.dumps(message, separators=(",", ":"))


def ready(call_id: str, sample_rate_hz: int = OUTPUT_SAMPLE_RATE_HZ) -> str:
    return _json({"type": "ready", "call_id": call_id, "sample_rate": sample_rate_hz, "encoding": PCM_S16LE})


def mark(name: str) -> str:
    return _json({"type": "mark", "name": name})


def clear() -> str:
    return _json({"type": "clear"})


def decision(index: int, record: TurnRecord) -> str:
    """A decision event: the turn as the call API shows it (masked), without what is known only later."""
    view = turn_view(record)
    caller = view.caller.model_dump(exclude_none=True) if view.caller is not None else None
    return _json({"type": "decision", "index": index, "caller": caller, "decision": view.decision.model_dump()})


def handover(outcome: Decision) -> str:
    return _json(
        {
            "type": "handover",
            "action": outcome.action.value,
            "department": outcome.department,
            "rule": outcome.rule,
            "reason": outcome.transfer_reason,
        }
    )


def error(detail: str) -> str:
    return _json({"type": "error", "detail": detail})
