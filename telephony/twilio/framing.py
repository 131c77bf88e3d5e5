"""Cutting mu-law audio into the 20 ms frames that Twilio Media Streams send and expect.

Twilio sends inbound audio as 160-byte frames (20 ms at 8 kHz, one mu-law byte per sample) and plays whatever we
send in order. Sending whole 20 ms frames keeps our bookkeeping (marks, elapsed playback) in step with Twilio's.
The voice pipeline speaks float PCM at the rate this transport asks for (`TWILIO_SAMPLE_RATE_HZ`); cutting it into
frames and encoding it happen here, at the edge. This module knows the audio format only; it has no JSON, base64
or stream SIDs.
"""

from __future__ import annotations

import numpy as np

from telephony.twilio.mulaw import MULAW_SILENCE, float32_to_mulaw
from voice.resample import resample

TWILIO_SAMPLE_RATE_HZ = 8000
"""Sample rate of Twilio Media Streams audio, in Hz."""
FRAME_MS = 20
"""Duration of one Twilio media frame, in milliseconds."""
FRAME_BYTES = TWILIO_SAMPLE_RATE_HZ * FRAME_MS // 1000
"""Bytes in one frame: 160 mu-law samples."""


def _pad_frame(data: bytes | bytearray) -> bytes:
    return bytes(data) + bytes([MULAW_SILENCE]) * (FRAME_BYTES - len(data))


class FrameAssembler:
    """Collects mu-law byte chunks of any length and hands out complete 160-byte frames.

    Bytes that do not fill a frame yet are kept for the next chunk, so frame boundaries do not depend on how the
    audio was chunked. One assembler per stream of audio.
    """

    def __init__(self) -> None:
        """Start with nothing pending."""
        self._pending = bytearray()

    @property
    def pending_bytes(self) -> int:
        """Bytes held back because they do not fill a frame yet (0..159)."""
        return len(self._pending)

    def push(self, chunk: bytes) -> list[bytes]:
        """Add a chunk and take the frames it completes.

        The frames come as a list rather than a generator, so the chunk is consumed even when the caller does not
        iterate over the result.

        Args:
            chunk: mu-law bytes, any length (empty is fine); any bytes-like object.

        Returns:
            The completed frames, each exactly `FRAME_BYTES` long, in order; empty when no frame was completed.
        """
        self._pending += chunk
        complete_bytes = len(self._pending) - len(self._pending) % FRAME_BYTES
        frames = [bytes(self._pending[start : start + FRAME_BYTES]) for start in range(0, complete_bytes, FRAME_BYTES)]
        del self._pending[:complete_bytes]
        return frames

    def flush(self, pad: bool = True) -> list[bytes]:
        """Take what is left as a last frame, and start over empty.

        Args:
            pad: fill the last frame up to `FRAME_BYTES` with mu-law silence, so Twilio gets whole frames; with
                False the remainder is returned as it is, shorter than a frame.

        Returns:
            One frame when bytes were pending, otherwise an empty list.
        """
        if not self._pending:
            return []
        last = _pad_frame(self._pending) if pad else bytes(self._pending)
        self._pending.clear()
        return [last]

    def reset(self) -> None:
        """Drop pending bytes, for example when playback is cleared on barge-in."""
        self._pending.clear()


def pcm_to_twilio_frames(samples: np.ndarray, sample_rate_hz: int) -> list[bytes]:
    """Turn a whole piece of float audio, such as one synthesised sentence, into Twilio media frames.

    Resamples to 8 kHz (anti-aliased), converts to 16-bit PCM with clipping, encodes to mu-law and cuts 160-byte
    frames, padding the last one with silence. Each call stands alone: consecutive calls each end on a frame
    boundary, so up to 20 ms of silence is added per call. For one continuous signal in pieces, use
    `voice.resample.StreamResampler` and `FrameAssembler` instead. Audio already at `TWILIO_SAMPLE_RATE_HZ` (what
    the voice pipeline plays to a `CallSession`) is encoded as it is.

    Args:
        samples: 1-D float audio (float32 or float64), nominally in [-1.0, 1.0].
        sample_rate_hz: sample rate of `samples`, in Hz (Piper's voices use 22050).

    Returns:
        Frames of exactly `FRAME_BYTES` mu-law bytes, in order; empty for empty input.

    Raises:
        TypeError: `samples` is not a floating-point array.
        ValueError: `samples` is not 1-D, or `sample_rate_hz` is not a positive integer.
    """
    encoded = float32_to_mulaw(resample(samples, sample_rate_hz, TWILIO_SAMPLE_RATE_HZ))
    frames = [encoded[start : start + FRAME_BYTES] for start in range(0, len(encoded), FRAME_BYTES)]
    if frames and len(frames[-1]) < FRAME_BYTES:
        frames[-1] = _pad_frame(frames[-1])
    return frames
