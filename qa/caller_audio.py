"""Caller audio for the speech benchmarks (`asr.py`, `fairness.py`): voices, the phone line, noise, word errors.

Every source is brought to 16 kHz float32 first ("native" quality), noise is mixed in there, and the telephone
condition then takes the path a real call takes: down to 8 kHz, G.711 mu-law encode and decode with the project's
own codec (`telephony.twilio.mulaw`, bit-exact with audioop), and back up to 16 kHz with `voice.resample` as the
server does (the whole-buffer resampler equals the streaming one the server runs).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import jiwer
import numpy as np
import soxr

from qa.fixtures import CallerVoice
from telephony.twilio.framing import TWILIO_SAMPLE_RATE_HZ
from telephony.twilio.mulaw import float32_to_mulaw, mulaw_to_float32
from voice.resample import RESAMPLE_QUALITY, resample
from voice.text import normalize
from voice.tts_espeak import espeak_ng_speech, espeak_variants
from voice.wavfile import read_wav

REPO = Path(__file__).resolve().parents[1]
FIXTURE_CALLS = REPO / "audio_fixtures" / "calls"
REAL_SPEECH_DIR = REPO / "audio_fixtures" / "real_speech"
LINE_NOISE = REPO / "audio_fixtures" / "line_noise_16k.wav"
ASR_RATE_HZ = 16_000
PHONE_RATE_HZ = TWILIO_SAMPLE_RATE_HZ
SYNTHETIC_PEAK_DBFS = -6.0
"""Peak level of synthesised callers, the level the replay's Piper caller speaks at (a real line leaves headroom)."""


@dataclass(frozen=True, slots=True)
class Clip:
    """One utterance with the words it says."""

    name: str
    """Short identifier (file stem or phrase index)."""
    text: str
    """What is said: the reference transcript."""
    samples_16k: np.ndarray
    """Mono float32 audio in -1..1 at 16 kHz."""


def load_real_speech(language: str = "en") -> list[Clip]:
    """The recorded clips of `audio_fixtures/real_speech/` in `language`, with their sources' reference transcripts."""
    manifest = json.loads((REAL_SPEECH_DIR / "manifest.json").read_text(encoding="utf-8"))
    clips = []
    for entry in manifest:
        if entry["language"] == language:
            samples, rate_hz = read_wav(REAL_SPEECH_DIR / entry["file"])
            clips.append(Clip(Path(entry["file"]).stem, entry["transcript"], resample(samples, rate_hz, ASR_RATE_HZ)))
    return clips


def telephone_round_trip(samples_16k: np.ndarray, upsample_quality: str = RESAMPLE_QUALITY) -> np.ndarray:
    """What the server hears of a caller: 16 kHz -> 8 kHz mu-law (as Twilio carries it) -> 16 kHz.

    Args:
        samples_16k: mono float audio at 16 kHz.
        upsample_quality: soxr recipe for the 8 -> 16 kHz step the server makes; the default is the server's own.

    Returns:
        float32 audio at 16 kHz, band-limited to 4 kHz and with mu-law's quantisation noise.
    """
    samples_8k = resample(samples_16k, ASR_RATE_HZ, PHONE_RATE_HZ)
    decoded = mulaw_to_float32(float32_to_mulaw(samples_8k))
    if upsample_quality == RESAMPLE_QUALITY:
        return resample(decoded, PHONE_RATE_HZ, ASR_RATE_HZ)
    return soxr.resample(decoded, PHONE_RATE_HZ, ASR_RATE_HZ, quality=upsample_quality).astype(np.float32)


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Add `noise` to `speech` so that their power ratio is exactly `snr_db`.

    The powers are mean squares over the whole utterance (the clip as cut, short pauses included), so the same
    noise level sits under every voice at a given SNR. The noise repeats from its start when the speech is longer.

    Args:
        speech: mono float audio.
        noise: mono float noise at the same rate, any length.
        snr_db: wanted speech-to-noise power ratio in dB.

    Returns:
        float32 `speech + gain * noise`, `gain` chosen for the ratio (not clipped: the codec saturates later).

    Raises:
        ValueError: the speech or the noise is silent.
    """
    speech = np.asarray(speech, dtype=np.float64)
    noise = np.resize(np.asarray(noise, dtype=np.float64), speech.shape)
    speech_power, noise_power = float(np.mean(speech**2)), float(np.mean(noise**2))
    if speech_power == 0.0 or noise_power == 0.0:
        raise ValueError(f"cannot set an SNR with silent audio (speech power {speech_power}, noise {noise_power})")
    gain = np.sqrt(speech_power / (noise_power * 10 ** (snr_db / 10)))
    return (speech + gain * noise).astype(np.float32)


def snr_db(speech: np.ndarray, noise: np.ndarray) -> float:
    """Speech-to-noise power ratio in dB, both as mean squares over their whole length."""
    speech, noise = np.asarray(speech, dtype=np.float64), np.asarray(noise, dtype=np.float64)
    return float(10 * np.log10(np.mean(speech**2) / np.mean(noise**2)))


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str], language: str = "en") -> float:
    """Pooled word error rate: all substitutions, deletions and insertions over all reference words.

    Both sides go through the engine's own `voice.text.normalize` first (lower case, no punctuation, numbers as
    words, hesitations dropped), so "3" against "three" or "Bill." against "bill" is not an error.

    Raises:
        ValueError: a reference has no words once normalised.
    """
    refs = [normalize(text, language) for text in references]
    hyps = [normalize(text, language) for text in hypotheses]
    if not all(refs):
        raise ValueError(f"a reference has no words: {[r for r, n in zip(references, refs, strict=True) if not n]}")
    return jiwer.process_words(refs, hyps).wer


def at_peak(samples: np.ndarray, peak_dbfs: float = SYNTHETIC_PEAK_DBFS) -> np.ndarray:
    """`samples` scaled to the given peak level (silence stays silence)."""
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    return (samples * (10 ** (peak_dbfs / 20) / peak) if peak > 0 else samples).astype(np.float32)


def espeak_ng(
    text: str, voice: str, words_per_minute: int = 160, variant: str | None = None, pitch: int | None = None
) -> np.ndarray:
    """`text` spoken by Debian's espeak-ng (`apt-get install espeak-ng`) in `voice`, at 16 kHz and -6 dBFS peak.

    Args:
        text: what to say.
        voice: an espeak-ng language voice such as "en-gb-scotland" (the accent).
        words_per_minute: speaking rate.
        variant: a voice variant such as "m3" or "f2" (the speaker's timbre), or None for the voice's own.
        pitch: base pitch 0..99 (espeak-ng's default is 50), or None for the default.

    Raises:
        voice.models.ModelNotFound: espeak-ng is not installed.
        ValueError: espeak-ng does not know `voice` or `variant` (it would silently fall back to its default).
    """
    if variant is not None and variant not in espeak_variants():
        raise ValueError(f"espeak-ng has no variant {variant!r}; `espeak-ng --voices=variant` lists them")
    spoken = voice if variant is None else f"{voice}+{variant}"
    samples, rate_hz = espeak_ng_speech(text, spoken, words_per_minute, pitch)
    return at_peak(resample(samples, rate_hz, ASR_RATE_HZ))


class PiperCaller:
    """The replay's synthetic caller (the bundled Piper voice, deterministic), at any pace, as 16 kHz audio."""

    def __init__(self) -> None:
        self._voice = CallerVoice()

    def speak(self, text: str, length_scale: float) -> np.ndarray:
        """`text` at pace `length_scale` (above 1 is slower), float32 at 16 kHz, -6 dBFS peak."""
        audio, rate_hz = self._voice.speak(text, length_scale)
        return resample(audio, rate_hz, ASR_RATE_HZ)


def fixture_phrases() -> list[str]:
    """The distinct `say` turns of the fixture calls (audio_fixtures/calls), in file order: the domain's phrases."""
    phrases: list[str] = []
    for path in sorted(FIXTURE_CALLS.glob("*.json")):
        for turn in json.loads(path.read_text(encoding="utf-8"))["turns"]:
            if "say" in turn and turn["say"] not in phrases:
                phrases.append(turn["say"])
    return phrases
