"""A real HTTP server for tests that need one (event streams, the browser): uvicorn in a background thread.

TestClient runs a response to its end before returning it, so an endless event stream, a client that goes away
and a server shutdown can only be tested against a real socket.
"""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from fastapi import FastAPI

from telephony.api import StreamClosingServer

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


class LiveServer:
    """`app` served by `StreamClosingServer` (as `voice-agent serve` does) on 127.0.0.1, on a free port.

    Bounded both ways: starting waits at most `START_TIMEOUT_S`; stopping asks the server to exit and, if it is
    still running after `STOP_TIMEOUT_S`, forces it, so a test never hangs on a stuck connection.
    """

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.port = 0
        self.stopped_cleanly: bool | None = None
        """After `stop`: True when the server exited within `STOP_TIMEOUT_S` without being forced."""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        """The media-stream URL, as `voice-agent replay --server` takes it."""
        return f"ws://127.0.0.1:{self.port}/twilio/media"

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", ws="websockets-sansio", lifespan="on")
        self._server = StreamClosingServer(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="live-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the test server did not start within {START_TIMEOUT_S:.0f} s")
            time.sleep(0.02)

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=STOP_TIMEOUT_S)
        self.stopped_cleanly = not self._thread.is_alive()
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout=STOP_TIMEOUT_S)
        self._server = None

    def __enter__(self) -> LiveServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
