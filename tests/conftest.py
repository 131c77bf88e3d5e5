"""Shared fixtures: the real catalogue in prompts/ and an engine per language (trained once per test session); the
two test tiers (`pytest --fast` runs the tests not marked slow, under the guard in tests/fast_tier.py)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from tests.fast_tier import FastTierError, FastTierGuard
from voice.dialogue import DialogueEngine
from voice.prompts import LANGUAGES

REPO = Path(__file__).resolve().parent.parent
PROMPTS_DIR = REPO / "prompts"
SUITE_DIR = REPO / "audio_fixtures" / "calls"

# The tier tests (tests/test_fast_tier.py) run small suites in a nested pytest.
pytest_plugins = ["pytester"]

# Fixtures that load the real models: a test using one, even through another fixture, is slow.
SLOW_FIXTURES = {"voice_services", "voice_services_nl", "suite_replay"}
_GUARD = pytest.StashKey[FastTierGuard]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fast",
        action="store_true",
        help="run only the fast tier (tests not marked slow); a test that loads a model, launches a browser or "
        "connects to PostgreSQL fails",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("fast"):
        guard = FastTierGuard()
        guard.install()
        config.stash[_GUARD] = guard


def pytest_unconfigure(config: pytest.Config) -> None:
    guard = config.stash.get(_GUARD, None)
    if guard is not None:
        guard.uninstall()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    if config.getoption("fast"):
        slow = [item for item in items if item.get_closest_marker("slow")]
        if slow:
            config.hook.pytest_deselected(items=slow)
            items[:] = [item for item in items if not item.get_closest_marker("slow")]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    guard = item.config.stash.get(_GUARD, None)
    violations = guard.take_violations() if guard is not None else []
    if violations and not (call.excinfo and call.excinfo.errisinstance(FastTierError)):
        # Product code caught the guard's error (a fallback, a worker thread): the test must not pass on that.
        report.sections.append(("fast tier", "\n".join(violations)))
        if report.passed:
            report.outcome = "failed"
            report.longrepr = "\n".join(violations)
    return report


@pytest.fixture(autouse=True)
def _root_logging_restored():
    """Put the root logger back after each test: the CLI's `configure_logging` binds a handler to the sys.stderr of the
    moment, which is this test's capture; a later test's background thread (a retention purge) would write to it
    after pytest closed it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(autouse=True)
def _data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test's app keeps its database and caller key in its own folder, never in the working directory."""
    data_dir = tmp_path / "voice-agent-data"
    monkeypatch.setenv("VOICE_AGENT_DATA_DIR", str(data_dir))
    monkeypatch.delenv("VOICE_AGENT_DATABASE_URL", raising=False)
    return data_dir


@pytest.fixture(autouse=True)
def _twilio_auth_token(monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test's app checks Twilio's signatures, as a deployed one must; tests/helpers.py signs with this token."""
    from tests.helpers import TEST_AUTH_TOKEN

    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TEST_AUTH_TOKEN)
    for variable in ("VOICE_AGENT_TWILIO_AUTH_TOKEN", "VOICE_AGENT_ALLOW_UNSIGNED_WEBHOOKS"):
        monkeypatch.delenv(variable, raising=False)
    return TEST_AUTH_TOKEN


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
def voice_services_nl():
    """The Dutch models, loaded once for the whole test session: multilingual Whisper base (assembled into the model
    cache on first use, VOICE_AGENT_MODEL_CACHE or ~/.cache/voice-agent) and the espeak-ng stand-in voice, since no
    Dutch Piper voice can be installed in CI (Debian's espeak-ng speaking Dutch: robotic, for tests only)."""
    from telephony.settings import load_settings
    from telephony.voice_services import load_voice_services
    from voice.prompts import load_catalogue

    settings = load_settings(language="nl", voice="espeak-ng-nl", piper_voice=None)
    services = load_voice_services(settings, load_catalogue(settings.prompts_dir, settings.language))
    yield services
    services.workers.shutdown()


@pytest.fixture(scope="session")
def suite_replay(voice_services, voice_services_nl, tmp_path_factory):
    """The fixture-call suite in audio_fixtures/calls, replayed once for the whole session against in-process
    servers with the real models: the English calls all at once (about 45 s of real time: the longest call), then
    the Dutch ones (nl_*.json) all at once against a Dutch server. Recordings inline in report.html, whatever the
    number of calls."""
    from qa.fixtures import fixture_paths
    from qa.replay import run_replay

    paths = fixture_paths([SUITE_DIR])
    return run_replay(
        [SUITE_DIR],
        tmp_path_factory.mktemp("suite-report"),
        parallel=len(paths),
        services=[voice_services, voice_services_nl],
        progress=lambda line: None,
        inline_audio=True,
    )
