"""The one Settings object: environment variables prefixed VOICE_AGENT_, validated at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

# prompts/ sits beside the packages in the source tree (installed in editable mode, as the README does).
DEFAULT_PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"


class SettingsError(ValueError):
    """A configuration value is missing or invalid; the message names the variable."""


class Settings(BaseSettings):
    """Configuration of the voice agent."""

    model_config = SettingsConfigDict(env_prefix="VOICE_AGENT_", extra="ignore")

    language: Literal["en", "nl"] = "en"
    """Language the agent speaks and understands."""
    prompts_dir: Path = Field(default=DEFAULT_PROMPTS_DIR)
    """Folder with the catalogue (intents, replies, policy)."""
    data_dir: Path = Path("voice-agent-data")
    """Where the embedded database, logs and caches live."""


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
        raise SettingsError(f"{name}={first.get('input')!r}: {first['msg']}") from error
