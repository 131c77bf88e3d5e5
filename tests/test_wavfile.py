"""WAV files in and out."""

from __future__ import annotations

import numpy as np
import pytest

from voice.wavfile import read_wav, write_wav


def test_round_trip_mono(tmp_path):
    samples = np.linspace(-1.0, 1.0, 801, dtype=np.float32)
    write_wav(tmp_path / "a.wav", samples, 8000)
    back, rate_hz = read_wav(tmp_path / "a.wav")
    assert rate_hz == 8000
    assert np.max(np.abs(back - samples)) <= 1 / 32768


def test_stereo_is_written_but_read_refuses_it_naming_the_file(tmp_path):
    write_wav(tmp_path / "s.wav", np.zeros((100, 2), dtype=np.float32), 8000)
    with pytest.raises(ValueError, match=r"s\.wav: expected a mono WAV, got 2 channels"):
        read_wav(tmp_path / "s.wav")


def test_not_a_wav_and_empty_wav_are_refused(tmp_path):
    (tmp_path / "x.wav").write_bytes(b"not a wav at all")
    with pytest.raises(ValueError, match="not a PCM WAV file"):
        read_wav(tmp_path / "x.wav")
    write_wav(tmp_path / "e.wav", np.zeros(0, dtype=np.float32), 8000)
    with pytest.raises(ValueError, match="holds no audio"):
        read_wav(tmp_path / "e.wav")


def test_out_of_range_samples_are_clipped_not_wrapped(tmp_path):
    write_wav(tmp_path / "c.wav", np.array([1.5, -1.5], dtype=np.float32), 8000)
    back, _ = read_wav(tmp_path / "c.wav")
    assert back[0] > 0.99 and back[1] == -1.0
