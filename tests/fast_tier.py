"""The fast tier's guard: under `pytest --fast`, loading a model, launching a browser or reaching a PostgreSQL server
fails the test with a message that says to mark it slow.

The guard patches the constructors every such path goes through (Whisper's model class, every onnxruntime session,
which covers Silero VAD and Piper, Playwright's browser launch, psycopg's connect), for the whole fast run.
Violations are also recorded and fail the test after the fact, so product code that catches the error (a fallback,
a worker thread) cannot hide one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest

FIX = "mark this test slow (@pytest.mark.slow), or use the voice_services fixture, which marks it"


class FastTierError(RuntimeError):
    """A fast test touched a model, a browser or a database server."""


class FastTierGuard:
    def __init__(self) -> None:
        self.violations: list[str] = []
        self._monkeypatch = pytest.MonkeyPatch()

    def install(self) -> None:
        # Importing voice first sets onnxruntime's no-telemetry variable before anything imports onnxruntime.
        import faster_whisper
        import onnxruntime
        import playwright.async_api
        import playwright.sync_api
        import psycopg

        import voice  # noqa: F401

        self._refuse(faster_whisper.WhisperModel, "__init__", "loads the Whisper model (faster_whisper.WhisperModel)")
        self._refuse(
            onnxruntime.InferenceSession,
            "__init__",
            "loads an ONNX model (onnxruntime.InferenceSession: Silero VAD or the Piper voice)",
        )
        for api in (playwright.sync_api, playwright.async_api):
            for method in ("launch", "launch_persistent_context", "connect", "connect_over_cdp"):
                self._refuse(api.BrowserType, method, f"launches a browser (Playwright BrowserType.{method})")
        original = psycopg.Connection.connect
        self._monkeypatch.setattr(psycopg, "connect", self._postgres_connect(original))
        self._monkeypatch.setattr(psycopg.Connection, "connect", self._postgres_connect(original))

    def uninstall(self) -> None:
        self._monkeypatch.undo()

    def take_violations(self) -> list[str]:
        violations, self.violations = self.violations, []
        return violations

    def _fail(self, what: str) -> FastTierError:
        message = f"fast tier: this test {what}; {FIX}"
        self.violations.append(message)
        return FastTierError(message)

    def _refuse(self, owner: type, name: str, what: str) -> None:
        @functools.wraps(getattr(owner, name))
        def refuse(*args, **kwargs):
            raise self._fail(what)

        self._monkeypatch.setattr(owner, name, refuse)

    def _postgres_connect(self, original: Callable) -> Callable:
        # A refused connection is what a machine without a server gives anyway, and some fast tests check exactly
        # that error; only a connection that reaches a server is a violation.
        import psycopg

        @functools.wraps(original)
        def connect(*args, **kwargs):
            try:
                connection = original(*args, **kwargs)
            except psycopg.OperationalError as error:
                error.add_note(f"fast tier: if this test needs a PostgreSQL server, {FIX}")
                raise
            connection.close()
            raise self._fail("connects to a PostgreSQL server (psycopg.connect)")

        return connect
