"""The audit trail on the web: `record_audit` for the routes that act on callers' data or on access, and

GET /api/audit   admin: the audit events, oldest first (``?days=N`` for the last N days, ``?limit=``); the same as
                 ``voice-agent audit``
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Query, Request, Response

from telephony.storage.audit import MAX_EVENTS, AuditAction, AuditEvent, AuditOutcome
from telephony.web.auth import Role, require_role

log = logging.getLogger(__name__)


async def record_audit(
    request: Request,
    actor: str,
    action: AuditAction,
    target: str | None = None,
    outcome: AuditOutcome = AuditOutcome.OK,
    detail: dict[str, Any] | None = None,
) -> None:
    """Write one audit event with the request's client address (in a thread: the database blocks).

    Raises:
        Exception: the database refused the write; the action it records must then not be reported as done.
    """
    trail = request.app.state.voice.audit
    address = request.client.host if request.client else None
    await anyio.to_thread.run_sync(
        lambda: trail.record(actor, action, target, outcome=outcome, detail=detail, address=address)
    )


def _no_store(response: Response) -> None:
    response.headers["Cache-Control"] = "no-store"


router = APIRouter(
    prefix="/api",
    tags=["audit"],
    dependencies=[Depends(require_role(Role.ADMIN)), Depends(_no_store)],
    responses={
        401: {"description": "no valid token or desk session"},
        403: {"description": "needs the admin role"},
    },
)


@router.get("/audit", response_model=list[AuditEvent])
async def audit_events(
    request: Request,
    days: Annotated[float | None, Query(gt=0, le=3650, description="only the last DAYS days")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENTS)] = MAX_EVENTS,
) -> list[AuditEvent]:
    """Who revealed a number, played a voicemail, exported, deleted, purged, forgot a caller or logged in, and when."""
    since = datetime.now(UTC) - timedelta(days=days) if days is not None else None
    trail = request.app.state.voice.audit
    return await anyio.to_thread.run_sync(lambda: trail.events(since, limit))
