"""16-bit PCM WAV files in and out, as float32 samples in [-1, 1]: the one place that knows the format."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from voice.pcm import float32_to_pcm16, pcm16_to_float32


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Read a mono 16-bit PCM WAV file.

    Returns:
        float32 samples in [-1, 1] and the sample rate in Hz.

    Raises:
        ValueError: not a PCM WAV file, not mono, not 16-bit, or empty; the message says which and names the file.
        OSError: the file cannot be read.
    """
    try:
        with wave.open(str(path), "rb") as reader:
            channels, width, rate_hz = reader.getnchannels(), reader.getsampwidth(), reader.getframerate()
            data = reader.readframes(reader.getnframes())
    except (wave.Error, EOFError) as error:
        raise ValueError(f"{path}: not a PCM WAV file ({error})") from error
    if channels != 1:
        raise ValueError(f"{path}: expected a mono WAV, got {channels} channels")
    if width != 2:
        raise ValueError(f"{path}: expected 16-bit samples, got {8 * width}-bit")
    if not data:
        raise ValueError(f"{path}: the WAV file holds no audio")
    return pcm16_to_float32(np.frombuffer(data, dtype="<i2").astype(np.int16)), rate_hz


def write_wav(path: Path, samples: np.ndarray, sample_rate_hz: int) -> None:
    """Write float samples in [-1, 1] (clipped) as 16-bit PCM: shape (n,) for mono, (n, channels) for more."""
    samples = np.asarray(samples, dtype=np.float32)
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    pcm16 = float32_to_pcm16(samples.reshape(-1)).astype("<i2")
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(2)
        writer.setframerate(sample_rate_hz)
        writer.writeframes(pcm16.tobytes())
