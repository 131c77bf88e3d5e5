"""What one replayed call recorded: the replay's own log of it, and what the server recorded about it.

`qa.replay` fills a `CallLog` (with a `TurnLog` per caller turn) while the call runs and, afterwards, gets a
`ServerView` of the call's record: from the in-process app's registry, or from a running server's call API. Both are
the same `telephony.call_record.CallRecord`, masked as the API serves it, so `qa.report` reads one shape either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from qa.fixtures import PreparedCall, PreparedTurn
from qa.twilio_emulator import TwilioSide
from telephony.call_record import CallRecord, Outcome, TurnView


class EndedBy(StrEnum):
    """How the replayed call ended."""

    SERVER_CLOSED = "server_closed"
    """The server closed the socket (after a transfer or a goodbye, or on an error: see the close code)."""
    STOP_SENT = "stop_sent"
    """The script ran to its end and the replay sent `stop`, as Twilio does when the stream ends."""
    HUNG_UP = "hung_up"
    """The script's last turn hung up: the socket was closed without `stop`."""
    ERROR = "error"
    """The replay could not connect, or the connection broke."""


@dataclass(slots=True)
class TurnLog:
    """What happened to one caller turn, filled in while the call runs. Times in ms from the start of the stream:
    `*_ms` positions count 20 ms frames (they match the WAV); latencies are measured on the wall clock."""

    turn: PreparedTurn
    played: bool = False
    """False when the call had ended before this turn."""
    start_ms: int | None = None
    """Position of the turn's first frame, or of the key press."""
    end_ms: int | None = None
    """End of the turn's last frame."""
    voiced_start_ms: int | None = None
    """Position of the first voiced frame."""
    voiced_end_ms: int | None = None
    """End of the last voiced frame."""
    response_latency_ms: float | None = None
    """Last voiced frame (or the key press) sent -> first agent frame received after it."""
    barge_in_buffered_ms: int | None = None
    """Agent audio still buffered when the caller started speaking (or pressed the key); None when none was."""
    barge_in_clear_ms: float | None = None
    """First voiced frame (or key press) sent over buffered agent audio -> `clear` received."""
    note: str | None = None
    """Anything unexpected: no reply within `qa.replay.REPLY_TIMEOUT_S`, not played."""
    first_sent_s: float | None = None
    """Wall clock of the first voiced frame or the key press, in seconds from the start of the stream."""
    last_sent_s: float | None = None
    """Wall clock of the last voiced frame or the key press."""


@dataclass(frozen=True, slots=True)
class MarkLog:
    """One mark the server sent, and how its echo came about."""

    name: str
    at_ms: int
    """Position on the frame clock when it was echoed."""
    reached: bool
    """True when playback reached it (the audio before it was played out), False when a `clear` dropped it."""


@dataclass(slots=True)
class CallLog:
    """The client's record of one replayed call."""

    call: PreparedCall
    twilio: TwilioSide
    turns: list[TurnLog]
    started_at: str = ""
    """Wall-clock time the stream started, ISO 8601 UTC."""
    ended_by: EndedBy | None = None
    """How the call ended; None while it runs."""
    close_code: int | None = None
    """The WebSocket close code the server sent, if it closed."""
    detail: str | None = None
    """Why the call ended with an error."""
    duration_ms: int = 0
    greeting_first_audio_ms: float | None = None
    """Start sent -> first agent frame received."""
    agent_media_s: list[float] = field(default_factory=list)
    """Wall clock of every agent frame received, in seconds from the start of the stream."""
    clears_ms: list[float] = field(default_factory=list)
    """When each `clear` arrived."""
    agent_audio_ms: list[list[int]] = field(default_factory=list)
    """Stretches of agent audio played without a silent tick, as [start, end] on the frame clock."""
    marks: list[MarkLog] = field(default_factory=list)
    """Every mark echoed, in order."""
    marks_echoed: int = 0
    violations: int = 0
    violation_examples: list[str] = field(default_factory=list)
    caller_track: bytearray = field(default_factory=bytearray)
    """Mu-law, one frame per tick: what the caller sent."""
    agent_track: bytearray = field(default_factory=bytearray)
    """Mu-law, one frame per tick: what playback played (silence when nothing was buffered)."""
    frames_received: int = 0
    frames_played: int = 0
    frames_cleared: int = 0
    underruns: int = 0
    """Holes in an answer: playback ran dry and agent audio of the same answer came later (`PlaybackBuffer`)."""
    underrun_ms: int = 0
    longest_underrun_ms: int = 0

    @property
    def completed(self) -> bool:
        """The call ran to its end: the script finished, or the server closed the stream normally."""
        if self.ended_by is EndedBy.SERVER_CLOSED:
            return self.close_code == 1000
        return self.ended_by in (EndedBy.STOP_SENT, EndedBy.HUNG_UP)


@dataclass(frozen=True, slots=True)
class ServerView:
    """What the server recorded about one call: its call record, read in-process or from the call API."""

    source: str
    """Where it was read (`qa.expect.IN_PROCESS_DATA` or `qa.expect.CALL_API_DATA`), as the report names it."""
    records: tuple[TurnView, ...]
    """Every exchange of the call, greeting first."""
    outcome: Outcome | None
    """How the automated part ended (transfer or goodbye), if it did."""
    protocol_errors: int
    """Malformed messages the server received from the replay (should be 0: the replay speaks as Twilio does)."""
    failure: str | None
    """Why the pipeline gave up, if it did."""

    @classmethod
    def of_record(cls, record: CallRecord, source: str) -> ServerView:
        """The view of a call record, as `telephony.call_record.call_record` builds it and the call API serves it."""
        return cls(
            source=source,
            records=tuple(record.turns),
            outcome=record.outcome,
            protocol_errors=record.protocol_errors,
            failure=record.failure,
        )
