"""Retention: call records and call-back requests older than the configured number of days are deleted, and audit
events older than theirs, daily while the server runs."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from telephony.storage.audit import AuditAction, AuditTrail
from telephony.storage.store import CallStore

log = logging.getLogger(__name__)

PURGE_INTERVAL_S = 24 * 3600.0
RETENTION_ACTOR = "retention"
"""Who the audit trail names for the daily purge."""


def cutoff(days: float, now: datetime | None = None) -> datetime:
    """The moment before which a call that ended is older than `days`."""
    return (now or datetime.now(UTC)) - timedelta(days=days)


def purge_older_than(store: CallStore, days: float, now: datetime | None = None) -> int:
    """Delete the calls that ended more than `days` ago, and the call-back requests made before then (their
    encrypted numbers with them); returns how many calls were deleted."""
    deleted = store.purge(cutoff(days, now))
    log.info("retention purge", extra={"deleted_calls": deleted, "older_than_days": days})
    return deleted


def purge_audit_older_than(audit: AuditTrail, days: float, now: datetime | None = None) -> int:
    """Delete the audit events older than `days`; returns how many."""
    deleted = audit.purge(cutoff(days, now))
    log.info("audit retention purge", extra={"deleted_events": deleted, "older_than_days": days})
    return deleted


def _purge_all(store: CallStore, days: float, audit: AuditTrail | None, audit_days: float | None) -> None:
    deleted = purge_older_than(store, days)
    if audit is None:
        return
    if deleted:
        audit.record(RETENTION_ACTOR, AuditAction.PURGE, detail={"deleted_calls": deleted, "older_than_days": days})
    if audit_days is not None:
        purge_audit_older_than(audit, audit_days)


async def purge_daily(
    store: CallStore,
    days: float,
    interval_s: float = PURGE_INTERVAL_S,
    *,
    audit: AuditTrail | None = None,
    audit_days: float | None = None,
) -> None:
    """Purge at once, then every `interval_s`, until cancelled; a failed purge is logged and tried next time.

    Args:
        audit: where a purge that deleted calls is recorded, and whose events older than `audit_days` are deleted.
    """
    while True:
        try:
            await asyncio.to_thread(_purge_all, store, days, audit, audit_days)
        except Exception:
            log.exception("retention purge failed; trying again at the next interval")
        await asyncio.sleep(interval_s)
