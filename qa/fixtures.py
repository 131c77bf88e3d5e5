"""QA replay fixtures: the call-file format, its validation, and the caller audio each turn sends.

    fixture JSON -> `load_fixture` (pydantic, FixtureError naming the file and the field)
    -> `prepare_call`: "say" turns synthesised with the bundled Piper voice, "audio" turns read from a WAV and
       resampled, pauses as silence -> 20 ms mu-law frames, each flagged voiced or not by its energy

The format is described in audio_fixtures/README.md.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, model_validator

from qa.expect import CallExpect, TurnExpect, turn_field
from telephony.twilio.framing import FRAME_BYTES, FRAME_MS, pcm_to_twilio_frames
from telephony.twilio.mulaw import MULAW_SILENCE, mulaw_to_pcm16
from voice.wavfile import read_wav

if TYPE_CHECKING:
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

SILENCE_FRAME = bytes([MULAW_SILENCE]) * FRAME_BYTES
"""One 20 ms frame of mu-law silence: what the line carries while nobody speaks."""


class FixtureError(ValueError):
    """A fixture call file is missing, malformed or refers to audio that cannot be used; names the file and field."""


# --- fixture format -------------------------------------------------------------------------------------------------


class _TurnBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ClassVar[str]
    wait: Literal["reply", "none"] = "reply"
    """After this turn: "reply" waits until the agent's answer has been played in full (every mark echoed), plus
    `gap_ms`; "none" goes on with the next turn at once (to talk over the agent)."""
    gap_ms: int = Field(default=DEFAULT_GAP_MS, ge=0, le=10_000)
    """Silence after the agent's answer before the next turn, with `wait` "reply"."""


class _AnsweredTurn(_TurnBase):
    expect: TurnExpect | None = None
    """What the decision answering this turn should be (see `qa.expect`)."""


class SayTurn(_AnsweredTurn):
    """The caller says `say`, synthesised at replay time with the bundled Piper voice."""

    kind: ClassVar[str] = "say"
    say: str = Field(min_length=1, max_length=1000)
    """What the caller says."""
    length_scale: float | None = Field(default=None, ge=0.5, le=2.0)
    """Piper's pace for this turn (above 1 is slower); default `CALLER_LENGTH_SCALE`."""


class AudioTurn(_AnsweredTurn):
    """The caller plays a recording: a mono 16-bit PCM WAV at any rate, resampled to 8 kHz."""

    kind: ClassVar[str] = "audio"
    audio: str = Field(min_length=1)
    """Path of the WAV file, relative to the fixture file."""


class DtmfTurn(_AnsweredTurn):
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


TURN_KEYS = ("say", "audio", "dtmf", "pause_ms", "hangup")
"""The key that makes a JSON object a turn of each kind; exactly one must be present."""


def _turn_key(value: Any) -> str | None:
    if isinstance(value, dict):
        present = [key for key in TURN_KEYS if key in value]
        return present[0] if len(present) == 1 else None
    return next((key for key in TURN_KEYS if hasattr(value, key)), None)


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
    language: Literal["en", "nl"] = "en"
    """Language of the call, which the server answering it speaks. A Dutch call's turns are recordings ("audio"):
    the synthetic caller of "say" turns is the English Piper voice."""
    description: str = ""
    """What the call checks, for the people who read the report."""
    wait_for_greeting: bool = True
    """Listen to the whole greeting (plus the default gap) before the first turn; false starts the turns at once
    (a leading pause turn then places them inside the greeting)."""
    turns: tuple[Turn, ...] = Field(min_length=1)
    """The caller's turns, in order."""
    expect: CallExpect = CallExpect()
    """What should be true of the whole call; the AI disclosure and no-talking-over checks are on by default."""

    @model_validator(mode="after")
    def _say_turns_are_english(self) -> Self:
        if self.language != "en":
            for number, turn in enumerate(self.turns, start=1):
                if isinstance(turn, SayTurn):
                    raise ValueError(
                        f"turn {number}: a 'say' turn is spoken by the English Piper caller voice, so a "
                        f"{self.language!r} call cannot use one: record the turn as a WAV and use 'audio' "
                        "(audio_fixtures/make_dutch_calls.py makes the Dutch ones)"
                    )
        return self

    def turn_expects(self) -> tuple[TurnExpect | None, ...]:
        """Per turn, its expectations (None for turns without, and for pauses and hang-ups)."""
        return tuple(getattr(turn, "expect", None) for turn in self.turns)


def _location(loc: Sequence[int | str]) -> str:
    """Pydantic's error location for a message: ``("turns", 1, "say", "wait")`` -> ``turn 2 wait`` (turns counted
    from 1, as the report numbers them), ``("expect", "department")`` -> ``expect.department``."""
    parts = list(loc)
    # The discriminator adds the turn's kind to the path; the file has no such level.
    if len(parts) >= 3 and parts[0] == "turns" and isinstance(parts[1], int) and parts[2] in TURN_KEYS:
        del parts[2]
    if len(parts) >= 2 and parts[0] == "turns" and isinstance(parts[1], int):
        return turn_field(parts[1] + 1, _location(parts[2:]) if len(parts) > 2 else "")
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


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
        FixtureError: "<file>: <field>: <problem>", such as "calls/x.json: turn 3 wait: Input should be 'reply'
            or 'none'" (turns counted from 1).
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
    for number, turn in enumerate(fixture.turns, start=1):
        if isinstance(turn, HangupTurn) and number != len(fixture.turns):
            raise FixtureError(f"{path}: {turn_field(number, 'hangup')}: a hang-up must be the last turn")
        if isinstance(turn, AudioTurn):
            audio = loaded.audio_path(turn)
            where = turn_field(number, "audio")
            if not audio.is_file():
                raise FixtureError(f"{path}: {where}: {audio}: file not found")
            try:
                read_wav(audio)
            except ValueError as error:  # names the audio file itself
                raise FixtureError(f"{path}: {where}: {error}") from error
            except OSError as error:
                raise FixtureError(f"{path}: {where}: {audio}: {error}") from error
    return loaded


def fixture_paths(paths: Sequence[Path]) -> list[Path]:
    """The fixture files named: files as given, folders as their ``*.json`` files in name order (a suite).

    Raises:
        FixtureError: a folder without fixture files.
    """
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            inside = sorted(path.glob("*.json"))
            if not inside:
                raise FixtureError(f"{path}: no fixture calls (*.json) in this folder")
            found += inside
        else:
            found.append(path)
    return found


def load_fixtures(paths: Sequence[Path]) -> list[LoadedFixture]:
    """Load several fixture files (folders stand for their ``*.json`` files); names must differ, as they name the
    report files.

    Raises:
        FixtureError: naming the file and the field at fault.
    """
    loaded = [load_fixture(path) for path in fixture_paths(paths)]
    seen: dict[str, Path] = {}
    for item in loaded:
        other = seen.setdefault(item.fixture.name, item.path)
        if other != item.path:
            raise FixtureError(f"{item.path}: name: {item.fixture.name!r} is also the name of {other}")
    return loaded


def check_catalogue_names(loaded: Sequence[LoadedFixture], intents: Iterable[str], departments: Iterable[str]) -> None:
    """Refuse expectations that name an intent or a department the server's catalogue does not have (a typo would
    otherwise show only as a failed check after the whole replay).

    Raises:
        FixtureError: "<file>: turn 2 expect.department: 'biling' is not a department of the catalogue (...)".
    """
    known = {"intent": sorted(intents), "department": sorted(departments)}
    for item in loaded:
        places = [
            (turn_field(number, "expect"), expect) for number, expect in enumerate(item.fixture.turn_expects(), start=1)
        ]
        places.append(("expect", item.fixture.expect))
        for where, expect in places:
            for field, names in known.items():
                value = getattr(expect, field, None) if expect is not None else None
                if value is not None and value not in names:
                    raise FixtureError(
                        f"{item.path}: {where}.{field}: {value!r} is not {'an' if field == 'intent' else 'a'} {field} "
                        f"of the catalogue (one of {', '.join(names)})"
                    )


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
            samples, rate = read_wav(source.audio_path(spec))
            frames = pcm_to_twilio_frames(samples, rate)
        elif isinstance(spec, PauseTurn):
            frames = [SILENCE_FRAME] * math.ceil(spec.pause_ms / FRAME_MS)
        turns.append(PreparedTurn(index, spec, tuple(frames), voiced_frames(frames)))
    return PreparedCall(source=source, turns=tuple(turns))
