"""G.711 mu-law <-> 16-bit PCM, the audio encoding of Twilio Media Streams, in numpy alone.

Both directions are table lookups, built once at import: 256 entries to decode, and 65536 entries (one per int16
value, 64 KiB) to encode, so encoding is a single fancy-index with no per-sample branching. The tables reproduce
CPython 3.11's ``audioop.ulaw2lin(data, 2)`` and ``audioop.lin2ulaw(data, 2)`` bit for bit (tests check every code
and every int16 value), without importing ``audioop``, which is gone in Python 3.13. `mulaw_to_float32` and
`float32_to_mulaw` are the edge conversions to and from the float PCM the voice pipeline works with.
"""

from __future__ import annotations

import numpy as np

from voice.pcm import float32_to_pcm16, pcm16_to_float32

MULAW_SILENCE = 0xFF
"""The mu-law byte for digital silence (it decodes to 0)."""

# Constants of the G.711 mu-law reference code that audioop is built on (Sun's g711.c). The bias is added to the
# magnitude so that segments start at powers of two; the clip limit cannot be reached once audioop has shifted the
# sample to 14 bits, but is kept as in the reference. Segment ends are in the biased 14-bit magnitude domain.
_BIAS = 0x84
_CLIP = 32635
_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)


def _build_decode_table() -> np.ndarray:
    codes = np.arange(256, dtype=np.int32)
    # Mu-law bytes are stored with all bits inverted.
    inverted = ~codes & 0xFF
    mantissa = inverted & 0x0F
    segment = (inverted & 0x70) >> 4
    magnitude = ((mantissa << 3) + _BIAS) << segment
    return np.where(inverted & 0x80, _BIAS - magnitude, magnitude - _BIAS).astype(np.int16)


def _build_encode_table() -> np.ndarray:
    # Index by the int16 bit pattern read as uint16, which is how pcm16_to_mulaw looks values up.
    samples = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)
    # audioop drops to 14 bits with an arithmetic shift, which rounds towards minus infinity: -1..-4 become -1,
    # not 0, and so encode to 0x7E rather than 0x7F. Keep it, to stay bit-exact.
    value = samples >> 2
    negative = value < 0
    magnitude = np.minimum(np.abs(value), _CLIP) + (_BIAS >> 2)
    segment = np.searchsorted(_SEGMENT_ENDS, magnitude, side="left")
    in_range = segment < 8
    segment = np.minimum(segment, 7)
    code = (segment << 4) | ((magnitude >> (segment + 1)) & 0x0F)
    # Beyond the last segment the reference returns the largest code (0x7F before inversion).
    code = np.where(in_range, code, 0x7F)
    # Invert all bits for positive values, all but the sign bit for negative ones.
    code ^= np.where(negative, 0x7F, 0xFF)
    return code.astype(np.uint8)


_DECODE_TABLE = _build_decode_table()
_DECODE_TABLE.flags.writeable = False
_ENCODE_TABLE = _build_encode_table()
_ENCODE_TABLE.flags.writeable = False


def mulaw_to_pcm16(data: bytes) -> np.ndarray:
    """Decode G.711 mu-law bytes to 16-bit PCM, exactly as ``audioop.ulaw2lin(data, 2)``.

    Args:
        data: mu-law bytes, one sample each (any bytes-like object).

    Returns:
        A new, writable int16 array with one sample per input byte; empty for empty input.
    """
    return _DECODE_TABLE[np.frombuffer(data, dtype=np.uint8)]


def pcm16_to_mulaw(samples: np.ndarray) -> bytes:
    """Encode 16-bit PCM to G.711 mu-law, exactly as ``audioop.lin2ulaw(samples.tobytes(), 2)``.

    Args:
        samples: 1-D int16 array, mono.

    Returns:
        One mu-law byte per sample.

    Raises:
        TypeError: `samples` is not int16 (float audio must go through `float32_to_pcm16` first, so that it is
            scaled and clipped rather than truncated).
        ValueError: `samples` is not 1-D.
    """
    samples = np.asarray(samples)
    if samples.dtype != np.int16:
        raise TypeError(f"expected int16 samples, got {samples.dtype}; convert float audio with float32_to_pcm16")
    if samples.ndim != 1:
        raise ValueError(f"expected mono 1-D samples, got shape {samples.shape}")
    return _ENCODE_TABLE[samples.view(np.uint16)].tobytes()


def mulaw_to_float32(data: bytes) -> np.ndarray:
    """Decode mu-law bytes to float32 PCM in [-1.0, 1.0), as the voice pipeline takes it.

    Args:
        data: mu-law bytes, one sample each (any bytes-like object).

    Returns:
        A new float32 array with one sample per input byte; empty for empty input.
    """
    return pcm16_to_float32(mulaw_to_pcm16(data))


def float32_to_mulaw(samples: np.ndarray) -> bytes:
    """Encode float PCM in [-1.0, 1.0] to mu-law, clipping out-of-range values (see `voice.pcm.float32_to_pcm16`).

    Args:
        samples: 1-D float array (float32 or float64), mono.

    Returns:
        One mu-law byte per sample.

    Raises:
        TypeError: `samples` is not a floating-point array.
        ValueError: `samples` is not 1-D.
    """
    return pcm16_to_mulaw(float32_to_pcm16(samples))
