"""Shared fixtures: the real catalogue in prompts/ and an engine per language (trained once per test session)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from voice.dialogue import DialogueEngine
from voice.prompts import LANGUAGES

REPO = Path(__file__).resolve().parent.parent
PROMPTS_DIR = REPO / "prompts"


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
