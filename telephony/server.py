"""The HTTP server that ``voice-agent serve`` runs: uvicorn's, with the signals an operator sends.

SIGHUP reloads the catalogue (`telephony.catalogue_reload`; the outcome is logged). The first SIGTERM or SIGINT
starts a graceful drain (`telephony.drain`): new calls go to a person, live calls go on until they end or, after
VOICE_AGENT_DRAIN_TIMEOUT_S, are handed to a person; then the server stops as uvicorn does, after closing the desk's
event streams (`telephony.web.api.StreamClosingServer`). A second SIGTERM or SIGINT stops it at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys
from types import FrameType

import uvicorn
from fastapi import FastAPI

from telephony.catalogue_reload import reload_logged
from telephony.state import AppState
from telephony.web.api import StreamClosingServer

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_S = 10.0
"""After the drain, how long open connections may take to finish before uvicorn cancels them."""


class VoiceAgentServer(StreamClosingServer):
    """uvicorn's server for the voice agent's app (`telephony.app.create_app`): catalogue reload on SIGHUP, a
    graceful drain on the first SIGTERM or SIGINT."""

    def __init__(self, config: uvicorn.Config) -> None:
        if config.timeout_graceful_shutdown is None:
            # The calls are drained before the shutdown begins; what is left then need not hold the stop up.
            config.timeout_graceful_shutdown = SHUTDOWN_GRACE_S
        super().__init__(config)
        # Held until done: the loop keeps only weak references to tasks.
        self._reloads: set[asyncio.Task[bool]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_begun = False
        self._drain: asyncio.Task[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)
        app = self.config.app
        if isinstance(app, FastAPI) and sys.platform != "win32":
            self._loop.add_signal_handler(signal.SIGHUP, self._reload, app)

    def _reload(self, app: FastAPI) -> None:
        task = asyncio.get_running_loop().create_task(reload_logged(app), name="catalogue-reload")
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """The first SIGTERM or SIGINT drains, then stops; a second stops at once (uvicorn's forced exit)."""
        state = self._app_state()
        if self._drain_begun or self._loop is None or state is None or self.should_exit:
            if self._drain_begun:
                self.force_exit = True
            super().handle_exit(sig, frame)
            return
        self._drain_begun = True
        # Re-raised once the server has stopped, as uvicorn does, so the process ends the way the signal asks.
        self._captured_signals.append(sig)
        # A signal handler runs between two steps of whatever the main thread was doing: leave the work to the loop.
        self._loop.call_soon_threadsafe(self._start_drain, state)

    def _app_state(self) -> AppState | None:
        app = self.config.app
        # Only once the models are loaded: before, there is no call to drain and stopping at once is right.
        if not isinstance(app, FastAPI) or getattr(app.state, "running", None) is None:
            return None
        return app.state.voice

    def _start_drain(self, state: AppState) -> None:
        settings = state.settings
        self._drain = asyncio.get_running_loop().create_task(
            state.drain.run(state.registry, settings.drain_timeout_s), name="drain"
        )
        self._drain.add_done_callback(self._drained)

    def _drained(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("the drain failed; stopping now", exc_info=task.exception())
        self.should_exit = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._drain is not None and not self._drain.done():  # a second signal cut the drain short
            self._drain.cancel()
            await asyncio.gather(self._drain, return_exceptions=True)
        if sys.platform != "win32":
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        await super().shutdown(sockets)
