"""Live and recent calls in this process: their state and, once decided, how the stream should end.

`/twilio/after-stream` reads the outcome here when Twilio asks what to do after our side closed the stream.
Bounded: only the most recent finished calls are kept here; durable records are written to the database by
`telephony.storage.writer`, which listens to every change.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from telephony.transfer_timeline import TransferEvent
from voice.events import Decision
from voice.handoff import Handoff
from voice.pipeline import TurnRecord

MAX_FINISHED_CALLS = 1000
# Updates waiting for one slow subscriber (a desk tab in the background); beyond this the oldest are dropped.
_SUBSCRIBER_BACKLOG = 256


class CallState(StrEnum):
    LIVE = "live"
    FINISHED = "finished"


@dataclass(slots=True)
class CallInfo:
    """What this process knows about one call."""

    call_sid: str
    stream_sid: str
    started_at: float = field(default_factory=time.time)
    state: CallState = CallState.LIVE
    outcome: Decision | None = None
    """The decision that ended the automated part (transfer or goodbye), if any."""
    protocol_errors: int = 0
    """Malformed messages received on this call's stream."""
    records: list[TurnRecord] = field(default_factory=list)
    """Every exchange of the call (the pipeline's own list), greeting first."""
    failure: str | None = None
    """Why the automated conversation gave up, if it did (an ASR or TTS fault)."""
    caller_number: str | None = None
    """The caller's number as Twilio gave it (never logged; masked wherever it is shown)."""
    handoff: Handoff | None = None
    """Context for the person who takes the call, made when a transfer is decided."""
    transfer_status: str | None = None
    """How the transfer went, as Twilio reported it: DialCallStatus (completed, no-answer, busy, failed, canceled)
    or, for a queue, QueueResult (bridged, queue-full, ...)."""
    callback_requested: bool = False
    """Nobody took the transfer and the caller asked to be called back (or chose nothing)."""
    message_recording_sid: str | None = None
    """Nobody took the transfer and the caller left a message: Twilio's recording SID."""
    transfer_events: list[TransferEvent] = field(default_factory=list)
    """How the transfer went, step by step, as Twilio's webhooks reported it."""
    ended_at: float | None = None

    def add_transfer_event(self, event: TransferEvent) -> bool:
        """Add a step of the transfer; False (and nothing added) when it repeats the last one."""
        if event.same_step(self.transfer_events[-1] if self.transfer_events else None):
            return False
        self.transfer_events.append(event)
        return True


class CallRegistry:
    """Calls by call SID. Used from the event loop only, so no locking."""

    def __init__(self, max_finished: int = MAX_FINISHED_CALLS) -> None:
        self._calls: OrderedDict[str, CallInfo] = OrderedDict()
        self._max_finished = max_finished
        self._subscribers: set[asyncio.Queue[str]] = set()
        self._listeners: list[Callable[[str], None]] = []

    def open(self, call_sid: str, stream_sid: str, caller_number: str | None = None) -> CallInfo:
        info = CallInfo(call_sid=call_sid, stream_sid=stream_sid, caller_number=caller_number)
        self._calls[call_sid] = info
        self.publish(call_sid)
        return info

    def all(self) -> list[CallInfo]:
        """Every known call, most recently changed last."""
        return list(self._calls.values())

    def subscribe(self) -> asyncio.Queue[str]:
        """A queue that receives the call SID of every call that changes, until `unsubscribe`."""
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=_SUBSCRIBER_BACKLOG)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str]) -> None:
        self._subscribers.discard(queue)

    def add_listener(self, listener: Callable[[str], None]) -> None:
        """Call `listener(call_sid)` on every change, synchronously; unlike a subscription, nothing is dropped."""
        self._listeners.append(listener)

    def publish(self, call_sid: str) -> None:
        """Tell subscribers and listeners that `call_sid` changed (new decision, handoff, end)."""
        for listener in self._listeners:
            listener(call_sid)
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(call_sid)

    def get(self, call_sid: str) -> CallInfo | None:
        return self._calls.get(call_sid)

    def forget(self, call_sid: str) -> None:
        """Drop a call from memory (its record is being deleted); a live call is kept."""
        info = self._calls.get(call_sid)
        if info is not None and info.state is not CallState.LIVE:
            del self._calls[call_sid]

    def live_count(self) -> int:
        return sum(1 for info in self._calls.values() if info.state is CallState.LIVE)

    def finish(self, call_sid: str, outcome: Decision | None = None) -> None:
        info = self._calls.get(call_sid)
        if info is None:
            return
        if info.state is CallState.LIVE:
            info.ended_at = time.time()
        info.state = CallState.FINISHED
        if outcome is not None:
            info.outcome = outcome
        self._calls.move_to_end(call_sid)
        self.publish(call_sid)
        finished = [sid for sid, call in self._calls.items() if call.state is CallState.FINISHED]
        for sid in finished[: max(0, len(finished) - self._max_finished)]:
            del self._calls[sid]
