"""What every transport's stream does the same way around a call when its peer misbehaves or goes.

Malformed messages are counted on the call and in the metrics, the first logged and the rest summed up at the end
(a flood must not flood the log); a broken protocol closes the stream with why, which becomes the call's failure;
and the end stops the call's session, finishes its record and closes our side. Used by the Twilio media stream
(`telephony.twilio.media_stream`) and the browser call (`telephony.browser.call`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from starlette.websockets import WebSocket, WebSocketDisconnect

from telephony.calls import CallInfo
from telephony.drain import Drain
from telephony.session import CLOSE_NORMAL, CLOSE_PROTOCOL_ERROR, CallSession, StreamCounters, close_websocket

log = logging.getLogger(__name__)


class StreamGuard:
    """One stream's protocol bookkeeping and its end."""

    def __init__(self, websocket: WebSocket, counters: StreamCounters, name: str, cut_short: str) -> None:
        """
        Args:
            name: what the stream is called in logs and failures ("media stream", "browser call").
            cut_short: the call's failure when the stream ends without the peer saying goodbye.
        """
        self._websocket = websocket
        self._counters = counters
        self._name = name
        self._ignored = 0
        self.cut_short: str | None = cut_short
        """Why the stream ended early, if it did: the call's failure unless it was handed over or ended by the peer."""
        self.session: CallSession | None = None
        """The call's session, once the stream has started one."""

    def call_id(self) -> str:
        """The call's id for log lines; "-" before the call is opened."""
        return self.session.info.call_sid if self.session is not None else "-"

    def ended_by_peer(self) -> None:
        """The peer ended the stream as the protocol says (or was turned away, and told): not a failure."""
        self.cut_short = None

    def malformed(self, why: str) -> None:
        """A message that breaks the protocol in a way the call survives: counted and ignored."""
        self._ignored += 1
        self._counters.protocol_errors += 1
        if self.session is not None:
            self.session.info.protocol_errors += 1
        if self._ignored == 1:
            log.warning("malformed %s message ignored: %s", self._name, why, extra={"call": self.call_id()})

    async def refuse(self, why: str, tell: Callable[[str], str] | None = None) -> None:
        """Close the stream for breaking the protocol; `why` becomes the call's failure.

        Args:
            tell: the text message that tells the peer why first, if its protocol has one.
        """
        self.cut_short = f"{self._name} closed for breaking the protocol: {why}"
        self._counters.protocol_closes += 1
        log.warning("closing %s: %s", self._name, why, extra={"call": self.call_id()})
        if tell is not None:
            with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError):  # the peer may be gone already
                await self._websocket.send_text(tell(why))
        await close_websocket(self._websocket, CLOSE_PROTOCOL_ERROR)

    async def finish(self, drain: Drain | None) -> CallInfo | None:
        """The stream is over: stop the call and finish its record (with `cut_short` as its failure, if set), and
        close our side.

        Returns:
            The call's record; None when no call was opened on this stream.
        """
        if self._ignored > 1:
            log.warning(
                "%d malformed %s messages ignored on this stream",
                self._ignored,
                self._name,
                extra={"call": self.call_id()},
            )
        session = self.session
        if session is not None:
            if drain is not None:
                drain.discard(session.pipeline)
            await session.end(self.cut_short)
        await close_websocket(self._websocket, CLOSE_NORMAL)
        return session.info if session is not None else None
