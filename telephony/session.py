"""The transport-neutral half of one call's session: what every transport does the same way around a `CallPipeline`.

A transport (`telephony.twilio`, `telephony.browser`) accepts a WebSocket, opens the call in the `CallRegistry` and
makes a subclass of `CallSession` that says what its wire looks like: the rate it plays, how audio, a mark and a
``clear`` are written. The rest is done here, once for every transport:

- sends are serialised (several tasks may speak at once: a reply, a barge-in ``clear``, a decision event);
- playback generations: after a ``clear`` the rest of an interrupted reply is not sent, but its mark still is, so
  the peer reports it back and the pipeline learns that the reply is over;
- the call's record is kept current for the desk and the database, and a transfer's handoff is made the moment it
  is decided;
- the handover records the outcome, lets the transport say what comes next (`_before_closing`), then closes our
  side of the stream;
- the end of the stream (`end`) stops the pipeline, records a call that was cut short as its failure and finishes
  the record.

Also here: the counters that /metrics exports for every transport's streams, and a WebSocket close that tolerates a
peer that already left.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from telephony.calls import CallInfo, CallRegistry
from voice.events import Action, Decision
from voice.handoff import build_handoff
from voice.pipeline import CallPipeline, TurnRecord, VoiceServices

log = logging.getLogger(__name__)

Message = str | bytes
"""One WebSocket message: text (JSON) or binary."""
Send = Callable[[Message], Awaitable[None]]
Close = Callable[[], Awaitable[None]]
Recorded = Callable[[CallInfo, CallPipeline], None]
"""Told of each turn as it is recorded (`telephony.call_limits.CallWatchdog.recorded` enforces the most exchanges)."""

CLOSE_NORMAL = 1000
CLOSE_PROTOCOL_ERROR = 1008
"""Policy violation: the peer broke the protocol."""
CLOSE_TRY_AGAIN_LATER = 1013
"""The server cannot take the call yet (its models are still loading)."""


@dataclass(slots=True)
class StreamCounters:
    """Process-wide counters of every transport's call streams, exported as metrics."""

    streams: int = 0
    protocol_errors: int = 0
    protocol_closes: int = 0


async def close_websocket(websocket: WebSocket, code: int) -> None:
    """Close our side with `code`, unless either side already did; never raises for a peer that just went."""
    # Nothing to close when either side already did (a caller hanging up closes the socket without a goodbye).
    if WebSocketState.DISCONNECTED in (websocket.application_state, websocket.client_state):
        return
    # The peer may go in the meantime (its close frame or a dropped connection not yet read): then it is closed.
    with contextlib.suppress(WebSocketDisconnect):
        await websocket.close(code=code)


def websocket_sender(websocket: WebSocket) -> Send:
    """A `Send` for `websocket`: text messages as text frames, bytes as binary frames."""

    async def send(message: Message) -> None:
        if isinstance(message, bytes):
            await websocket.send_bytes(message)
        else:
            await websocket.send_text(message)

    return send


class CallSession(abc.ABC):
    """One call's session, the `voice.pipeline.AgentOutput` of its pipeline; a transport subclasses it for its wire."""

    def __init__(
        self,
        info: CallInfo,
        services: VoiceServices,
        registry: CallRegistry,
        send: Send,
        close: Close,
        recorded: Recorded | None = None,
    ):
        """Make the call's pipeline (`start` it once the transport is ready).

        Args:
            info: the call, already opened in `registry`; its records become the pipeline's.
            send: sends one message to the peer.
            close: closes our side of the stream (after a handover).
            recorded: told of each turn as soon as it is recorded, before its reply is spoken.
        """
        self.info = info
        self._registry = registry
        self._recorded = recorded
        self._send_message = send
        self._close = close
        self._send_lock = asyncio.Lock()
        # Bumped by every `clear`: audio of an older generation is no longer sent.
        self._generation = 0
        # Messages posted from synchronous code (`post`), sent before anything sent after them.
        self._posted: list[Message] = []
        self._background: set[asyncio.Task[None]] = set()
        self.pipeline = CallPipeline(services, self, call_id=info.call_sid)
        info.records = self.pipeline.records

    # --- the wire: what a transport says ----------------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def sample_rate_hz(self) -> int:
        """The rate the pipeline speaks at: the rate the transport plays, so that it need not resample."""

    @abc.abstractmethod
    def _audio_messages(self, audio: np.ndarray) -> Iterable[Message]:
        """The messages that carry `audio` (mono float PCM in [-1.0, 1.0] at `sample_rate_hz`), in order."""

    @abc.abstractmethod
    def _mark_message(self, name: str) -> Message:
        """The message that asks the peer to report back once playback reaches this point."""

    @abc.abstractmethod
    def _clear_message(self) -> Message:
        """The message that tells the peer to drop the audio it has not played yet, and report its pending marks."""

    async def _before_closing(self, decision: Decision) -> None:  # noqa: B027 (a hook: most transports say nothing)
        """The call is handed over and its record finished: tell the peer what comes next, if the wire can."""

    # --- sending ----------------------------------------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        """Send one message, after every message posted or sent before it."""
        async with self._send_lock:
            posted, self._posted = self._posted, []
            for earlier in posted:
                await self._send_message(earlier)
            await self._send_message(message)

    def post(self, message: Message) -> None:
        """Send `message` from synchronous code: soon, and before anything `send` is asked to send after this."""
        self._posted.append(message)
        task = asyncio.get_running_loop().create_task(self._flush_posted())
        # Keep a reference until done: the loop holds tasks only weakly.
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _flush_posted(self) -> None:
        try:
            async with self._send_lock:
                posted, self._posted = self._posted, []
                for message in posted:
                    await self._send_message(message)
        except Exception as error:  # the peer went: what it would have been told no longer matters
            log.debug("posted message not sent: %r", error, extra={"call": self.info.call_sid})

    # --- AgentOutput ------------------------------------------------------------------------------------------------

    async def play(self, audio: np.ndarray, mark: str) -> None:
        """Send the audio, then the mark; stops sending audio (but still marks) once a `clear` was sent.

        Args:
            audio: mono float PCM in [-1.0, 1.0] at `sample_rate_hz`.
            mark: the mark's name, sent after the audio.
        """
        generation = self._generation
        for message in self._audio_messages(audio):
            if self._generation != generation:
                break
            await self.send(message)
        # Always sent: the peer reports it at once after a clear, which tells the pipeline the reply is over.
        await self.send(self._mark_message(mark))

    async def interrupt(self) -> None:
        """Barge-in: the peer drops what it buffered and reports the pending marks."""
        self._generation += 1
        await self.send(self._clear_message())

    def decided(self, record: TurnRecord) -> None:
        """Keep the call's record current; on a transfer, make the handoff at once (the desk shows it live)."""
        decision = record.decision
        if decision.action is Action.TRANSFER:
            exchanges = [(r.caller, r.decision) for r in self.pipeline.records]
            self.info.handoff = build_handoff(
                self.pipeline.catalogue, self.info.call_sid, exchanges, decision, self.info.caller_number
            )
        self._registry.publish(self.info.call_sid)
        if self._recorded is not None:
            self._recorded(self.info, self.pipeline)

    async def hand_over(self, decision: Decision) -> None:
        """Record the outcome, let the transport say what comes next, and close our side of the stream."""
        self.info.failure = self.pipeline.failure
        self._registry.finish(self.info.call_sid, decision)
        log.info(
            "handing over",
            extra={"call": self.info.call_sid, "action": decision.action.value, "department": decision.department},
        )
        await self._before_closing(decision)
        await self._close()

    # --- the end ----------------------------------------------------------------------------------------------------

    async def end(self, cut_short: str | None) -> None:
        """The stream ended: stop the pipeline and finish the call's record.

        Args:
            cut_short: why the stream ended early (the connection was lost, the peer broke the protocol), recorded as
                the call's failure unless the call was handed over or already failed; None when the peer ended it
                as its protocol says.
        """
        handed_over = self.pipeline.finished
        await self.pipeline.close()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if cut_short is not None and not handed_over and self.info.failure is None:
            self.info.failure = cut_short
            log.warning("call cut short: %s", cut_short, extra={"call": self.info.call_sid})
        self._registry.finish(self.info.call_sid)
        log.info("call stream ended", extra={"call": self.info.call_sid})
