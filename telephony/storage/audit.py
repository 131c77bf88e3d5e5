"""`AuditTrail`: who did what to callers' data and to access, and when, in the database.

Every reveal of a number, voicemail played, call-back done, export, deletion, purge, forgotten caller, account change
and desk login (refused ones too) is one event. Events hold names and call SIDs, never a number or a password; they
are kept for ``VOICE_AGENT_AUDIT_RETENTION_DAYS`` and deleted by the daily purge.
"""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from sqlalchemy import delete, select

from telephony.storage.store import CallStore, _iso
from telephony.storage.tables import AuditRow

MAX_EVENTS = 10_000
"""Events returned at most by one API read (the most recent); the command line reads them all."""


class AuditAction(StrEnum):
    LOGIN = "login"
    REVEAL_NUMBER = "reveal_number"
    PLAY_VOICEMAIL = "play_voicemail"
    CALLBACK_DONE = "callback_done"
    EXPORT = "export"
    DELETE_CALL = "delete_call"
    PURGE = "purge"
    FORGET_CALLER = "forget_caller"
    ACCOUNT_ADDED = "account_added"
    ACCOUNT_REMOVED = "account_removed"
    PASSWORD_SET = "password_set"


class AuditOutcome(StrEnum):
    OK = "ok"
    REFUSED = "refused"
    NOT_FOUND = "not_found"


class AuditEvent(BaseModel):
    """One event as the API, the command line and an export show it."""

    id: int
    at: str
    """ISO 8601, UTC."""
    actor: str
    action: str
    target: str | None
    outcome: str
    detail: dict[str, Any] | None
    address: str | None


def cli_actor() -> str:
    """Who runs the command line: ``cli:<operating-system user>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no name for this uid (a container)
        return "cli:unknown"


class AuditTrail:
    """The audit events in the call-record database."""

    def __init__(self, store: CallStore) -> None:
        self._store = store

    def record(
        self,
        actor: str,
        action: AuditAction,
        target: str | None = None,
        *,
        outcome: AuditOutcome = AuditOutcome.OK,
        detail: dict[str, Any] | None = None,
        address: str | None = None,
        at: datetime | None = None,
    ) -> None:
        """Add one event (blocking: from a thread on the server)."""
        with self._store.transaction() as session:
            session.add(
                AuditRow(
                    at=at or datetime.now(UTC),
                    actor=actor[:80],
                    action=action.value,
                    target=target[:128] if target else None,
                    outcome=outcome.value,
                    detail=detail,
                    address=address[:64] if address else None,
                )
            )

    def events(self, since: datetime | None = None, limit: int | None = MAX_EVENTS) -> list[AuditEvent]:
        """The events from `since` on (default: all kept), oldest first; at most `limit` (None: no limit), the most
        recent."""
        query = select(AuditRow).order_by(AuditRow.at.desc(), AuditRow.id.desc()).limit(limit)
        if since is not None:
            query = query.where(AuditRow.at >= since)
        with self._store.transaction() as session:
            rows = list(session.scalars(query))
        return [_event(row) for row in reversed(rows)]

    def purge(self, before: datetime) -> int:
        """Delete the events before `before`; returns how many."""
        with self._store.transaction() as session:
            return session.execute(delete(AuditRow).where(AuditRow.at < before)).rowcount


def _event(row: AuditRow) -> AuditEvent:
    return AuditEvent(
        id=row.id,
        at=_iso(row.at) or "",
        actor=row.actor,
        action=row.action,
        target=row.target,
        outcome=row.outcome,
        detail=row.detail,
        address=row.address,
    )
