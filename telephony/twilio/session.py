"""`TwilioSession`: one Twilio media stream, the wire side of a call's voice pipeline.

It writes the pipeline's output as Media Streams messages (``media``, ``mark``, ``clear``) for the right stream SID:
the pipeline plays float PCM at `TWILIO_SAMPLE_RATE_HZ`, which is encoded to mu-law and cut into 20 ms frames here.
What every transport does alike (serialised sends, playback generations, the call record, the handover and the end
of the stream) is `telephony.session.CallSession`'s. At the handover the stream is closed, so that Twilio requests
``/twilio/after-stream``; before closing it runs the app's hook, which writes the call record (another instance may
answer that request) and, in ``rest_redirect`` mode, gives the live call its transfer TwiML through Twilio's REST API
(`telephony.twilio.transfer`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator

import numpy as np

from telephony.calls import CallInfo, CallRegistry
from telephony.session import CallSession, Close, Recorded, Send
from telephony.twilio.framing import TWILIO_SAMPLE_RATE_HZ, pcm_to_twilio_frames
from telephony.twilio.messages import OutboundBuilder
from voice.events import Decision
from voice.pipeline import VoiceServices

# Gives the live call its after-stream TwiML through the REST API; False when it did not (the close then does).
Redirect = Callable[[CallInfo], Awaitable[bool]]


class TwilioSession(CallSession):
    """A call on a Twilio media stream: 8 kHz mu-law in 20 ms ``media`` messages, ``mark`` and ``clear``."""

    def __init__(
        self,
        info: CallInfo,
        services: VoiceServices,
        registry: CallRegistry,
        send: Send,
        close: Close,
        redirect: Redirect | None = None,
        recorded: Recorded | None = None,
    ) -> None:
        """Make the call's pipeline for the stream of `info` (`info.stream_sid` names it in every message).

        Args:
            send: sends one text message (Media Streams are JSON text only).
            redirect: in ``rest_redirect`` mode, gives a handed-over call its TwiML through the REST API.
            recorded: told of each turn as soon as it is recorded (the call's limits).
        """
        self._outbound = OutboundBuilder(info.stream_sid)
        self._redirect = redirect
        super().__init__(info, services, registry, send, close, recorded)

    @property
    def sample_rate_hz(self) -> int:
        """The pipeline speaks at Twilio's rate, so that only encoding and framing are left to do here."""
        return TWILIO_SAMPLE_RATE_HZ

    def _audio_messages(self, audio: np.ndarray) -> Iterator[str]:
        # 20 ms mu-law frames, the last one padded with silence.
        for frame in pcm_to_twilio_frames(audio, TWILIO_SAMPLE_RATE_HZ):
            yield self._outbound.media(frame)

    def _mark_message(self, name: str) -> str:
        return self._outbound.mark(name)

    def _clear_message(self) -> str:
        return self._outbound.clear()

    async def _before_closing(self, decision: Decision) -> None:
        # With a redirect (``rest_redirect`` mode) the call gets its TwiML through the REST API first; the stream is
        # closed either way, and after a redirect Twilio no longer asks the old <Connect> action.
        if self._redirect is not None:
            await self._redirect(self.info)
