"""``GET /healthz``: 200 once the models are loaded and calls are taken; 503 ``{"status": "loading"}`` before, and
503 ``{"status": "draining", "live_calls": N}`` once a stop has begun (`telephony.drain`). When unsigned Twilio
requests are allowed (development only), a ready answer carries a ``warning`` that says so."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from telephony.state import RunningOrNoneDep, StateDep
from telephony.twilio.signature import UNSIGNED_WARNING

router = APIRouter()


@router.get("/healthz")
async def healthz(state: StateDep, running: RunningOrNoneDep) -> JSONResponse:
    live = state.registry.live_count()
    # Draining first: the lifespan's shutdown, which follows the drain, removes `Running` and is not "loading".
    if state.drain.draining:
        return JSONResponse({"status": "draining", "live_calls": live}, status_code=503)
    if running is None:
        return JSONResponse({"status": "loading"}, status_code=503)
    # The loop's task count lets a soak test see tasks that outlive their call (benchmarks/soak.py).
    body: dict[str, object] = {"status": "ok", "live_calls": live, "asyncio_tasks": len(asyncio.all_tasks())}
    if state.signatures.unsigned:
        body["warning"] = UNSIGNED_WARNING
    return JSONResponse(body)
