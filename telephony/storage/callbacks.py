"""`CallbackQueue`: callers waiting for a person to call them back, with or without a voicemail.

The one place a caller's number is kept, and only encrypted (`telephony.storage.vault`): it is taken when the caller
chooses a call-back or leaves a message, revealed to a desk user on request (audited by the caller of `number`), and
deleted when the request is done, when it is older than the retention period, or when the caller is forgotten
(`CallStore.purge`, `delete_caller`, `delete_call`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy import select

from telephony.storage.store import CallStore, _iso
from telephony.storage.tables import CallbackRow
from telephony.storage.vault import NumberVault
from voice.handoff import mask_caller_number

MAX_LISTED = 500
"""Requests listed at most (the most recent)."""


class CallbackRequest(BaseModel):
    """One line of the desk's call-back queue: never the number itself."""

    call_sid: str
    requested_at: str
    """ISO 8601, UTC."""
    caller: str
    """The masked number (all but the last two digits), or "unknown"."""
    has_number: bool
    """A number can be revealed (False once done, or when the caller's number was withheld)."""
    intent: str | None
    department: str | None
    reason: str | None
    has_voicemail: bool
    done_at: str | None
    done_by: str | None


class CallbackQueue:
    """The call-back requests in the call-record database; numbers sealed with one vault."""

    def __init__(self, store: CallStore, vault: NumberVault) -> None:
        self._store = store
        self._vault = vault

    def request(
        self,
        call_sid: str,
        number: str | None,
        *,
        caller_key: str | None,
        intent: str | None = None,
        department: str | None = None,
        reason: str | None = None,
        recording_sid: str | None = None,
        now: datetime | None = None,
    ) -> None:
        """Add the call's request, or complete it (a voicemail after the choice): one request per call."""
        with self._store.transaction() as session:
            row = session.get(CallbackRow, call_sid)
            if row is None:
                row = CallbackRow(call_sid=call_sid, requested_at=now or datetime.now(UTC))
                session.add(row)
            if row.done_at is None and number:
                row.number_encrypted = self._vault.seal(number)
            if number or row.caller is None:
                row.caller = mask_caller_number(number)
            if caller_key is not None:
                row.caller_key = caller_key
            row.intent = intent if intent is not None else row.intent
            row.department = department if department is not None else row.department
            row.reason = reason if reason is not None else row.reason
            if recording_sid is not None:
                row.recording_sid = recording_sid

    def requests(self, include_done: bool = False, limit: int = MAX_LISTED) -> list[CallbackRequest]:
        """Open requests, oldest first (the longest waiting on top); with `include_done`, the done ones too."""
        query = select(CallbackRow).order_by(CallbackRow.requested_at).limit(limit)
        if not include_done:
            query = query.where(CallbackRow.done_at.is_(None))
        with self._store.transaction() as session:
            return [_request(row) for row in session.scalars(query)]

    def get(self, call_sid: str) -> CallbackRequest | None:
        with self._store.transaction() as session:
            row = session.get(CallbackRow, call_sid)
            return None if row is None else _request(row)

    def number(self, call_sid: str) -> str | None:
        """The caller's number in clear, for a desk user about to call back; None when there is none (any more).

        Raises:
            telephony.storage.vault.VaultError: it was sealed with another key.
        """
        with self._store.transaction() as session:
            row = session.get(CallbackRow, call_sid)
            sealed = row.number_encrypted if row is not None else None
        return self._vault.open(sealed) if sealed is not None else None

    def recording_sid(self, call_sid: str) -> str | None:
        """The voicemail's recording SID at Twilio, if the caller left one."""
        with self._store.transaction() as session:
            row = session.get(CallbackRow, call_sid)
            return row.recording_sid if row is not None else None

    def done(self, call_sid: str, by: str, now: datetime | None = None) -> bool:
        """Mark the request done by `by`; its number is deleted (no longer needed). False when there is none."""
        with self._store.transaction() as session:
            row = session.get(CallbackRow, call_sid)
            if row is None:
                return False
            if row.done_at is None:
                row.done_at = now or datetime.now(UTC)
                row.done_by = by[:80]
            row.number_encrypted = None
            return True


def _request(row: CallbackRow) -> CallbackRequest:
    return CallbackRequest(
        call_sid=row.call_sid,
        requested_at=_iso(row.requested_at) or "",
        caller=row.caller,
        has_number=row.number_encrypted is not None,
        intent=row.intent,
        department=row.department,
        reason=row.reason,
        has_voicemail=row.recording_sid is not None,
        done_at=_iso(row.done_at),
        done_by=row.done_by,
    )
