"""`CallStore`: call records in the database, as `telephony.call_record.CallRecord` in and out.

Blocking (SQLAlchemy's synchronous engine): the server calls it from a thread (`telephony.storage.writer`), the
command line directly. SQLite by default, PostgreSQL when the URL says so; `migrate` brings the schema up to date.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, delete, event, func, select, update
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from telephony.call_record import (
    CallerTurn,
    CallRecord,
    CallSummary,
    DecisionView,
    HandoffView,
    LatencyView,
    Outcome,
    TransferEventView,
    TurnView,
)
from telephony.calls import CallState
from telephony.settings import Settings
from telephony.storage.private_files import PRIVATE_DIR_MODE, private_dir, private_file
from telephony.storage.tables import CallbackRow, CallRow, InstanceRow, TurnRow

log = logging.getLogger(__name__)

DEFAULT_DATABASE_FILE = "calls.sqlite3"
"""The embedded database's file name inside the data directory."""


class StorageError(ValueError):
    """The database URL is unusable; the message says why (never the password)."""


def default_database_url(data_dir: Path) -> str:
    """The embedded SQLite file in `data_dir`."""
    return f"sqlite:///{(data_dir / DEFAULT_DATABASE_FILE).resolve()}"


def _enable_sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    # SQLite ignores ON DELETE CASCADE unless asked per connection: a purged call must take its turns with it.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


POSTGRESQL_DRIVER = "postgresql+psycopg"
"""The PostgreSQL driver installed with the server (psycopg 3)."""
# What hosting providers and libpq hand out: the same database, with SQLAlchemy's default driver (psycopg2) not
# installed here.
_POSTGRESQL_ALIASES = frozenset({"postgres", "postgresql"})


def sqlalchemy_url(url: str) -> URL:
    """A database URL as SQLAlchemy opens it: ``postgres://`` and ``postgresql://`` use psycopg 3.

    Raises:
        StorageError: the text is not a database URL.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # the parser's message may quote the URL, password and all
        raise StorageError(
            "VOICE_AGENT_DATABASE_URL is not a database URL such as postgresql://user:password@host:5432/calls"
        ) from None
    if parsed.drivername in _POSTGRESQL_ALIASES:
        return parsed.set(drivername=POSTGRESQL_DRIVER)
    return parsed


def _create_engine(url: str) -> Engine:
    parsed = sqlalchemy_url(url)
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StorageError(
            f"{shown}: only sqlite:/// and postgresql:// (also postgres://, postgresql+psycopg://) databases are "
            "supported"
        )
    try:
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database or ""
            if database and database != ":memory:":
                # Callers' data: the file is the service user's only (a folder we make too; SQLite's journal files
                # take the database file's permissions).
                Path(database).parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
                private_file(Path(database))
            engine = create_engine(parsed)
            event.listen(engine, "connect", _enable_sqlite_foreign_keys)
            return engine
        # pre_ping: a PostgreSQL restart must not turn the next write into an error.
        return create_engine(parsed, pool_pre_ping=True)
    except NoSuchModuleError as error:
        raise StorageError(f"{shown}: {error}; use postgresql+psycopg:// (psycopg is installed)") from None


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite gives back naive datetimes; they were stored in UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _parse(moment: str | None) -> datetime | None:
    return datetime.fromisoformat(moment) if moment else None


class CallStore:
    """Call records in one database."""

    def __init__(self, url: str) -> None:
        """Connect (lazily: nothing is opened until the first query).

        Raises:
            StorageError: the URL is malformed or names an unsupported database or driver.
        """
        self.engine = _create_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> CallStore:
        """``VOICE_AGENT_DATABASE_URL``, else the embedded SQLite file in the data directory (made private)."""
        if not settings.database_url:
            private_dir(settings.data_dir)
        return cls(settings.database_url or default_database_url(settings.data_dir))

    @property
    def url(self) -> str:
        """The database URL with any password hidden: safe to log."""
        return self.engine.url.render_as_string(hide_password=True)

    def migrate(self) -> None:
        """Bring the schema up to the newest migration (creates the tables in a new database).

        Raises:
            StorageError: the database cannot be reached or opened.
        """
        from telephony.storage.migrations import upgrade_to_head  # Alembic loads only when needed

        try:
            upgrade_to_head(self.engine)
        except OperationalError as error:
            # The driver's message names host and reason, never the password.
            raise StorageError(f"cannot open the call-record database {self.url}: {error.orig}") from None

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def transaction(self) -> AbstractContextManager[Session]:
        """One unit of work, committed when the block ends (rolled back on an error); for the other tables' stores
        (`telephony.storage.callbacks`, `accounts`, `audit`), which share this database."""
        return self._session()

    # --- writing -----------------------------------------------------------------------------------------------

    def save(self, record: CallRecord, caller_key: str | None = None, owner_id: str | None = None) -> None:
        """Insert or replace one call's record (turns included).

        Args:
            owner_id: the server instance that runs the call (`heartbeat`), kept with the record.
        """
        with self._session() as session:
            row = session.get(CallRow, record.call_sid, options=[selectinload(CallRow.turns)])
            if row is None:
                row = CallRow(call_sid=record.call_sid)
                session.add(row)
            _fill_call(row, record, caller_key)
            if owner_id is not None:
                row.owner_id = owner_id
            # Turns only grow, but an earlier one may have been revised (its redaction completed by a later turn).
            existing = {turn.position: turn for turn in row.turns}
            for position, view in enumerate(record.turns):
                turn = existing.get(position)
                if turn is None:
                    turn = TurnRow(call_sid=record.call_sid, position=position)
                    row.turns.append(turn)
                _fill_turn(turn, view)
            for position in range(len(record.turns), len(row.turns)):
                session.delete(existing[position])

    def note_transfer(
        self,
        call_sid: str,
        *,
        transfer_status: str | None = None,
        callback_requested: bool | None = None,
        message_recording_sid: str | None = None,
    ) -> bool:
        """Record what Twilio reported after the transfer (on an instance that did not run the stream); False when
        the call is unknown."""
        with self._session() as session:
            row = session.get(CallRow, call_sid)
            if row is None:
                return False
            if transfer_status is not None:
                row.transfer_status = transfer_status
            if callback_requested is not None:
                row.callback_requested = callback_requested
            if message_recording_sid is not None:
                row.message_recording_sid = message_recording_sid
            return True

    def add_transfer_event(self, call_sid: str, event: TransferEventView) -> bool:
        """Add a step of the transfer to a stored call (reported to an instance that did not run the stream); False
        when the call is unknown."""
        with self._session() as session:
            row = session.get(CallRow, call_sid)
            if row is None:
                return False
            # A new list: the JSON column notices assignment, not changes inside the list.
            row.transfer_timeline = [*(row.transfer_timeline or []), event.model_dump(mode="json")]
            return True

    # A call's call-back request (and the encrypted number in it) goes with the call, in the same transaction.
    def delete_call(self, call_sid: str) -> bool:
        """Delete one call and its call-back request; False when there was neither."""
        with self._session() as session:
            callbacks = session.execute(delete(CallbackRow).where(CallbackRow.call_sid == call_sid)).rowcount
            return session.execute(delete(CallRow).where(CallRow.call_sid == call_sid)).rowcount + callbacks > 0

    def delete_caller(self, caller_key: str) -> int:
        """Delete every call and call-back request of one caller (by `telephony.storage.pseudonyms` key); returns how
        many calls."""
        with self._session() as session:
            session.execute(delete(CallbackRow).where(CallbackRow.caller_key == caller_key))
            return session.execute(delete(CallRow).where(CallRow.caller_key == caller_key)).rowcount

    def purge(self, ended_before: datetime) -> int:
        """Delete the calls that ended (or, never finished, started) before `ended_before`, and the call-back requests
        made before it; returns how many calls."""
        ended = func.coalesce(CallRow.ended_at, CallRow.started_at)
        with self._session() as session:
            session.execute(delete(CallbackRow).where(CallbackRow.requested_at < ended_before))
            return session.execute(delete(CallRow).where(ended < ended_before)).rowcount

    # --- the instances that own live calls --------------------------------------------------------------------

    def heartbeat(self, owner_id: str, now: datetime | None = None) -> None:
        """Say that the instance `owner_id` is alive (registering it on the first call)."""
        now = now or datetime.now(UTC)
        with self._session() as session:
            row = session.get(InstanceRow, owner_id)
            if row is None:
                session.add(InstanceRow(owner_id=owner_id, started_at=now, heartbeat_at=now))
            else:
                row.heartbeat_at = now

    def retire(self, owner_id: str) -> None:
        """The instance stops cleanly (its calls are finished): forget it."""
        with self._session() as session:
            session.execute(delete(InstanceRow).where(InstanceRow.owner_id == owner_id))

    def finish_orphaned(self, alive_since: datetime, failure: str, now: datetime | None = None) -> list[str]:
        """Finish the records left live by instances without a heartbeat since `alive_since` (a process that died:
        killed, or its machine lost), with `failure` as why; forget those instances.

        Returns:
            The call SIDs finished.
        """
        now = now or datetime.now(UTC)
        alive = select(InstanceRow.owner_id).where(InstanceRow.heartbeat_at >= alive_since)
        orphaned = (CallRow.state == CallState.LIVE.value) & (
            CallRow.owner_id.is_(None) | CallRow.owner_id.not_in(alive)
        )
        with self._session() as session:
            sids = list(session.scalars(select(CallRow.call_sid).where(orphaned)))
            if sids:
                session.execute(
                    update(CallRow)
                    .where(CallRow.call_sid.in_(sids))
                    .values(
                        state=CallState.FINISHED.value, ended_at=now, failure=func.coalesce(CallRow.failure, failure)
                    )
                )
            session.execute(delete(InstanceRow).where(InstanceRow.heartbeat_at < alive_since))
        return sids

    # --- reading -----------------------------------------------------------------------------------------------

    def get(self, call_sid: str) -> CallRecord | None:
        with self._session() as session:
            row = session.get(CallRow, call_sid, options=[selectinload(CallRow.turns)])
            return None if row is None else _record(row)

    def exists(self, call_sid: str) -> bool:
        """Whether a record of the call is kept."""
        with self._session() as session:
            return session.get(CallRow, call_sid) is not None

    def summaries(self, limit: int = 500) -> list[CallSummary]:
        """The most recently started calls first."""
        with self._session() as session:
            rows = session.scalars(select(CallRow).order_by(CallRow.started_at.desc()).limit(limit))
            return [_summary(row) for row in rows]

    def count(self) -> int:
        with self._session() as session:
            return session.scalar(select(func.count()).select_from(CallRow)) or 0


def _fill_call(row: CallRow, record: CallRecord, caller_key: str | None) -> None:
    row.state = record.state.value
    row.started_at = _parse(record.started_at) or datetime.now(UTC)
    row.ended_at = _parse(record.ended_at)
    row.caller = record.caller
    if caller_key is not None:
        row.caller_key = caller_key
    row.intent = record.intent
    row.outcome_action = record.outcome.action if record.outcome else None
    row.outcome_department = record.outcome.department if record.outcome else None
    row.handoff = record.handoff.model_dump(mode="json") if record.handoff else None
    row.protocol_errors = record.protocol_errors
    row.failure = record.failure
    row.transfer_status = record.transfer_status
    row.callback_requested = record.callback_requested
    row.message_recording_sid = record.message_recording_sid
    row.transfer_timeline = [event.model_dump(mode="json") for event in record.transfer_timeline] or None


def _fill_turn(row: TurnRow, view: TurnView) -> None:
    caller = view.caller
    row.caller_kind = caller.kind if caller else None
    row.caller_text = caller.text if caller else None
    row.caller_confidence = caller.confidence if caller else None
    row.caller_start_ms = caller.start_ms if caller else None
    row.caller_end_ms = caller.end_ms if caller else None
    row.caller_digit = caller.digit if caller else None
    decision = view.decision
    row.intent = decision.intent
    row.confidence = decision.confidence
    row.action = decision.action
    row.rule = decision.rule
    row.reply = decision.reply
    row.reasons = list(decision.reasons)
    row.department = decision.department
    row.transfer_reason = decision.transfer_reason
    row.processing_ms = view.processing_ms
    row.heard = view.heard
    row.interrupted = view.interrupted
    row.latency = view.latency.model_dump(mode="json") if view.latency is not None else None


def _summary(row: CallRow) -> CallSummary:
    started = _iso(row.started_at) or ""
    ended = _iso(row.ended_at)
    duration = (_parse(ended) - _parse(started)).total_seconds() if ended else 0.0
    return CallSummary(
        call_sid=row.call_sid,
        state=CallState(row.state),
        started_at=started,
        ended_at=ended,
        duration_s=round(max(0.0, duration), 1),
        intent=row.intent,
        outcome=Outcome(action=row.outcome_action, department=row.outcome_department) if row.outcome_action else None,
        has_handoff=row.handoff is not None,
        transfer_state=row.transfer_timeline[-1]["state"] if row.transfer_timeline else None,
    )


def _turn(row: TurnRow) -> TurnView:
    caller = None
    if row.caller_kind is not None:
        caller = CallerTurn(
            kind=row.caller_kind,
            text=row.caller_text,
            confidence=row.caller_confidence,
            start_ms=row.caller_start_ms,
            end_ms=row.caller_end_ms,
            digit=row.caller_digit,
        )
    return TurnView(
        caller=caller,
        decision=DecisionView(
            intent=row.intent,
            confidence=row.confidence,
            action=row.action,
            reply=row.reply,
            rule=row.rule,
            reasons=list(row.reasons),
            department=row.department,
            transfer_reason=row.transfer_reason,
        ),
        processing_ms=row.processing_ms,
        heard=row.heard,
        interrupted=row.interrupted,
        latency=LatencyView.model_validate(row.latency) if row.latency is not None else None,
    )


def _record(row: CallRow) -> CallRecord:
    return CallRecord(
        **_summary(row).model_dump(),
        caller=row.caller,
        turns=[_turn(turn) for turn in row.turns],
        handoff=HandoffView.model_validate(row.handoff) if row.handoff is not None else None,
        protocol_errors=row.protocol_errors,
        failure=row.failure,
        transfer_status=row.transfer_status,
        callback_requested=row.callback_requested,
        message_recording_sid=row.message_recording_sid,
        transfer_timeline=[TransferEventView.model_validate(event) for event in row.transfer_timeline or []],
    )
