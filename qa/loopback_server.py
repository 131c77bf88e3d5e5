"""An app served by uvicorn on 127.0.0.1, on a free port, in a background thread: for the in-process replay and
for tests that need a real socket (event streams, the browser).

A thread, not a task on the caller's loop: the server's work must not delay the caller's own clock (the replay's
20 ms media pace). Bounded both ways: starting waits at most `start_timeout_s`; stopping asks the server to exit and,
if it is still running after `STOP_TIMEOUT_S`, forces it, so nothing hangs on a stuck connection.
"""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from fastapi import FastAPI

from qa.loopback_addresses import LOOPBACK_HOST, LoopbackAddresses
from telephony.web.api import StreamClosingServer

STOP_TIMEOUT_S = 10.0


class LoopbackServer(LoopbackAddresses):
    """`app` served as `voice-agent serve` serves it (same WebSocket implementation, desk streams closed on exit)."""

    def __init__(self, app: FastAPI, name: str = "loopback-server") -> None:
        self.app = app
        self.name = name
        self.port = 0
        self.stopped_cleanly: bool | None = None
        """After `stop`: True when the server exited within `STOP_TIMEOUT_S` without being forced."""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, start_timeout_s: float = 30.0) -> None:
        """Serve, and return once uvicorn has started (the app's lifespan has run).

        Raises:
            RuntimeError: the server did not start within `start_timeout_s` (the reason is in uvicorn's log).
        """
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((LOOPBACK_HOST, 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", ws="websockets-sansio", lifespan="on")
        self._server = StreamClosingServer(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=self.name, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + start_timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the {self.name} did not start within {start_timeout_s:.0f} s")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop serving; force the exit if a connection keeps the server busy past `STOP_TIMEOUT_S`."""
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=STOP_TIMEOUT_S)
        self.stopped_cleanly = not self._thread.is_alive()
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout=STOP_TIMEOUT_S)
        self._server = None

    def __enter__(self) -> LoopbackServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
