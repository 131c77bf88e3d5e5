"""Writes line_noise_16k.wav: what an open phone line sounds like when nobody speaks.

Band-limited noise (300-3400 Hz, the telephone band) at about -30 dBFS RMS, a 50 Hz mains hum and a few clicks;
3 s, 16-bit mono, 16 kHz. The seed is fixed, so the file is the same on every run. ASR tests use it to check that
line noise does not turn into words.

Usage: python audio_fixtures/make_noise_fixture.py [OUTPUT]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from voice.wavfile import write_wav

SAMPLE_RATE_HZ = 16_000
DURATION_S = 3.0
NOISE_RMS_DBFS = -30.0
BAND_HZ = (300.0, 3400.0)
HUM_HZ = 50.0
HUM_PEAK_DBFS = -36.0
CLICK_TIMES_S = (0.41, 1.37, 1.92, 2.66)
CLICK_PEAK_DBFS = -12.0
SEED = 20240501


def make_line_noise(seed: int = SEED) -> np.ndarray:
    """The fixture's samples, float32 in -1..1 at 16 kHz."""
    rng = np.random.default_rng(seed)
    count = int(SAMPLE_RATE_HZ * DURATION_S)

    # Band-limit white noise in the frequency domain: exact band edges and no filter dependency.
    spectrum = np.fft.rfft(rng.standard_normal(count))
    frequencies_hz = np.fft.rfftfreq(count, d=1.0 / SAMPLE_RATE_HZ)
    spectrum[(frequencies_hz < BAND_HZ[0]) | (frequencies_hz > BAND_HZ[1])] = 0.0
    noise = np.fft.irfft(spectrum, n=count)
    noise *= 10 ** (NOISE_RMS_DBFS / 20) / np.sqrt(np.mean(noise**2))

    times_s = np.arange(count) / SAMPLE_RATE_HZ
    hum = 10 ** (HUM_PEAK_DBFS / 20) * np.sin(2 * np.pi * HUM_HZ * times_s)

    # A click is a short decaying pulse of alternating sign, like a relay or a bad connector.
    clicks = np.zeros(count)
    pulse = np.exp(-np.arange(48) / 8.0) * np.where(np.arange(48) % 2 == 0, 1.0, -1.0)
    for click_s in CLICK_TIMES_S:
        start = int(click_s * SAMPLE_RATE_HZ)
        clicks[start : start + pulse.size] += 10 ** (CLICK_PEAK_DBFS / 20) * pulse

    return np.clip(noise + hum + clicks, -1.0, 1.0).astype(np.float32)


def main() -> None:
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "line_noise_16k.wav"
    samples = make_line_noise()
    write_wav(output, samples, SAMPLE_RATE_HZ)
    rms_dbfs = 20 * np.log10(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
    print(f"wrote {output}: {samples.size / SAMPLE_RATE_HZ:.1f} s, {rms_dbfs:.1f} dBFS RMS")


if __name__ == "__main__":
    main()
