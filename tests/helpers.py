"""Small shared helpers for tests (fixtures are in conftest.py)."""

from __future__ import annotations

from telephony.settings import DEFAULT_PROMPTS_DIR

PROMPTS_DIR = DEFAULT_PROMPTS_DIR
