"""`BrowserSession`: a call from the browser, the wire side of its voice pipeline.

The pipeline speaks at `OUTPUT_SAMPLE_RATE_HZ`; its audio goes out as int16 binary messages, its marks and barge-in
``clear`` as JSON (`telephony.browser.protocol`). Unlike Twilio the page also hears about every decision, as it is
taken, and about the handover, before the socket closes. Everything else (serialised sends, playback generations,
the call record and its handoff, the end of the stream) is `telephony.session.CallSession`'s.
"""

from __future__ import annotations

import contextlib

import numpy as np
from starlette.websockets import WebSocketDisconnect

from telephony.browser import protocol
from telephony.session import CallSession
from voice.events import Decision
from voice.pipeline import TurnRecord


class BrowserSession(CallSession):
    """A call on the browser's WebSocket: 16 kHz int16 audio out, JSON marks, ``clear``, decisions and handover."""

    @property
    def sample_rate_hz(self) -> int:
        return protocol.OUTPUT_SAMPLE_RATE_HZ

    def _audio_messages(self, audio: np.ndarray) -> list[bytes]:
        return protocol.encode_audio(audio, protocol.OUTPUT_SAMPLE_RATE_HZ)

    def _mark_message(self, name: str) -> str:
        return protocol.mark(name)

    def _clear_message(self) -> str:
        return protocol.clear()

    def decided(self, record: TurnRecord) -> None:
        """Keep the record current (as for every call), and show the decision on the page before its reply plays."""
        super().decided(record)
        self.post(protocol.decision(len(self.pipeline.records), record))

    async def _before_closing(self, decision: Decision) -> None:
        # A page that went meanwhile needs no news; the socket is closed next either way.
        with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError):
            await self.send(protocol.handover(decision))
