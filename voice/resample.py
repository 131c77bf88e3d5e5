"""Sample-rate conversion with soxr: one-shot for whole buffers, streaming for a call's audio, float32 mono.

The agent converts caller audio from the transport's rate to 16 kHz (VAD and ASR) and synthesised speech from the
voice's rate (Piper: 22050 Hz) to the rate the transport plays. Both use soxr's "HQ" quality (20-bit), chosen from
measurements on the narrowest case, telephone audio (a 4 kHz band, 8-bit companded):

- "QQ" is cubic interpolation with no anti-alias filter at all: a 6 kHz tone taken from 16 kHz down to the
  telephone rate comes out at full level, as a 2 kHz tone. "LQ" filters but already rolls off inside the telephone
  band (-8 dB at 3.4 kHz).
- "MQ" and "HQ" are flat to 3.6 kHz at the telephone rate and reject out-of-band tones by more than 120 dB, far
  below the noise of 8-bit companding (about 38 dB SNR), and add the same streaming latency. "HQ" runs as fast as
  "MQ" here (a few milliseconds per minute of audio) with the wider stopband margin, so it is the one we use.
- "VHQ" (28-bit) buys nothing audible after companding and adds latency when streaming 22050 Hz down to the
  telephone rate.

Streaming note: soxr works in blocks, so `StreamResampler.process` returns nothing for the first few 20 ms chunks
and then bursts; with "HQ" and 20 ms chunks its output lags its input by about 60 ms on average (up to ~115 ms)
from the telephone rate to 16 kHz. The delay comes from soxr's block size, not the quality setting (MQ measures the
same). Equal rates pass through without delay.
"""

from __future__ import annotations

import numpy as np
import soxr

RESAMPLE_QUALITY = "HQ"
"""soxr quality recipe used everywhere; see the module docstring for why."""


def _check_rate(name: str, rate_hz: int) -> None:
    if isinstance(rate_hz, bool) or not isinstance(rate_hz, int | np.integer) or rate_hz <= 0:
        raise ValueError(f"{name} must be a positive integer sample rate in Hz, got {rate_hz!r}")


def _as_mono_float32(samples: np.ndarray) -> np.ndarray:
    samples = np.asarray(samples)
    if not np.issubdtype(samples.dtype, np.floating):
        # Integer PCM would be resampled at int scale and then read as float far beyond full scale.
        raise TypeError(
            f"expected float samples in [-1.0, 1.0], got {samples.dtype}; convert int16 with pcm.pcm16_to_float32"
        )
    if samples.ndim != 1:
        raise ValueError(f"expected mono 1-D samples, got shape {samples.shape}")
    return np.ascontiguousarray(samples, dtype=np.float32)


def resample(samples: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """Convert a whole buffer from one sample rate to another, anti-aliased.

    Args:
        samples: 1-D float audio (float32 or float64), nominally in [-1.0, 1.0].
        from_hz: sample rate of `samples`, in Hz.
        to_hz: wanted sample rate, in Hz.

    Returns:
        A new float32 array of about ``len(samples) * to_hz / from_hz`` samples (a copy when the rates are equal).

    Raises:
        TypeError: `samples` is not a floating-point array.
        ValueError: `samples` is not 1-D, or a rate is not a positive integer.
    """
    _check_rate("from_hz", from_hz)
    _check_rate("to_hz", to_hz)
    samples = _as_mono_float32(samples)
    if from_hz == to_hz:
        return samples.copy()
    return soxr.resample(samples, from_hz, to_hz, quality=RESAMPLE_QUALITY)


class StreamResampler:
    """Resamples one continuous mono signal that arrives in chunks, such as one direction of one call.

    The output of all `process` calls followed by `flush` equals `resample` of the whole signal. The object holds
    filter state between chunks, so use one per signal and per direction, from one thread at a time.
    """

    def __init__(self, from_hz: int, to_hz: int) -> None:
        """Prepare a resampler.

        Args:
            from_hz: sample rate of the incoming chunks, in Hz.
            to_hz: sample rate of the output, in Hz.

        Raises:
            ValueError: a rate is not a positive integer.
        """
        _check_rate("from_hz", from_hz)
        _check_rate("to_hz", to_hz)
        self.from_hz = int(from_hz)
        self.to_hz = int(to_hz)
        # Equal rates pass through untouched; soxr would still filter and delay them.
        self._stream = (
            None
            if self.from_hz == self.to_hz
            else soxr.ResampleStream(self.from_hz, self.to_hz, 1, dtype="float32", quality=RESAMPLE_QUALITY)
        )

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Resample the next chunk of the signal.

        Args:
            chunk: 1-D float audio at `from_hz`, of any length (empty is fine).

        Returns:
            float32 audio at `to_hz`; possibly shorter than the chunk implies, or empty, because soxr holds some
            samples back until it has enough to filter them.

        Raises:
            TypeError: `chunk` is not a floating-point array.
            ValueError: `chunk` is not 1-D.
        """
        chunk = _as_mono_float32(chunk)
        if self._stream is None:
            return chunk.copy()
        return self._stream.resample_chunk(chunk)

    def flush(self) -> np.ndarray:
        """End the signal: return the samples still held back, and get ready for a new signal.

        Returns:
            The remaining float32 audio at `to_hz` (possibly empty).
        """
        if self._stream is None:
            return np.zeros(0, dtype=np.float32)
        tail = self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        # soxr accepts `last=True` once per signal; clearing makes the object reusable.
        self._stream.clear()
        return tail

    def reset(self) -> None:
        """Drop held-back samples and filter state, for example when playback is cleared on barge-in."""
        if self._stream is not None:
            self._stream.clear()
