"""Reloading the catalogue (prompts/) into a running server, without a restart.

``POST /api/catalogue/reload`` (admin) and SIGHUP to ``voice-agent serve`` call `reload_catalogue`. The edited
catalogue passes the same checks as ``voice-agent lint-prompts`` first (structure, then tone) and must name the same
departments as the deployment read at start-up; a catalogue that fails is refused with the checks' messages and the
one in use stays. A good one gets a new dialogue engine and a phrase cache holding the audio of every fixed reply
(synthesised in a thread; unchanged replies keep their audio), and then replaces the old catalogue in one step: the
next call hears the new replies, calls in progress keep the engine they started with.

What a reload does not change (a restart does): the deployment (where each department is reached, deploy/), the
language and every other setting, and the speech recogniser's prompt, which is taken from the greeting at start-up.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass

from fastapi import FastAPI

from telephony.state import AppState, Running
from telephony.twilio.deployment import DeploymentError, check_departments
from telephony.twilio.transfer import Transfers
from telephony.voice_services import dialogue_engine, fixed_replies, preloaded_phrases
from voice.dialogue import DialogueEngine
from voice.prompts import Catalogue, PromptError, load_catalogue
from voice.tone import lint_catalogue
from voice.tts import PhraseCache

log = logging.getLogger(__name__)


class CatalogueRefusedError(ValueError):
    """The edited catalogue did not pass the checks; the one in use stays. `problems` holds each message."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class NotReadyError(RuntimeError):
    """The server has no models loaded (starting up or shutting down): there is nothing to reload into."""


@dataclass(frozen=True, slots=True)
class Reloaded:
    """What the reload put in place."""

    language: str
    intents: int
    """Intents in the new catalogue."""
    fixed_replies: int
    """Distinct fixed replies whose audio is ready."""


def checked_catalogue(state: AppState) -> Catalogue:
    """The catalogue in the configured prompts folder and language, checked as ``voice-agent lint-prompts`` does,
    against the deployment in use (blocking: reads files).

    Raises:
        CatalogueRefusedError: with the loader's message, every tone problem, or the departments that do not match.
    """
    settings = state.settings
    try:
        catalogue = load_catalogue(settings.prompts_dir, settings.language)
    except PromptError as error:
        raise CatalogueRefusedError([str(error)]) from None
    problems = [str(problem) for problem in lint_catalogue(catalogue)]
    if problems:
        raise CatalogueRefusedError(problems)
    try:
        check_departments(state.targets, catalogue.departments, f"{settings.deployment_file} (read at start-up)")
    except DeploymentError as error:
        raise CatalogueRefusedError([f"{error}; departments change with a restart"]) from None
    return catalogue


def _reload_lock(app: FastAPI) -> asyncio.Lock:
    lock = getattr(app.state, "catalogue_reload_lock", None)
    if lock is None:
        lock = app.state.catalogue_reload_lock = asyncio.Lock()
    return lock


async def reload_catalogue(app: FastAPI) -> Reloaded:
    """Check the catalogue on disk and, if it passes, make it the one new calls get; one reload at a time.

    Returns when the new catalogue is in use, its fixed replies synthesised.

    Raises:
        CatalogueRefusedError: the catalogue failed a check; nothing changed.
        NotReadyError: the models are not loaded (start-up or shutdown).
    """
    async with _reload_lock(app):
        state: AppState = app.state.voice
        running: Running | None = getattr(app.state, "running", None)
        if running is None:
            raise NotReadyError("the models are not loaded yet (or any more): nothing to reload")
        catalogue = await asyncio.to_thread(checked_catalogue, state)
        services = running.services

        def prepare() -> tuple[DialogueEngine, PhraseCache]:
            # Training the intent classifier and synthesising new replies take a while: off the event loop.
            speech = preloaded_phrases(services.speech.synthesizer, catalogue, reuse=services.speech)
            return dialogue_engine(state.settings, catalogue), speech

        engine, speech = await asyncio.to_thread(prepare)
        # The lifespan may have ended while the replies were made.
        running = getattr(app.state, "running", None)
        if running is None:
            raise NotReadyError("the server shut down during the reload")
        new_state = dataclasses.replace(
            state, catalogue=catalogue, transfers=Transfers(state.targets, catalogue, state.transfers.redirector)
        )
        new_services = dataclasses.replace(running.services, engine=engine, speech=state.metrics.timed_speech(speech))
        # One step with no await in between: a request or call sees the old catalogue or the new one, never a mix.
        app.state.voice = new_state
        app.state.running = dataclasses.replace(running, services=new_services)
    reloaded = Reloaded(catalogue.language, len(catalogue.intents), len(fixed_replies(catalogue)))
    log.info(
        "catalogue reloaded from %s: %d intents, %d fixed replies ready",
        state.settings.prompts_dir,
        reloaded.intents,
        reloaded.fixed_replies,
    )
    return reloaded


async def reload_logged(app: FastAPI) -> bool:
    """`reload_catalogue` for a signal: the outcome is logged, never raised.

    Returns:
        True when the new catalogue is in use.
    """
    try:
        await reload_catalogue(app)
    except CatalogueRefusedError as refused:
        log.error("catalogue reload refused, the catalogue in use stays: %s", "; ".join(refused.problems))
        return False
    except NotReadyError as error:
        log.warning("catalogue reload skipped: %s", error)
        return False
    return True
