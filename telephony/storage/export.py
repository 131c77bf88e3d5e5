"""The auditor's export of one call: its whole stored record as JSON, with when and under which policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from telephony.call_record import CallRecord

EXPORT_FORMAT = "voice-agent.call-record/1"


def export_document(record: CallRecord, retention_days: int, now: datetime | None = None) -> dict[str, Any]:
    """The record with its provenance: export time, retention period and when the record will be deleted."""
    moment = now or datetime.now(UTC)
    ended = datetime.fromisoformat(record.ended_at or record.started_at)
    return {
        "format": EXPORT_FORMAT,
        "exported_at": moment.isoformat(timespec="seconds"),
        "retention_days": retention_days,
        "deleted_after": (ended + timedelta(days=retention_days)).isoformat(timespec="seconds"),
        "record": record.model_dump(mode="json"),
    }
