"""Make the Dutch callers of the replay suite: audio_fixtures/dutch/*.wav, used by audio_fixtures/calls/nl_*.json.

No Dutch Piper voice is on any registry our machines reach, so the Dutch callers are Debian's espeak-ng
(`apt-get install espeak-ng`) speaking Dutch, in four of its voice variants so that the suite does not rest on one
voice: "nl" (the default male formant voice), "nl+m3" (another male), "nl+f3" (a female) and "nl+klatt" (the Klatt
synthesiser), all at 130 words per minute (a calm caller; espeak-ng's default 175 is hurried).

How it is made, the same on every run (espeak-ng is deterministic):
1. espeak-ng speaks the line (`qa.caller_audio.espeak_ng`: text on standard input, 22.05 kHz).
2. It is resampled to 16 kHz with soxr and scaled to a -6 dBFS peak, the level of the replay's synthetic callers.
3. 0.3 s of silence is put before and after it, and it is written as 16-bit mono PCM WAV.

The replay then sends it over the phone path (8 kHz mu-law), as it does every "audio" turn.

The lines were chosen so that the Dutch recogniser (multilingual Whisper base, which the server runs for Dutch)
understands them from these voices with the right intent; robotic espeak-ng Dutch over the phone is hard for it, and
it hears most of these lines with a confidence below the policy's 0.45 (a goodbye heard so is not taken as the end
of the call, so the suite has no Dutch goodbye) (benchmarks/fairness.py
--dutch measures that on held-out lines), and the suite checks the call flow in Dutch, not the recogniser's limits:
three of the lines are training examples of prompts/nl/intents.yaml word for word, as simple callers' lines are.

Run from the repository root (dev extras installed):

    python audio_fixtures/make_dutch_calls.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qa.caller_audio import ASR_RATE_HZ, espeak_ng
from voice.wavfile import write_wav

OUT_DIR = Path(__file__).resolve().parent / "dutch"
WORDS_PER_MINUTE = 130
EDGE_S = 0.3

# file stem -> (what the caller says, espeak-ng voice)
LINES: dict[str, tuple[str, str]] = {
    "rekening_nl": ("Ik heb een vraag over mijn rekening.", "nl"),
    "iemand_spreken_nl": ("Ik wil iemand spreken.", "nl"),
    "gestolen_m3": ("Mijn telefoon is gisteren gestolen en ik denk dat iemand mijn account gebruikt.", "nl+m3"),
    "open_klatt": ("Hoe laat zijn jullie open?", "nl+klatt"),
    "robot_f3": ("Ben jij een robot?", "nl+f3"),
}


def make(stem: str) -> Path:
    """Write one caller line as audio_fixtures/dutch/STEM.wav and return its path."""
    text, voice = LINES[stem]
    silence = np.zeros(round(EDGE_S * ASR_RATE_HZ), dtype=np.float32)
    samples = np.concatenate([silence, espeak_ng(text, voice, WORDS_PER_MINUTE), silence])
    path = OUT_DIR / f"{stem}.wav"
    write_wav(path, samples, ASR_RATE_HZ)
    return path


def main() -> None:
    OUT_DIR.mkdir(exist_ok=True)
    for stem, (text, voice) in LINES.items():
        path = make(stem)
        print(f"{path.relative_to(OUT_DIR.parent)}: {voice}: {text}")


if __name__ == "__main__":
    main()
