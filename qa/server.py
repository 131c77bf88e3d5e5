"""The server side of a QA replay: the app served in this process, and the after-stream question a replay asks.

InProcessServer: the voice-agent app (configured from the environment, as `voice-agent serve` is), served by
    uvicorn on 127.0.0.1 in a background thread; after each call it tells what the server heard and decided
fetch_after_stream: ``POST /twilio/after-stream`` as Twilio posts it, signed
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from qa.call_log import ServerView
from qa.expect import IN_PROCESS_DATA
from qa.loopback_addresses import LoopbackAddresses
from qa.loopback_server import LoopbackServer
from qa.twilio_emulator import TwilioSide
from qa.twilio_signing import TwilioCredentials
from telephony.twilio.twiml import AFTER_STREAM_PATH, MEDIA_PATH

if TYPE_CHECKING:
    from fastapi import FastAPI

    from telephony.settings import Settings
    from voice.pipeline import VoiceServices

CLOSE_TIMEOUT_S = 5.0
"""Longest wait for the server to close the socket after `stop`, and for it to finish the call afterwards."""
SERVER_START_TIMEOUT_S = 300.0
"""Longest wait for the in-process server to load its models (tens of seconds on two cores)."""


class ReplayError(RuntimeError):
    """The replay could not run at all (the in-process server did not start)."""


class InProcessServer(LoopbackAddresses):
    """The voice-agent app, served by uvicorn on 127.0.0.1 (a free port) in a background thread.

    Served by `LoopbackServer` (a thread, so that the server's work cannot delay the replay's 20 ms clock, which
    would then measure its own lateness). Configured from the environment, as `voice-agent serve` is.
    """

    def __init__(
        self,
        language: str = "en",
        services: VoiceServices | None = None,
        database_url: str | None = None,
        min_calls: int = 1,
    ) -> None:
        """Read the configuration; nothing is loaded or served until `start`.

        Args:
            language: the fixtures' language, which the server must speak.
            services: models already loaded in this process to share (tests do); default: load them in `start`.
            database_url: where the server keeps the call records; default: as configured.
            min_calls: the fewest simultaneous calls the server must admit (the replay's parallel calls): the
                configured VOICE_AGENT_MAX_CALLS is raised to it when lower.

        Raises:
            telephony.settings.SettingsError: naming the variable at fault.
        """
        import os
        import secrets

        from telephony.settings import load_settings

        # The replay talks to this server as Twilio does, signing with its auth token: a throwaway one when none is
        # configured, so that the replayed calls take the path real calls take.
        configured = os.environ.get("TWILIO_AUTH_TOKEN") or os.environ.get("VOICE_AGENT_TWILIO_AUTH_TOKEN")
        token = None if configured else secrets.token_urlsafe(24)
        self.settings = load_settings(language=language, database_url=database_url, twilio_auth_token=token)
        if self.settings.max_calls < min_calls:
            self.settings = self.settings.model_copy(update={"max_calls": min_calls})
        self.voice_note: str | None = None
        """Said to the replay's progress when the server answers with a stand-in voice."""
        if services is None:
            self.settings, self.voice_note = voice_for_replay(self.settings)
        self.services = services
        self._owns_services = services is None
        self.app: FastAPI | None = None
        self._loopback: LoopbackServer | None = None
        self.port = 0

    def start(self) -> None:
        """Load the models (unless given), start serving and wait until ``/healthz`` says ready.

        Raises:
            voice.prompts.PromptError, telephony.twilio.deployment.DeploymentError: naming the file and the entry at
                fault.
            voice.models.ModelNotFound: a model is missing (the message says what to install).
            ReplayError: the server did not start for another reason.
        """
        from telephony.app import create_app
        from telephony.voice_services import load_voice_services
        from voice.prompts import load_catalogue

        catalogue = load_catalogue(self.settings.prompts_dir, self.settings.language)
        if self.services is None:
            # Loaded here rather than in the app's lifespan, so that a missing model is raised to the caller with
            # its message instead of being logged by uvicorn in the server's thread.
            self.services = load_voice_services(self.settings, catalogue)
        self.app = create_app(self.settings, services=self.services)

        self._loopback = LoopbackServer(self.app, name="replay-server")
        try:
            self._loopback.start(SERVER_START_TIMEOUT_S)
        except RuntimeError as error:
            raise ReplayError(f"{error}; see the log above") from error
        self.port = self._loopback.port
        response = httpx.get(f"{self.http_base}/healthz", timeout=5)
        if response.status_code != 200:
            self.stop()
            raise ReplayError(f"the in-process server is not ready: /healthz answered {response.status_code}")

    def stop(self) -> None:
        """Stop serving, and shut the model workers down if `start` loaded them."""
        if self._loopback is not None:
            self._loopback.stop()
        if self._owns_services and self.services is not None:
            self.services.workers.shutdown()
            self.services = None

    def __enter__(self) -> InProcessServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def view(self, call_sid: str) -> ServerView | None:
        """What the server recorded about a call, once it has finished it (None for an unknown call): its call
        record as the call API would serve it, so that in-process and `--server --token` reports agree.

        The registry lives on the server's thread; reading a few attributes from here is safe (the GIL keeps each
        read whole), and nothing is written.
        """
        from telephony.call_record import call_record
        from telephony.calls import CallState

        if self.app is None:
            raise ReplayError("the in-process server has not been started")
        registry = self.app.state.voice.registry
        info = registry.get(call_sid)
        deadline = time.monotonic() + CLOSE_TIMEOUT_S
        while info is not None and info.state is not CallState.FINISHED and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if info is None:
            return None
        return ServerView.of_record(call_record(info), IN_PROCESS_DATA)


def voice_for_replay(settings: Settings) -> tuple[Settings, str | None]:
    """The settings a replay's server of `settings.language` runs with, and a note when its voice is a stand-in.

    One environment configures the voice, but a suite may hold calls in several languages. A voice configured for
    another language is left to that language's server; English then speaks with the bundled voice, and a language
    without a configured voice with the manifest's stand-in for it (espeak-ng-nl): the replay checks what the agent
    decides and when it speaks, which any voice shows. A voice configured for the language itself is always used.
    """
    from telephony.model_manifest import load_manifest

    manifest = load_manifest()
    if settings.piper_voice is not None or (settings.voice and settings.voice not in manifest):
        return settings, None  # explicit, or unknown: loading it says what is wrong
    if settings.voice and manifest[settings.voice].language == settings.language:
        return settings, None
    if settings.language == "en":
        return settings.model_copy(update={"voice": None}), None
    stand_in = next((e for e in manifest.values() if e.stand_in and e.language == settings.language), None)
    if stand_in is None:
        return settings, None
    note = (
        f"no {settings.language} voice is configured (VOICE_AGENT_VOICE): the agent answers the replay's "
        f"{settings.language} calls with the {stand_in.name} stand-in voice"
    )
    return settings.model_copy(update={"voice": stand_in.name}), note


def http_base_of(ws_url: str) -> str:
    """The HTTP base URL of the server behind a media-stream URL: ``ws://h:p/twilio/media`` -> ``http://h:p``.

    Raises:
        ValueError: not a ws:// or wss:// URL with a host.
    """
    parts = urlsplit(ws_url)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise ValueError(f"expected a ws:// or wss:// URL such as ws://127.0.0.1:8080{MEDIA_PATH}, got {ws_url!r}")
    return ("https" if parts.scheme == "wss" else "http") + "://" + parts.netloc


async def fetch_after_stream(http_base: str, twilio: TwilioSide, credentials: TwilioCredentials) -> dict[str, Any]:
    """Ask ``POST /twilio/after-stream`` what Twilio would do next with the call, as Twilio asks it.

    Args:
        http_base: the server's HTTP base URL.
        twilio: the call's SIDs.
        credentials: what Twilio signs with.

    Returns:
        ``{"status", "twiml", "verb"}``; verb is the first TwiML verb (Dial, Hangup, Enqueue) or None.
    """
    form = {"CallSid": twilio.call_sid, "AccountSid": twilio.account_sid, "CallStatus": "in-progress"}
    url = http_base + AFTER_STREAM_PATH
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(url, data=form, headers=credentials.headers(url, form))
    except httpx.HTTPError as error:
        return {"status": None, "twiml": None, "verb": None, "error": str(error)}
    return {"status": response.status_code, "twiml": response.text, "verb": _first_verb(response.text)}


def _first_verb(twiml: str) -> str | None:
    import xml.etree.ElementTree as ElementTree

    try:
        root = ElementTree.fromstring(twiml)
    except ElementTree.ParseError:
        return None
    first = next(iter(root), None)
    return first.tag if first is not None else None
