"""`RecordWriter`: keeps the database in step with the live calls, off the event loop.

It listens to `telephony.calls.CallRegistry` (every decision, handoff, webhook update and end), remembers which
calls changed, and writes each one's masked `CallRecord` from a single background task through a worker thread:
writes for one call stay in order, a burst of changes to one call costs one write, and a slow or failing database
never delays the audio. A failed write is logged and retried; nothing is dropped while the server runs.
"""

from __future__ import annotations

import asyncio
import logging

from telephony.call_record import call_record
from telephony.calls import CallRegistry
from telephony.storage.pseudonyms import CallerPseudonyms
from telephony.storage.store import CallStore

log = logging.getLogger(__name__)

RETRY_DELAY_S = 2.0
"""Wait after a failed write (the database restarting, say) before trying again."""


class RecordWriter:
    """Writes changed calls to the store in the background; `flush` writes what is pending now."""

    def __init__(
        self, store: CallStore, registry: CallRegistry, pseudonyms: CallerPseudonyms, owner_id: str | None = None
    ) -> None:
        """Listen to `registry`; `owner_id` (`telephony.storage.instances`) is kept on every record written."""
        self._store = store
        self._owner_id = owner_id
        self._registry = registry
        self._pseudonyms = pseudonyms
        self._dirty: dict[str, None] = {}  # insertion-ordered set: oldest change first
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.writes = 0
        self.failures = 0
        registry.add_listener(self._changed)

    def _changed(self, call_sid: str) -> None:
        self._dirty[call_sid] = None
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="record-writer")

    async def stop(self) -> None:
        """Write what is pending, then stop."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.flush()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not await self.flush():
                await asyncio.sleep(RETRY_DELAY_S)
                self._wake.set()

    async def flush(self) -> bool:
        """Write every call that changed since its last write; False when a write failed (it stays pending)."""
        async with self._lock:
            while self._dirty:
                call_sid = next(iter(self._dirty))
                del self._dirty[call_sid]
                info = self._registry.get(call_sid)
                if info is None:  # dropped from memory; its last state was written when it finished
                    continue
                # Snapshot on the loop (the pipeline mutates the records), write in a thread.
                record = call_record(info)
                caller_key = self._pseudonyms.of(info.caller_number)
                try:
                    await asyncio.to_thread(self._store.save, record, caller_key, self._owner_id)
                except Exception:
                    self.failures += 1
                    log.exception("writing the call record failed; will retry", extra={"call": call_sid})
                    self._dirty.setdefault(call_sid, None)
                    return False
                self.writes += 1
        return True
