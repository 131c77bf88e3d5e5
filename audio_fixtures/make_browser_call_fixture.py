"""Writes browser_call_billing_16k.wav: the fake microphone of the browser-call test (tests/test_browser_call.py).

Chromium plays it as the microphone (``--use-file-for-fake-audio-capture``) and loops it, so it is one caller turn
framed by silence: 15 s of silence, long enough for the agent's greeting (about 12.5 s) to play out, then "Hi, I have
a question about my bill." (a billing question, as in calls/billing_then_agent.json), then 1.5 s of silence. On the
next loop the 15 s of silence leave the agent time to answer (the billing reply lasts about 10 s) before the caller
asks again.

Made like number_with_pauses_16k.wav (`make_fixtures.py`): the Piper voice en_US-joe-medium with its noise set to 0
(deterministic), trimmed, scaled to a -6 dBFS peak, resampled to 16 kHz with soxr, and white noise at -60 dBFS RMS
from a fixed seed over the whole clip (a real microphone is never digitally silent). 16-bit mono PCM, which Chromium's
fake capture reads at any rate and converts to the device's.

Run from the repository root, with the dev extras installed (piper-tts is GPL-3.0 and is used here only to make test
data):

    ORT_DISABLE_TELEMETRY=1 python audio_fixtures/make_browser_call_fixture.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from voice.wavfile import write_wav

# The sibling script's Piper helpers (these scripts run as files, from the repository root).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fixtures import (
    NOISE_DBFS,
    NOISE_SEED,
    OUTPUT_RATE_HZ,
    PEAK_DBFS,
    synthesize_groups,
    trim_silence,
)

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

QUESTION = "Hi, I have a question about my bill."
LEAD_S = 15.0
TAIL_S = 1.5
OUTPUT = Path(__file__).resolve().with_name("browser_call_billing_16k.wav")


def make_clip() -> tuple[np.ndarray, float]:
    """The clip at 16 kHz, and where the question starts in it, in seconds."""
    import soxr

    (spoken,), rate_hz = synthesize_groups((QUESTION,))
    question = trim_silence(spoken)
    question = question * (10 ** (PEAK_DBFS / 20) / float(np.abs(question).max()))
    question_16k = soxr.resample(question, rate_hz, OUTPUT_RATE_HZ, quality="HQ").astype(np.float32)
    lead = np.zeros(round(LEAD_S * OUTPUT_RATE_HZ), dtype=np.float32)
    tail = np.zeros(round(TAIL_S * OUTPUT_RATE_HZ), dtype=np.float32)
    clip = np.concatenate([lead, question_16k, tail])
    noise = np.random.default_rng(NOISE_SEED).standard_normal(clip.size).astype(np.float32)
    clip += noise * np.float32(10 ** (NOISE_DBFS / 20))
    return clip, LEAD_S


def main() -> None:
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT
    clip, question_at_s = make_clip()
    write_wav(output, clip, OUTPUT_RATE_HZ)
    duration_s = clip.size / OUTPUT_RATE_HZ
    print(f"{output}: {duration_s:.2f} s, the question at {question_at_s:.1f} s, {output.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
