"""16-bit PCM <-> float32 PCM: scaling, rounding, clipping and the edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from voice.pcm import float32_to_pcm16, pcm16_to_float32

ALL_INT16 = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)


def test_empty_input():
    assert float32_to_pcm16(np.zeros(0, dtype=np.float32)).dtype == np.int16
    assert pcm16_to_float32(np.zeros(0, dtype=np.int16)).dtype == np.float32


def test_clipping_not_wrapping():
    overshoot = np.array([1.0, 1.5, 100.0, np.inf, -1.0, -1.5, -100.0, -np.inf], dtype=np.float32)
    np.testing.assert_array_equal(
        float32_to_pcm16(overshoot), [32767, 32767, 32767, 32767, -32768, -32768, -32768, -32768]
    )


def test_nan_becomes_silence():
    np.testing.assert_array_equal(float32_to_pcm16(np.array([np.nan, 0.5], dtype=np.float32)), [0, 16384])


def test_float_conversion_rounds_to_nearest():
    step = 1 / 32768
    samples = np.array([0.4 * step, 0.6 * step, -0.6 * step, 2.5 * step], dtype=np.float64)
    # Half-way values round to even, as numpy's rint does.
    np.testing.assert_array_equal(float32_to_pcm16(samples), [0, 1, -1, 2])


def test_int16_to_float_and_back_is_the_identity():
    as_float = pcm16_to_float32(ALL_INT16)
    assert as_float.dtype == np.float32
    assert as_float.min() == -1.0
    assert as_float.max() < 1.0
    np.testing.assert_array_equal(float32_to_pcm16(as_float), ALL_INT16)


def test_float_to_pcm16_rejects_integers():
    with pytest.raises(TypeError, match="expected float samples"):
        float32_to_pcm16(np.zeros(4, dtype=np.int16))


def test_int16_to_float_rejects_float_samples():
    with pytest.raises(TypeError, match="expected int16 samples, got float32"):
        pcm16_to_float32(np.zeros(4, dtype=np.float32))
