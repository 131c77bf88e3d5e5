"""The mu-law codec against Python 3.11's audioop, exhaustively, and its edge conversions to float PCM."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from telephony.twilio.mulaw import (
    MULAW_SILENCE,
    float32_to_mulaw,
    mulaw_to_float32,
    mulaw_to_pcm16,
    pcm16_to_mulaw,
)
from voice.pcm import float32_to_pcm16, pcm16_to_float32

with warnings.catch_warnings():
    # audioop is deprecated (gone in 3.13, where the audioop-lts dev dependency provides it); only the tests use it.
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

ALL_MULAW_BYTES = bytes(range(256))
ALL_INT16 = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)


def test_decode_matches_audioop_for_every_byte():
    expected = np.frombuffer(audioop.ulaw2lin(ALL_MULAW_BYTES, 2), dtype=np.int16)
    decoded = mulaw_to_pcm16(ALL_MULAW_BYTES)
    assert decoded.dtype == np.int16
    np.testing.assert_array_equal(decoded, expected)


def test_encode_matches_audioop_for_every_int16():
    expected = audioop.lin2ulaw(ALL_INT16.tobytes(), 2)
    assert pcm16_to_mulaw(ALL_INT16) == expected


def test_round_trip_error_is_bounded():
    # Mu-law keeps about 3 % relative precision (half a step of 16 per segment); the largest error is at the
    # extremes, which decode to +-32124 at most.
    error = np.abs(mulaw_to_pcm16(pcm16_to_mulaw(ALL_INT16)).astype(np.int32) - ALL_INT16.astype(np.int32))
    magnitude = np.abs(ALL_INT16.astype(np.int32))
    assert np.all(error <= magnitude / 32 + 8)
    assert error.max() == 644
    assert error[magnitude <= 256].max() <= 11


def test_every_byte_survives_decode_then_encode():
    # 0x7F and 0xFF both decode to 0, which encodes back to 0xFF; every other code is its own round trip.
    round_trip = pcm16_to_mulaw(mulaw_to_pcm16(ALL_MULAW_BYTES))
    expected = bytearray(ALL_MULAW_BYTES)
    expected[0x7F] = 0xFF
    assert round_trip == bytes(expected)


def test_tone_round_trip_signal_to_noise_is_telephone_grade():
    seconds, rate_hz = 1.0, 8000
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    tone = float32_to_pcm16((0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32))
    decoded = mulaw_to_pcm16(pcm16_to_mulaw(tone)).astype(np.float64)
    noise = decoded - tone
    snr_db = 10 * np.log10(np.sum(tone.astype(np.float64) ** 2) / np.sum(noise**2))
    assert snr_db > 35.0


def test_silence_encodes_to_0xff():
    assert pcm16_to_mulaw(np.zeros(4, dtype=np.int16)) == b"\xff" * 4
    np.testing.assert_array_equal(mulaw_to_pcm16(b"\xff\x7f"), [0, 0])


def test_empty_input():
    assert mulaw_to_pcm16(b"").shape == (0,)
    assert mulaw_to_pcm16(b"").dtype == np.int16
    assert pcm16_to_mulaw(np.zeros(0, dtype=np.int16)) == b""
    assert mulaw_to_float32(b"").dtype == np.float32 and mulaw_to_float32(b"").shape == (0,)
    assert float32_to_mulaw(np.zeros(0, dtype=np.float32)) == b""


def test_decode_accepts_bytearray_and_memoryview_and_returns_a_writable_array():
    data = bytes([0x00, 0x80, 0xFF])
    for view in (bytearray(data), memoryview(data)):
        decoded = mulaw_to_pcm16(view)
        np.testing.assert_array_equal(decoded, [-32124, 32124, 0])
        decoded[0] = 1  # a view of the lookup table would refuse this


def test_encode_rejects_float_samples():
    with pytest.raises(TypeError, match="expected int16 samples, got float32"):
        pcm16_to_mulaw(np.zeros(4, dtype=np.float32))


def test_encode_rejects_stereo():
    with pytest.raises(ValueError, match=r"expected mono 1-D samples, got shape \(4, 2\)"):
        pcm16_to_mulaw(np.zeros((4, 2), dtype=np.int16))


def test_float_edge_conversions_are_the_int16_codec_with_scaling_and_clipping():
    np.testing.assert_array_equal(mulaw_to_float32(ALL_MULAW_BYTES), pcm16_to_float32(mulaw_to_pcm16(ALL_MULAW_BYTES)))
    as_float = pcm16_to_float32(ALL_INT16)
    assert float32_to_mulaw(as_float) == pcm16_to_mulaw(ALL_INT16)
    # Out of range saturates at the loudest codes; NaN is silence.
    loud = float32_to_mulaw(np.array([2.0, -2.0, np.nan], dtype=np.float32))
    assert loud == pcm16_to_mulaw(np.array([32767, -32768, 0], dtype=np.int16))
    assert loud[2] == MULAW_SILENCE


def test_float_encode_rejects_integers_and_stereo():
    with pytest.raises(TypeError, match="expected float samples"):
        float32_to_mulaw(np.zeros(4, dtype=np.int16))
    with pytest.raises(ValueError, match=r"expected mono 1-D samples, got shape \(4, 2\)"):
        float32_to_mulaw(np.zeros((4, 2), dtype=np.float32))
