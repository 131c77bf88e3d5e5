""".env.example lists every setting with its real default, and the settings are read from a .env file in the working
directory, the environment winning over it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import AliasChoices, SecretStr

from telephony.settings import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
ENV_EXAMPLE = REPO / ".env.example"
# A commented-out setting: "# NAME=value".
SETTING_LINE = re.compile(r"^# ?([A-Z][A-Z0-9_]*)=(.*)$")


def variable_of(field: str) -> str:
    """The variable a field is documented under: its first alias (TWILIO_AUTH_TOKEN), else VOICE_AGENT_<FIELD>."""
    alias = Settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return f"VOICE_AGENT_{field.upper()}"


def every_variable_of(field: str) -> list[str]:
    alias = Settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    return [f"VOICE_AGENT_{field.upper()}"]


def example_settings() -> list[tuple[str, str]]:
    """The (variable, value) pairs of .env.example, in order."""
    return [
        (match[1], match[2])
        for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
        if (match := SETTING_LINE.match(line))
    ]


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No setting in the environment (conftest sets the data folder) and an empty working directory."""
    for field in Settings.model_fields:
        for variable in every_variable_of(field):
            monkeypatch.delenv(variable, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def comparable(value: object) -> object:
    # Relative paths in the example are relative to the checkout, where the server starts.
    if isinstance(value, Path):
        return (REPO / value).resolve()
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return value


def test_every_setting_is_listed_once_and_nothing_else():
    listed = [variable for variable, _ in example_settings()]
    expected = {variable_of(field) for field in Settings.model_fields}
    duplicates = sorted({variable for variable in listed if listed.count(variable) > 1})
    assert duplicates == [], f"listed more than once in .env.example: {duplicates}"
    assert sorted(expected - set(listed)) == [], "settings missing from .env.example"
    assert sorted(set(listed) - expected) == [], "not settings (a renamed or removed variable?)"


def test_each_listed_default_is_the_real_default(clean_environment: Path):
    values = dict(example_settings())
    defaults = {field: info.default for field, info in Settings.model_fields.items() if info.default is not None}
    dotenv = clean_environment / "defaults.env"
    dotenv.write_text("".join(f"{variable_of(field)}={values[variable_of(field)]}\n" for field in defaults))
    loaded = Settings(_env_file=dotenv)
    wrong = {
        variable_of(field): values[variable_of(field)]
        for field, default in defaults.items()
        if comparable(getattr(loaded, field)) != comparable(default)
    }
    assert wrong == {}, "these lines of .env.example do not show the default"


def test_every_listed_value_is_valid_together(clean_environment: Path):
    dotenv = clean_environment / "everything.env"
    dotenv.write_text("".join(f"{variable}={value}\n" for variable, value in example_settings()))
    settings = Settings(_env_file=dotenv)
    assert settings.public_url == "https://voice.example.com"
    assert settings.twilio_account_sid == "AC" + "0" * 32
    assert settings.agent_token is None  # an empty token is unset, not a token


def test_settings_are_read_from_a_dotenv_file_in_the_working_directory(clean_environment: Path):
    (clean_environment / ".env").write_text(
        "VOICE_AGENT_MAX_CALLS=3\nVOICE_AGENT_PUBLIC_URL=https://voice.example.com/\nTWILIO_AUTH_TOKEN=from-the-file\n"
    )
    settings = load_settings()
    assert settings.max_calls == 3
    assert settings.public_url == "https://voice.example.com"
    assert settings.twilio_auth_token is not None
    assert settings.twilio_auth_token.get_secret_value() == "from-the-file"


def test_the_environment_wins_over_the_dotenv_file(clean_environment: Path, monkeypatch: pytest.MonkeyPatch):
    (clean_environment / ".env").write_text("VOICE_AGENT_MAX_CALLS=3\nTWILIO_AUTH_TOKEN=from-the-file\n")
    monkeypatch.setenv("VOICE_AGENT_MAX_CALLS", "7")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "from-the-environment")
    settings = load_settings()
    assert settings.max_calls == 7
    assert settings.twilio_auth_token is not None
    assert settings.twilio_auth_token.get_secret_value() == "from-the-environment"


def test_a_bad_value_in_the_dotenv_file_names_the_variable(clean_environment: Path):
    (clean_environment / ".env").write_text("VOICE_AGENT_MAX_CALLS=many\n")
    with pytest.raises(ValueError, match="VOICE_AGENT_MAX_CALLS='many'"):
        load_settings()
