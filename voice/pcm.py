"""16-bit PCM <-> float32 PCM, in numpy alone.

The voice pipeline works on mono float32 audio in [-1.0, 1.0]; transports and WAV files carry 16-bit integers.
These two conversions are the bridge.
"""

from __future__ import annotations

import numpy as np

# The same factor both ways, so int16 -> float32 -> int16 is the identity.
_FLOAT_SCALE = 32768.0


def pcm16_to_float32(samples: np.ndarray) -> np.ndarray:
    """Scale 16-bit PCM to float32 in [-1.0, 1.0).

    Args:
        samples: int16 array.

    Returns:
        A float32 array of the same shape, ``samples / 32768``.

    Raises:
        TypeError: `samples` is not int16.
    """
    samples = np.asarray(samples)
    if samples.dtype != np.int16:
        raise TypeError(f"expected int16 samples, got {samples.dtype}")
    return samples.astype(np.float32) * np.float32(1.0 / _FLOAT_SCALE)


def float32_to_pcm16(samples: np.ndarray) -> np.ndarray:
    """Scale float audio in [-1.0, 1.0] to 16-bit PCM, rounding to nearest and clipping out-of-range values.

    Values beyond full scale saturate at -32768 or 32767 instead of wrapping around (a plain ``astype`` would turn
    a slight overshoot of 1.0 into a full-scale negative click). NaN becomes 0, so a bad sample is silence rather
    than an arbitrary value.

    Args:
        samples: float array (float32 or float64), nominally in [-1.0, 1.0].

    Returns:
        A new int16 array of the same shape.

    Raises:
        TypeError: `samples` is not a floating-point array.
    """
    samples = np.asarray(samples)
    if not np.issubdtype(samples.dtype, np.floating):
        raise TypeError(f"expected float samples in [-1.0, 1.0], got {samples.dtype}")
    # One float32 copy, then every step in place, instead of a new array per step.
    scaled = samples.astype(np.float32, copy=True)
    scaled *= np.float32(_FLOAT_SCALE)
    np.nan_to_num(scaled, copy=False, nan=0.0)
    np.rint(scaled, out=scaled)
    np.clip(scaled, -32768.0, 32767.0, out=scaled)
    return scaled.astype(np.int16)
