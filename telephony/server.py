"""The HTTP server that ``voice-agent serve`` runs: uvicorn's, with the signals an operator sends.

SIGHUP reloads the catalogue (`telephony.catalogue_reload`; the outcome is logged). SIGINT and SIGTERM stop the
server as uvicorn does, after closing the desk's event streams (`telephony.web.api.StreamClosingServer`).
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys

import uvicorn
from fastapi import FastAPI

from telephony.catalogue_reload import reload_logged
from telephony.web.api import StreamClosingServer


class VoiceAgentServer(StreamClosingServer):
    """uvicorn's server for the voice agent's app (`telephony.app.create_app`), reloading its catalogue on SIGHUP."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        # Held until done: the loop keeps only weak references to tasks.
        self._reloads: set[asyncio.Task[bool]] = set()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        app = self.config.app
        if isinstance(app, FastAPI) and sys.platform != "win32":
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._reload, app)

    def _reload(self, app: FastAPI) -> None:
        task = asyncio.get_running_loop().create_task(reload_logged(app), name="catalogue-reload")
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if sys.platform != "win32":
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        await super().shutdown(sockets)
