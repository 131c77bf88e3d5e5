"""Live records a dead process left behind: each server instance owns the calls it runs and says it is alive.

Every instance writes a heartbeat (`CallStore.heartbeat`) every VOICE_AGENT_INSTANCE_HEARTBEAT_S and keeps its id on
the records of its calls. At start-up and with each heartbeat, records still ``live`` whose owner has been silent for
`STALE_HEARTBEATS` heartbeats (killed with ``kill -9``, out of memory, its machine gone) are finished with
`SERVER_STOPPED`: with several instances sharing one database, only the calls of an instance that is gone.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta

from telephony.storage.store import CallStore

log = logging.getLogger(__name__)

SERVER_STOPPED = "the server stopped during the call"
"""The failure recorded on a call whose server process died while it was live."""
STALE_HEARTBEATS = 3
"""Missed heartbeats after which an instance counts as gone (one late heartbeat is not a death)."""


def new_owner_id() -> str:
    """A fresh id for this process: a restarted process is a new owner, and its predecessor's calls are orphans."""
    return uuid.uuid4().hex


def recover_orphaned(store: CallStore, owner_id: str, heartbeat_s: float) -> list[str]:
    """Say this instance is alive, then finish the live records of instances that are gone; their call SIDs."""
    now = datetime.now(UTC)
    store.heartbeat(owner_id, now)
    finished = store.finish_orphaned(now - timedelta(seconds=STALE_HEARTBEATS * heartbeat_s), SERVER_STOPPED, now)
    for call_sid in finished:
        log.warning("call left live by a stopped server finished: %s", SERVER_STOPPED, extra={"call": call_sid})
    return finished


async def keep_alive(store: CallStore, owner_id: str, heartbeat_s: float) -> None:
    """Heartbeat and recover every `heartbeat_s` until cancelled; a failure is logged and tried next time."""
    while True:
        await asyncio.sleep(heartbeat_s)
        try:
            await asyncio.to_thread(recover_orphaned, store, owner_id, heartbeat_s)
        except Exception:
            log.exception("heartbeat to the call-record database failed; trying again")
