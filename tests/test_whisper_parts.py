"""Multilingual Whisper from its PyPI parts (voice/whisper_parts.py, voice.models.multilingual_whisper_dir): the
halves are joined into the private model cache once, every file is checked against its pin, and nothing
unverified or half-written is ever left under a name the loader trusts."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest

from voice.model_integrity import ModelIntegrityError
from voice.models import ModelNotFound, multilingual_whisper_dir
from voice.whisper_parts import PackagedFile, SplitWhisperModel, assemble, is_assembled

HALVES = (b"first half of the weights ", b"second half")
CONFIG = b'{"lang_ids": [50259]}'


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SplitWhisperModel:
    """Two small installed 'part packages' on sys.path, as the real ones are laid out (data/ beside __init__.py)."""
    site = tmp_path / "site"
    for index, half in enumerate(HALVES, start=1):
        package = site / f"test_whisper_part{index}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / f"model.bin.part{index}").write_bytes(half)
    (site / "test_whisper_part1" / "data" / "config.json").write_bytes(CONFIG)
    monkeypatch.syspath_prepend(str(site))
    return SplitWhisperModel(
        size="test",
        model_parts=tuple(
            PackagedFile(f"test-whisper-part{i}", f"test_whisper_part{i}", f"data/model.bin.part{i}") for i in (1, 2)
        ),
        model_sha256=_sha(b"".join(HALVES)),
        files={
            "config.json": (PackagedFile("test-whisper-part1", "test_whisper_part1", "data/config.json"), _sha(CONFIG))
        },
    )


def test_the_halves_are_joined_into_a_private_verified_folder(parts: SplitWhisperModel, tmp_path: Path) -> None:
    folder = assemble(parts, tmp_path / "cache")
    assert (folder / "model.bin").read_bytes() == b"".join(HALVES)
    assert (folder / "config.json").read_bytes() == CONFIG
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert {stat.S_IMODE(path.stat().st_mode) for path in folder.iterdir()} == {0o600}
    assert sorted(path.name for path in folder.iterdir()) == ["config.json", "model.bin"]  # no temporary files left
    assert is_assembled(parts, tmp_path / "cache")


def test_a_verified_copy_is_used_as_it_is(parts: SplitWhisperModel, tmp_path: Path) -> None:
    folder = assemble(parts, tmp_path / "cache")
    inode = (folder / "model.bin").stat().st_ino
    # Even with the packages gone, the verified copy serves.
    for part in parts.model_parts:
        (tmp_path / "site" / part.module / part.path).unlink()
    assert assemble(parts, tmp_path / "cache") == folder
    assert (folder / "model.bin").stat().st_ino == inode


def test_a_corrupted_cached_copy_is_rebuilt_from_the_parts(parts: SplitWhisperModel, tmp_path: Path) -> None:
    folder = assemble(parts, tmp_path / "cache")
    (folder / "model.bin").write_bytes(b"tampered")
    assemble(parts, tmp_path / "cache")
    assert (folder / "model.bin").read_bytes() == b"".join(HALVES)


def test_parts_that_do_not_make_the_pinned_model_leave_nothing_behind(parts: SplitWhisperModel, tmp_path: Path) -> None:
    (tmp_path / "site" / "test_whisper_part2" / "data" / "model.bin.part2").write_bytes(b"something else")
    with pytest.raises(ModelIntegrityError, match="assembled from its parts"):
        assemble(parts, tmp_path / "cache")
    assert [path.name for path in (tmp_path / "cache" / parts.cache_name).iterdir()] == ["config.json"]


def test_a_missing_part_package_names_the_pip_command_and_the_models_command(
    parts: SplitWhisperModel, tmp_path: Path
) -> None:
    (tmp_path / "site" / "test_whisper_part2" / "data" / "model.bin.part2").unlink()
    with pytest.raises(ModelNotFound) as error:
        assemble(parts, tmp_path / "cache")
    message = str(error.value)
    assert "pip install test-whisper-part1 test-whisper-part2" in message
    assert "voice-agent models fetch whisper-test" in message


def test_whisper_small_is_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="only the first 180 MiB"):
        multilingual_whisper_dir("small", tmp_path)
    with pytest.raises(ModelNotFound, match="expected one of base, small"):
        multilingual_whisper_dir("large", tmp_path)


def test_the_cache_follows_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from voice.model_cache import default_model_cache

    monkeypatch.setenv("VOICE_AGENT_MODEL_CACHE", str(tmp_path / "models"))
    assert default_model_cache() == tmp_path / "models"
    monkeypatch.delenv("VOICE_AGENT_MODEL_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_model_cache() == tmp_path / "xdg" / "voice-agent"
