"""Retention: call records older than the configured number of days are deleted, daily while the server runs."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from telephony.storage.store import CallStore

log = logging.getLogger(__name__)

PURGE_INTERVAL_S = 24 * 3600.0


def cutoff(days: float, now: datetime | None = None) -> datetime:
    """The moment before which a call that ended is older than `days`."""
    return (now or datetime.now(UTC)) - timedelta(days=days)


def purge_older_than(store: CallStore, days: float, now: datetime | None = None) -> int:
    """Delete the calls that ended more than `days` ago; returns how many were deleted."""
    deleted = store.purge(cutoff(days, now))
    log.info("retention purge", extra={"deleted_calls": deleted, "older_than_days": days})
    return deleted


async def purge_daily(store: CallStore, days: float, interval_s: float = PURGE_INTERVAL_S) -> None:
    """Purge at once, then every `interval_s`, until cancelled; a failed purge is logged and tried next time."""
    while True:
        try:
            await asyncio.to_thread(purge_older_than, store, days)
        except Exception:
            log.exception("retention purge failed; trying again at the next interval")
        await asyncio.sleep(interval_s)
