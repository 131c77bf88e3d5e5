"""The building blocks of the speech benchmarks: noise at an exact SNR, the telephone round trip, word errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qa import caller_audio
from telephony.twilio.mulaw import mulaw_to_pcm16, pcm16_to_mulaw
from voice.pcm import float32_to_pcm16, pcm16_to_float32
from voice.resample import resample
from voice.wavfile import read_wav

REPO = Path(__file__).resolve().parent.parent
RATE_HZ = 16_000


def _tone(frequency_hz: float, seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(RATE_HZ * seconds)) / RATE_HZ
    return (amplitude * np.sin(2 * np.pi * frequency_hz * t)).astype(np.float32)


def _level_db(samples: np.ndarray, reference: np.ndarray) -> float:
    # Middle half only: the resampler's filters ring at the edges.
    a, b = samples[len(samples) // 4 : 3 * len(samples) // 4], reference[len(reference) // 4 : 3 * len(reference) // 4]
    # The floor keeps a fully removed tone finite (-200 dB) instead of log10(0).
    return float(10 * np.log10((np.mean(a.astype(np.float64) ** 2) + 1e-20) / np.mean(b.astype(np.float64) ** 2)))


@pytest.mark.parametrize("snr_db", [30.0, 20.0, 10.0, 0.0, -5.0])
def test_noise_is_mixed_at_the_exact_snr(snr_db):
    noise, rate_hz = read_wav(caller_audio.LINE_NOISE)
    assert rate_hz == RATE_HZ
    # Longer than the 3 s of noise, so the noise has to repeat.
    speech = _tone(440.0, seconds=4.5, amplitude=0.3) * np.hanning(int(4.5 * RATE_HZ)).astype(np.float32)
    mixed = caller_audio.mix_at_snr(speech, noise, snr_db)
    assert mixed.dtype == np.float32 and mixed.shape == speech.shape
    added = mixed.astype(np.float64) - speech
    assert caller_audio.snr_db(speech, added) == pytest.approx(snr_db, abs=0.01)
    # The noise itself, scaled, repeated from its start: not some other signal with the right power.
    gain = added[: noise.size] @ noise / (noise.astype(np.float64) @ noise)
    np.testing.assert_allclose(added[: noise.size], gain * noise, atol=1e-6)
    np.testing.assert_allclose(added[noise.size : noise.size + RATE_HZ], added[:RATE_HZ], atol=1e-6)


def test_snr_of_silent_audio_is_refused():
    with pytest.raises(ValueError, match="silent"):
        caller_audio.mix_at_snr(np.zeros(1600, dtype=np.float32), _tone(100.0), 10.0)
    with pytest.raises(ValueError, match="silent"):
        caller_audio.mix_at_snr(_tone(100.0), np.zeros(1600, dtype=np.float32), 10.0)


def test_telephone_round_trip_keeps_the_voice_band_and_drops_the_rest():
    for frequency_hz in (300.0, 1000.0, 3000.0):
        tone = _tone(frequency_hz)
        through = caller_audio.telephone_round_trip(tone)
        assert through.dtype == np.float32 and abs(through.size - tone.size) <= 1
        assert abs(_level_db(through, tone)) < 0.5, frequency_hz
        # Same waveform, not just the same power: mu-law adds only its quantisation noise (about 38 dB down).
        n = min(through.size, tone.size)
        error_db = _level_db(through[:n] - tone[:n], tone[:n])
        assert error_db < -30, (frequency_hz, error_db)
    # Above the 4 kHz Nyquist of an 8 kHz line nothing gets through.
    assert _level_db(caller_audio.telephone_round_trip(_tone(6000.0)), _tone(6000.0)) < -40


def test_telephone_round_trip_is_the_codec_path_the_server_hears():
    speech = _tone(700.0, seconds=0.5) + _tone(1900.0, seconds=0.5, amplitude=0.2)
    wire = pcm16_to_mulaw(float32_to_pcm16(resample(speech, RATE_HZ, 8000)))
    expected = resample(pcm16_to_float32(mulaw_to_pcm16(wire)), 8000, RATE_HZ)
    np.testing.assert_array_equal(caller_audio.telephone_round_trip(speech), expected)


def test_word_error_rate_compares_normalised_words():
    wer = caller_audio.word_error_rate
    assert wer(["I paid 3 euros."], ["i paid three euros"]) == 0.0
    assert wer(["Can I speak to an agent, please?"], ["um can i speak to an agent please"]) == 0.0
    assert wer(["my bill is too high"], ["my bell is too high"]) == pytest.approx(1 / 5)
    # Pooled over the set: 1 substitution + 1 deletion over 5 + 3 reference words, not the mean of 20% and 33%.
    assert wer(["my bill is too high", "pay my bill"], ["my bell is too high", "pay bill"]) == pytest.approx(2 / 8)
    assert wer(["hello there"], [""]) == 1.0
    with pytest.raises(ValueError, match="no words"):
        wer(["um ..."], ["hello"])
