"""Small shared helpers for tests (fixtures are in conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from telephony.settings import DEFAULT_PROMPTS_DIR

PROMPTS_DIR = DEFAULT_PROMPTS_DIR

# --- the browser tests: Debian's Chromium driven by Playwright for Python ------------------------------------------
# Playwright's own browser download cannot work offline: the browser is /usr/bin/chromium (`.ci/run` and `make test`
# install it); never run `playwright install`.

CHROMIUM = Path("/usr/bin/chromium")
# No sandbox (root in a container), and nothing that would try to reach the internet.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_browser() -> None:
    """A missing browser is a failure with the fix in the message (`make test` installs it), never a skip."""
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("Playwright for Python (pip install -e '.[dev]')")
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    if missing:
        pytest.fail("the browser test needs " + " and ".join(missing))
