"""Shared fixtures: the real catalogue in prompts/ and an engine per language (trained once per test session)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from voice.dialogue import DialogueEngine
from voice.prompts import LANGUAGES

REPO = Path(__file__).resolve().parent.parent
PROMPTS_DIR = REPO / "prompts"
SUITE_DIR = REPO / "audio_fixtures" / "calls"


@pytest.fixture(autouse=True)
def _data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test's app keeps its database and caller key in its own folder, never in the working directory."""
    data_dir = tmp_path / "voice-agent-data"
    monkeypatch.setenv("VOICE_AGENT_DATA_DIR", str(data_dir))
    monkeypatch.delenv("VOICE_AGENT_DATABASE_URL", raising=False)
    return data_dir


@pytest.fixture(scope="session")
def engines() -> dict[str, DialogueEngine]:
    return {language: DialogueEngine.from_prompts(PROMPTS_DIR, language) for language in LANGUAGES}


@pytest.fixture(scope="session")
def engine_en(engines: dict[str, DialogueEngine]) -> DialogueEngine:
    return engines["en"]


@pytest.fixture(scope="session")
def engine_nl(engines: dict[str, DialogueEngine]) -> DialogueEngine:
    return engines["nl"]


@pytest.fixture
def prompts_copy(tmp_path: Path) -> Path:
    """A writable copy of prompts/, for tests that break it on purpose."""
    target = tmp_path / "prompts"
    shutil.copytree(PROMPTS_DIR, target)
    return target


@pytest.fixture(scope="session")
def voice_services():
    """The real models, loaded once for the whole test session (Whisper tiny.en, Piper joe, the phrase cache)."""
    from telephony.settings import load_settings
    from telephony.voice_services import load_voice_services
    from voice.prompts import load_catalogue

    settings = load_settings()
    services = load_voice_services(settings, load_catalogue(settings.prompts_dir, settings.language))
    yield services
    services.workers.shutdown()


@pytest.fixture(scope="session")
def suite_replay(voice_services, tmp_path_factory):
    """The fixture-call suite in audio_fixtures/calls, replayed once for the whole session against the in-process
    server with the real models, all calls at once (about 45 s of real time: the longest call)."""
    from qa.fixtures import fixture_paths
    from qa.replay import run_replay

    paths = fixture_paths([SUITE_DIR])
    return run_replay(
        [SUITE_DIR],
        tmp_path_factory.mktemp("suite-report"),
        parallel=len(paths),
        services=voice_services,
        progress=lambda line: None,
    )
