"""Graceful drain: before the server stops, its live calls end or go to a person, and new calls go to a person.

`telephony.server.VoiceAgentServer` starts the drain on the first SIGTERM or SIGINT. From then on
``/twilio/voice`` answers new calls with the over-capacity message and a person, a media stream that starts is
refused as while loading, and ``/healthz`` answers 503 ``draining`` so that a load balancer stops sending calls.
Live calls go on until they end or are handed over, up to ``VOICE_AGENT_DRAIN_TIMEOUT_S``; then each remaining one
hears the technical-problem sentence and is handed to a person (`voice.pipeline.CallPipeline.hand_over_now`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from telephony.calls import CallRegistry
from voice.pipeline import CallPipeline

log = logging.getLogger(__name__)

DRAIN_REASON = "the server is restarting"
"""Why calls are turned away or handed over during a drain (in the records' reasons and the whisper)."""
HANDOVER_WAIT_S = 20.0
"""Longest wait, after the deadline, for the remaining calls' handovers (the sentence is ~8 s, plus a grace)."""
_POLL_S = 0.1


class Drain:
    """Whether this process is draining, and the pipelines of its live calls (to hand them over at the deadline).

    Used from the event loop only. Transports `add` each call's pipeline while it is live.
    """

    def __init__(self) -> None:
        self.draining = False
        self._pipelines: set[CallPipeline] = set()

    def add(self, pipeline: CallPipeline) -> None:
        """Count `pipeline` as a live call's, until `discard`."""
        self._pipelines.add(pipeline)

    def discard(self, pipeline: CallPipeline) -> None:
        self._pipelines.discard(pipeline)

    def holds(self, pipeline: CallPipeline) -> bool:
        """Whether `pipeline` is counted as a live call's (and would be handed over at the deadline)."""
        return pipeline in self._pipelines

    async def run(self, registry: CallRegistry, timeout_s: float, why: str = DRAIN_REASON) -> None:
        """Drain: take no new calls, wait for the live ones up to `timeout_s`, then hand the rest to a person.

        Returns once no call is live, or `HANDOVER_WAIT_S` after the handovers were asked for.
        """
        self.draining = True
        live = registry.live_count()
        log.warning("draining: %d live calls, up to %.0f s before they are handed to a person", live, timeout_s)
        if not await _until_no_call(registry, timeout_s):
            remaining = list(self._pipelines)
            log.warning("drain deadline: handing %d live calls to a person", len(remaining))
            handovers = asyncio.gather(*(pipeline.hand_over_now(why) for pipeline in remaining), return_exceptions=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(handovers, HANDOVER_WAIT_S)
        if registry.live_count():
            log.error("%d calls still live after their handover; stopping anyway", registry.live_count())
        else:
            log.info("drained: no live calls left")


async def _until_no_call(registry: CallRegistry, timeout_s: float) -> bool:
    """Wait until no call is live, at most `timeout_s`; whether none is."""
    deadline = time.monotonic() + timeout_s
    while registry.live_count() and time.monotonic() < deadline:
        await asyncio.sleep(min(_POLL_S, max(0.0, deadline - time.monotonic())))
    return registry.live_count() == 0
