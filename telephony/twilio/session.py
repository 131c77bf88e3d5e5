"""`CallSession`: one Twilio media stream, the wire side of a call's voice pipeline.

It turns the pipeline's output into Media Streams messages (``media``, ``mark``, ``clear``) for the right stream
SID: the pipeline plays float PCM at `TWILIO_SAMPLE_RATE_HZ`, which is encoded to mu-law and cut into 20 ms frames
here. It serialises sends (several tasks may speak at once: a reply and a barge-in ``clear``), and closes the stream
when the call is handed over, so that Twilio requests ``/twilio/after-stream``. Before closing it runs the app's
hook, which writes the call record (another instance may answer that request) and, in ``rest_redirect`` mode, gives
the live call its transfer TwiML through Twilio's REST API (`telephony.twilio.transfer`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import numpy as np

from telephony.calls import CallInfo, CallRegistry
from telephony.twilio.framing import TWILIO_SAMPLE_RATE_HZ, pcm_to_twilio_frames
from telephony.twilio.messages import OutboundBuilder
from voice.events import Action, Decision
from voice.handoff import build_handoff
from voice.pipeline import CallPipeline, TurnRecord, VoiceServices

log = logging.getLogger(__name__)

SendText = Callable[[str], Awaitable[None]]
Close = Callable[[], Awaitable[None]]
# Gives the live call its after-stream TwiML through the REST API; False when it did not (the close then does).
Redirect = Callable[[CallInfo], Awaitable[bool]]


class CallSession:
    """Wire-side state of one call: outbound messages, playback generations and the handover."""

    def __init__(
        self,
        info: CallInfo,
        services: VoiceServices,
        registry: CallRegistry,
        send_text: SendText,
        close: Close,
        redirect: Redirect | None = None,
    ) -> None:
        self.info = info
        self._redirect = redirect
        self._registry = registry
        self._send_text = send_text
        self._close = close
        self._outbound = OutboundBuilder(info.stream_sid)
        self._send_lock = asyncio.Lock()
        # Bumped by every `clear`: frames of an older generation are no longer sent.
        self._generation = 0
        self.frames_sent = 0
        self.pipeline = CallPipeline(services, self, call_id=info.call_sid)
        info.records = self.pipeline.records

    async def _send(self, text: str) -> None:
        async with self._send_lock:
            await self._send_text(text)

    # --- AgentOutput ------------------------------------------------------------------------------------------------

    @property
    def sample_rate_hz(self) -> int:
        """The pipeline speaks at Twilio's rate, so that only encoding and framing are left to do here."""
        return TWILIO_SAMPLE_RATE_HZ

    async def play(self, audio: np.ndarray, mark: str) -> None:
        """Send the audio as 20 ms mu-law frames (the last one padded with silence), then the mark.

        Stops sending frames (but still marks) once a `clear` was sent.

        Args:
            audio: mono float PCM in [-1.0, 1.0] at `sample_rate_hz`.
            mark: the mark's name, sent after the frames.
        """
        generation = self._generation
        for frame in pcm_to_twilio_frames(audio, TWILIO_SAMPLE_RATE_HZ):
            if self._generation != generation:
                break
            await self._send(self._outbound.media(frame))
            self.frames_sent += 1
        # Always sent: Twilio echoes it at once after a clear, which tells the pipeline the reply is over.
        await self._send(self._outbound.mark(mark))

    async def interrupt(self) -> None:
        """Barge-in: Twilio drops what it buffered and returns the pending marks."""
        self._generation += 1
        await self._send(self._outbound.clear())

    def decided(self, record: TurnRecord) -> None:
        """Keep the call's record current; on a transfer, make the handoff at once (the desk shows it live)."""
        decision = record.decision
        if decision.action is Action.TRANSFER:
            exchanges = [(r.caller, r.decision) for r in self.pipeline.records]
            self.info.handoff = build_handoff(self.info.call_sid, exchanges, decision, self.info.caller_number)
        self._registry.publish(self.info.call_sid)

    async def hand_over(self, decision: Decision) -> None:
        """Record the outcome and close our side of the stream: Twilio then asks /twilio/after-stream.

        With a redirect (``rest_redirect`` mode) the call gets its TwiML through the REST API first; the stream is
        closed either way, and after a redirect Twilio no longer asks the old <Connect> action.
        """
        self.info.failure = self.pipeline.failure
        self._registry.finish(self.info.call_sid, decision)
        log.info(
            "handing over",
            extra={"call": self.info.call_sid, "action": decision.action.value, "department": decision.department},
        )
        if self._redirect is not None:
            await self._redirect(self.info)
        await self._close()
