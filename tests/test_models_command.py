"""`voice-agent models list|fetch|verify` and the voice the settings choose (telephony/models_command.py,
telephony/voice_services.py): Dutch never starts without a Dutch voice, and every message names the command that
fixes it."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from telephony.cli import main
from telephony.model_manifest import load_manifest
from telephony.settings import SettingsError, load_settings
from telephony.voice_services import choose_voice, recognizer_model_dir
from voice.models import ModelNotFound, whisper_model_dir

NATHALIE = "nl_BE-nathalie-medium"


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty model cache of this test's own, and no voice or language from the environment."""
    folder = tmp_path / "model-cache"
    monkeypatch.setenv("VOICE_AGENT_MODEL_CACHE", str(folder))
    for name in ("LANGUAGE", "VOICE", "PIPER_VOICE", "WHISPER_MODEL"):
        monkeypatch.delenv(f"VOICE_AGENT_{name}", raising=False)
    return folder


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens once it is closed


def test_the_manifest_pins_every_downloadable_file() -> None:
    manifest = load_manifest()
    assert {"whisper-base", "whisper-small", NATHALIE, "espeak-ng-nl"} <= set(manifest)
    nathalie = manifest[NATHALIE]
    assert nathalie.base_url and nathalie.base_url.startswith("https://")
    assert [pinned.path for pinned in nathalie.files] == [f"{NATHALIE}.onnx", f"{NATHALIE}.onnx.json"]
    assert "Git LFS" in nathalie.provenance  # how the digests were obtained is written down
    assert manifest["espeak-ng-nl"].stand_in and "STAND-IN" in manifest["espeak-ng-nl"].description


def test_list_tells_what_is_missing_and_how_to_get_it(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert f"model cache: {cache}" in out
    assert f"not fetched: `voice-agent models fetch {NATHALIE}`" in out
    assert "whisper-small            unavailable" in out
    assert "whisper-tiny.en          bundled" in out


def test_verify_fails_on_a_fetched_file_that_is_not_the_pinned_one(
    cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = cache / "voices" / NATHALIE
    folder.mkdir(parents=True)
    for pinned in load_manifest()[NATHALIE].files:
        (folder / pinned.path).write_bytes(b"not the voice")
    assert main(["models", "verify"]) == 1
    captured = capsys.readouterr()
    assert f"{NATHALIE}: CORRUPT" in captured.out
    assert "do not match their pins" in captured.err


def test_fetch_without_network_says_so_and_leaves_nothing(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mirror = f"http://127.0.0.1:{closed_port()}/piper"
    assert main(["models", "fetch", NATHALIE, "--mirror", mirror]) == 2
    assert f"cannot download {mirror}/{NATHALIE}.onnx" in capsys.readouterr().err
    assert not any((cache / "voices" / NATHALIE).iterdir())


def test_fetch_of_an_unknown_name_lists_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "fetch", "nl_NL-nobody"]) == 2
    assert "no model called 'nl_NL-nobody'" in capsys.readouterr().err


def test_serving_dutch_without_a_dutch_voice_stops_at_start_up(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("telephony.cli.limit_malloc_arenas", lambda: False)
    assert main(["serve", "--lang", "nl", "--port", "18399"]) == 2
    err = capsys.readouterr().err
    assert "VOICE_AGENT_LANGUAGE=nl needs a voice that speaks it" in err
    assert f"voice-agent models fetch {NATHALIE}" in err


def test_the_voice_must_speak_the_language() -> None:
    english_voice = load_settings(language="nl", piper_voice=None)
    with pytest.raises(ModelNotFound, match="voice-agent models fetch"):
        choose_voice(english_voice)
    from voice.models import piper_voice_files

    joe, _config = piper_voice_files(None)
    with pytest.raises(ModelNotFound, match=r"speaks 'en'.*VOICE_AGENT_LANGUAGE=nl"):
        choose_voice(load_settings(language="nl", piper_voice=joe))
    with pytest.raises(ModelNotFound, match=r"espeak-ng-nl speaks 'nl', but VOICE_AGENT_LANGUAGE=en"):
        choose_voice(load_settings(language="en", voice="espeak-ng-nl"))
    with pytest.raises(ModelNotFound, match="is a recogniser, not a voice"):
        choose_voice(load_settings(language="nl", voice="whisper-base"))
    with pytest.raises(ModelNotFound, match=f"not fetched .*voice-agent models fetch {NATHALIE}"):
        choose_voice(load_settings(language="nl", voice=NATHALIE))


def test_the_stand_in_and_the_bundled_voice_are_chosen_by_language() -> None:
    stand_in = choose_voice(load_settings(language="nl", voice="espeak-ng-nl"))
    assert stand_in.espeak_voice == "nl" and "stand-in" in stand_in.description
    english = choose_voice(load_settings(language="en"))
    assert english.piper is not None and english.piper[0].name == "en_US-joe-medium.onnx"


def test_one_voice_setting_at_a_time(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="VOICE_AGENT_VOICE and VOICE_AGENT_PIPER_VOICE"):
        load_settings(voice="espeak-ng-nl", piper_voice=tmp_path / "x.onnx")


def test_the_recogniser_follows_the_language(tmp_path: Path) -> None:
    assert recognizer_model_dir(load_settings(language="en")) == whisper_model_dir(None)
    explicit = whisper_model_dir(None)
    assert recognizer_model_dir(load_settings(language="nl", whisper_model=explicit)) == explicit
