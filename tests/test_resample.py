"""soxr resampling on the agent's two conversions: lengths, band, anti-aliasing, and streaming against one-shot."""

from __future__ import annotations

import numpy as np
import pytest

from voice.resample import StreamResampler, resample

RATE_PAIRS = [(8000, 16000), (22050, 8000), (16000, 8000)]


def _tone(frequency_hz: float, rate_hz: int, seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate_hz * seconds)) / rate_hz
    return (amplitude * np.sin(2 * np.pi * frequency_hz * t)).astype(np.float32)


def _level_db(samples: np.ndarray, reference_amplitude: float = 0.5) -> float:
    # Skip the first and last 10 % so the filter's edges do not count.
    trim = len(samples) // 10
    middle = samples[trim : len(samples) - trim].astype(np.float64)
    rms = np.sqrt(np.mean(middle**2))
    return 20 * np.log10(max(rms, 1e-12) / (reference_amplitude / np.sqrt(2)))


def _noise(rate_hz: int, seconds: float = 1.0) -> np.ndarray:
    return (np.random.default_rng(3).standard_normal(int(rate_hz * seconds)) * 0.1).astype(np.float32)


def test_8k_to_16k_doubles_length():
    out = resample(_noise(8000), 8000, 16000)
    assert out.dtype == np.float32
    assert len(out) == 16000


def test_22050_to_8k_length_follows_the_ratio():
    out = resample(_noise(22050, seconds=2.0), 22050, 8000)
    assert out.dtype == np.float32
    assert len(out) == 16000


def test_tone_above_nyquist_is_attenuated():
    # 6 kHz cannot exist at 8 kHz; without an anti-alias filter it would fold down to 2 kHz at full level.
    out = resample(_tone(6000.0, 16000), 16000, 8000)
    assert _level_db(out) < -30.0


def test_piper_rate_above_telephone_band_is_attenuated():
    out = resample(_tone(5000.0, 22050), 22050, 8000)
    assert _level_db(out) < -30.0


@pytest.mark.parametrize(("from_hz", "to_hz"), [(8000, 16000), (22050, 8000)])
def test_telephone_band_passes_unchanged(from_hz, to_hz):
    for frequency_hz in (300.0, 1000.0, 3400.0):
        assert abs(_level_db(resample(_tone(frequency_hz, from_hz), from_hz, to_hz))) < 0.5, frequency_hz


def test_upsampled_tone_keeps_its_frequency():
    out = resample(_tone(1000.0, 8000), 8000, 16000)
    spectrum = np.abs(np.fft.rfft(out * np.hanning(len(out))))
    peak_hz = np.argmax(spectrum) * 16000 / len(out)
    assert abs(peak_hz - 1000.0) <= 2.0


@pytest.mark.parametrize(("from_hz", "to_hz"), RATE_PAIRS)
@pytest.mark.parametrize("chunk_ms", [20, 7, 1000])
def test_streaming_equals_one_shot_within_tolerance(from_hz, to_hz, chunk_ms):
    signal = _noise(from_hz, seconds=1.5)
    chunk = max(1, from_hz * chunk_ms // 1000)
    stream = StreamResampler(from_hz, to_hz)
    pieces = [stream.process(signal[start : start + chunk]) for start in range(0, len(signal), chunk)]
    streamed = np.concatenate([*pieces, stream.flush()])
    one_shot = resample(signal, from_hz, to_hz)
    assert streamed.dtype == np.float32
    assert len(streamed) == len(one_shot)
    np.testing.assert_allclose(streamed, one_shot, atol=1e-5)


def test_stream_is_reusable_after_flush():
    signal = _noise(8000)
    stream = StreamResampler(8000, 16000)
    first = np.concatenate([stream.process(signal), stream.flush()])
    second = np.concatenate([stream.process(signal), stream.flush()])
    np.testing.assert_array_equal(first, second)


def test_reset_forgets_held_back_audio():
    stream = StreamResampler(8000, 16000)
    stream.process(_noise(8000))
    stream.reset()
    assert len(stream.flush()) == 0


def test_empty_input():
    empty = np.zeros(0, dtype=np.float32)
    assert resample(empty, 8000, 16000).shape == (0,)
    stream = StreamResampler(22050, 8000)
    assert stream.process(empty).shape == (0,)
    assert stream.flush().shape == (0,)


def test_equal_rates_pass_through_as_a_float32_copy():
    signal = _noise(8000).astype(np.float64)
    out = resample(signal, 8000, 8000)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, signal.astype(np.float32))
    stream = StreamResampler(8000, 8000)
    np.testing.assert_array_equal(stream.process(signal[:160]), signal[:160].astype(np.float32))
    assert len(stream.flush()) == 0


def test_float64_input_gives_float32_output():
    assert resample(_noise(8000).astype(np.float64), 8000, 16000).dtype == np.float32


def test_integer_samples_are_rejected():
    with pytest.raises(TypeError, match="pcm16_to_float32"):
        resample(np.zeros(160, dtype=np.int16), 8000, 16000)


def test_stereo_is_rejected():
    with pytest.raises(ValueError, match=r"got shape \(160, 2\)"):
        StreamResampler(8000, 16000).process(np.zeros((160, 2), dtype=np.float32))


@pytest.mark.parametrize("rate", [0, -8000, 8000.0, True])
def test_bad_rates_are_rejected(rate):
    with pytest.raises(ValueError, match="from_hz must be a positive integer"):
        resample(np.zeros(10, dtype=np.float32), rate, 16000)
    with pytest.raises(ValueError, match="from_hz must be a positive integer"):
        StreamResampler(rate, 16000)
