"""Regenerate audio_fixtures/pauses/: callers who pause inside their turn, for the cut-off count of
benchmarks/response_latency.py.

Each fixture is one caller turn with pauses inside it that do not end it: a sentence broken off mid-way ("I have a
question about" - 0.6 s - "my last bill."), a number read in groups, a caller who says "um" and thinks. A reply
that starts before the whole turn has been said is a cut-off. The pauses run from 0.4 to 0.9 s, the range of the
pauses people leave inside a sentence on the phone, in several voices: Debian's espeak-ng (American, British,
Received Pronunciation, Scottish, Caribbean English and a female variant) and the bundled Piper voice
(en_US-joe-medium). Recorded speech with natural pauses is not made here: `manifest.json` lists the clips of
real_speech/ whose pauses were measured (see `REAL_CLIPS`).

How each fixture is made, the same on every run:
1. Each part is spoken: espeak-ng at 150 words per minute (deterministic), or Piper with its generator and duration
   noise at 0 (deterministic on one machine; another CPU or onnxruntime may change the last bits).
2. Each part is resampled to 16 kHz (soxr HQ) and its own leading and trailing silence is trimmed (samples below
   -50 dBFS at the edges), so that each pause is exactly the one set here.
3. The parts are joined with their pauses, with 300 ms of silence before and 500 ms after, and scaled to a -6 dBFS
   peak (the replay's caller level).
4. The clip is resampled to 8 kHz, the rate a phone line carries, and white noise at -60 dBFS RMS from a fixed
   seed per fixture is added: a line is never digitally silent.
5. It is written as 16-bit mono PCM WAV (about 16 kB per second), with its entry in `manifest.json`: the parts,
   the pauses, the voice, where each part lies in the clip, where the speech lies (`speech_ms`: from the first
   part's start to the last part's end), and the kind.

For the recorded clips, `speech_ms` is where Silero (16 kHz, windows at 0.5 or more) finds speech: their room noise
is above the replay's -40 dBFS floor, so energy alone would take it for the caller still speaking.

Run from the repository root with the dev extras installed (piper-tts is GPL-3.0 and is used here only to make
test data) and Debian's espeak-ng:

    ORT_DISABLE_TELEMETRY=1 python audio_fixtures/make_pause_fixtures.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from voice.resample import resample
from voice.wavfile import read_wav, write_wav

FIXTURES_DIR = Path(__file__).resolve().parent
OUT_DIR = FIXTURES_DIR / "pauses"
WORK_RATE_HZ = 16_000
OUTPUT_RATE_HZ = 8_000
LEAD_MS = 300
TAIL_MS = 500
PEAK_DBFS = -6.0
NOISE_DBFS = -60.0
TRIM_DBFS = -50.0
ESPEAK_WORDS_PER_MINUTE = 150
PIPER = "piper:en_US-joe-medium"


@dataclass(frozen=True, slots=True)
class PauseFixture:
    """One caller turn: its parts, spoken in one voice, with a pause after each part but the last."""

    name: str
    kind: str
    """``mid_sentence``, ``digits`` or ``hesitation``."""
    voice: str
    """``espeak:<voice>`` (an espeak-ng voice, with a ``+variant`` if any) or `PIPER`."""
    parts: tuple[str, ...]
    pauses_ms: tuple[int, ...]


FIXTURES = (
    # A sentence broken off where it cannot end: after a preposition, a conjunction, "to", "me", "so".
    PauseFixture(
        "question_about_bill_piper", "mid_sentence", PIPER, ("I have a question about", "my last bill."), (600,)
    ),
    PauseFixture(
        "question_about_bill_us", "mid_sentence", "espeak:en-us", ("I have a question about", "my last bill."), (800,)
    ),
    PauseFixture(
        "router_red_scotland",
        "mid_sentence",
        "espeak:en-gb-scotland",
        ("My internet is not working and", "the light on the router is red."),
        (700,),
    ),
    PauseFixture(
        "router_red_piper",
        "mid_sentence",
        PIPER,
        ("My internet is not working and", "the light on the router is red."),
        (900,),
    ),
    PauseFixture(
        "order_status_caribbean",
        "mid_sentence",
        "espeak:en-029",
        ("I would like to", "check the status of my order."),
        (500,),
    ),
    PauseFixture(
        "order_status_us_female",
        "mid_sentence",
        "espeak:en-us+f3",
        ("I would like to", "check the status of my order."),
        (900,),
    ),
    PauseFixture(
        "open_saturday_piper", "mid_sentence", PIPER, ("Can you tell me", "when you are open on Saturday?"), (400,)
    ),
    PauseFixture(
        "open_saturday_gb",
        "mid_sentence",
        "espeak:en-gb",
        ("Can you tell me", "when you are open on Saturday?"),
        (600,),
    ),
    PauseFixture(
        "moved_address_us_female",
        "mid_sentence",
        "espeak:en-us+f3",
        ("I moved last month so", "I need to change my address."),
        (700,),
    ),
    PauseFixture(
        "moved_address_piper", "mid_sentence", PIPER, ("I moved last month so", "I need to change my address."), (800,)
    ),
    PauseFixture(
        "charge_on_card_rp",
        "mid_sentence",
        "espeak:en-gb-x-rp",
        ("The charge on my card", "is higher than last month."),
        (500,),
    ),
    PauseFixture(
        "log_in_scotland",
        "mid_sentence",
        "espeak:en-gb-scotland",
        ("When I try to log in", "to my account", "it says my password is wrong."),
        (600, 700),
    ),
    # A number read out in groups, as off a card or a letter.
    PauseFixture(
        "account_number_us",
        "digits",
        "espeak:en-us",
        ("My account number is", "four one seven", "five nine three", "two eight."),
        (700, 600, 800),
    ),
    PauseFixture(
        "customer_number_piper",
        "digits",
        PIPER,
        ("My customer number is", "two zero six", "one one four", "nine."),
        (800, 700, 600),
    ),
    PauseFixture(
        "order_number_gb",
        "digits",
        "espeak:en-gb",
        ("The order number is", "one two three", "four five six."),
        (600, 900),
    ),
    # A caller who hesitates and thinks.
    PauseFixture(
        "uh_um_check_order_piper", "hesitation", PIPER, ("I'd like to, uh", "um", "check my order."), (900, 700)
    ),
    PauseFixture("um_last_invoice_us", "hesitation", "espeak:en-us", ("It's about my, um", "my last invoice."), (900,)),
    PauseFixture(
        "so_um_wondering_caribbean",
        "hesitation",
        "espeak:en-029",
        ("So, um", "I was wondering", "when you open tomorrow."),
        (800, 600),
    ),
)

REAL_CLIPS = (
    # Clips of real_speech/ with pauses inside, as the VAD measures them on the phone line (8 kHz, the turn
    # detector's 0.35 hysteresis): the longest ones and the number of pauses of 250 ms or more.
    {"file": "jfk_inaugural_ask_not.wav", "pauses_ms": [1024, 992, 544, 352], "in_verdict": True},
    {"file": "fleurs_en_000.wav", "pauses_ms": [480, 544], "in_verdict": True},
    {"file": "command_add_apples_to_my_shopping_list.wav", "pauses_ms": [544], "in_verdict": True},
    {"file": "fleurs_en_001.wav", "pauses_ms": [320], "in_verdict": True},
    {"file": "fleurs_en_008.wav", "pauses_ms": [288], "in_verdict": True},
    {"file": "fleurs_en_005.wav", "pauses_ms": [256], "in_verdict": True},
    # Pauses longer than the longest end-of-turn silence (1.2 s): reported, not counted in the verdict.
    {"file": "vosk_digit_strings.wav", "pauses_ms": [1280, 1280], "in_verdict": False},
    {"file": "fleurs_en_002.wav", "pauses_ms": [1760], "in_verdict": False},
)


def speak(text: str, voice: str, piper: object | None) -> tuple[np.ndarray, int]:
    """`text` in `voice`: float32 samples and their rate."""
    if voice == PIPER:
        audio, rate_hz = piper.speak(text, None)  # type: ignore[union-attr]
        return audio, rate_hz
    name = voice.removeprefix("espeak:")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "part.wav"
        subprocess.run(
            ["espeak-ng", "-v", name, "-s", str(ESPEAK_WORDS_PER_MINUTE), "-w", str(path), text],
            check=True,
            capture_output=True,
        )
        return read_wav(path)


def trim_silence(samples: np.ndarray) -> np.ndarray:
    """The samples from the first to the last one at or above `TRIM_DBFS`.

    Raises:
        ValueError: nothing reaches it (the synthesis produced silence).
    """
    loud = np.flatnonzero(np.abs(samples) >= 10 ** (TRIM_DBFS / 20))
    if loud.size == 0:
        raise ValueError("the synthesis produced silence")
    return samples[loud[0] : loud[-1] + 1]


def make(fixture: PauseFixture, piper: object | None) -> tuple[np.ndarray, list[list[int]]]:
    """The fixture's clip at `OUTPUT_RATE_HZ`, and each part's [start_ms, end_ms] in it."""
    pieces = [np.zeros(LEAD_MS * WORK_RATE_HZ // 1000, dtype=np.float32)]
    spans, position = [], pieces[0].size
    for index, text in enumerate(fixture.parts):
        if index:
            pieces.append(np.zeros(fixture.pauses_ms[index - 1] * WORK_RATE_HZ // 1000, dtype=np.float32))
            position += pieces[-1].size
        audio, rate_hz = speak(text, fixture.voice, piper)
        part = trim_silence(resample(audio, rate_hz, WORK_RATE_HZ))
        pieces.append(part)
        spans.append([position * 1000 // WORK_RATE_HZ, (position + part.size) * 1000 // WORK_RATE_HZ])
        position += part.size
    pieces.append(np.zeros(TAIL_MS * WORK_RATE_HZ // 1000, dtype=np.float32))
    clip = np.concatenate(pieces)
    clip *= 10 ** (PEAK_DBFS / 20) / float(np.abs(clip).max())
    clip = resample(clip, WORK_RATE_HZ, OUTPUT_RATE_HZ)
    seed = zlib.crc32(fixture.name.encode())
    clip += np.random.default_rng(seed).standard_normal(clip.size).astype(np.float32) * 10 ** (NOISE_DBFS / 20)
    return clip.astype(np.float32), spans


def speech_span_ms(path: Path) -> list[int]:
    """[start, end] of the speech in a recording, in ms: its first to its last Silero window at 0.5 or more."""
    from voice.vad import StreamingVad

    samples, rate_hz = read_wav(path)
    vad = StreamingVad(WORK_RATE_HZ)
    voiced = np.flatnonzero(vad.process(resample(samples, rate_hz, WORK_RATE_HZ)) >= 0.5)
    return [int(voiced[0]) * 32, (int(voiced[-1]) + 1) * 32]


def main() -> None:
    """Write every fixture and the manifest, and print each one's parts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR, help="folder to write to (default: pauses/)")
    arguments = parser.parse_args()
    arguments.out_dir.mkdir(parents=True, exist_ok=True)
    piper = None
    if any(fixture.voice == PIPER for fixture in FIXTURES):
        from qa.fixtures import CallerVoice

        piper = CallerVoice()
    entries = []
    for fixture in FIXTURES:
        clip, spans = make(fixture, piper)
        name = f"{fixture.name}_8k.wav"
        write_wav(arguments.out_dir / name, clip, OUTPUT_RATE_HZ)
        entries.append(
            {
                "file": name,
                "kind": fixture.kind,
                "voice": fixture.voice,
                "parts": list(fixture.parts),
                "pauses_ms": list(fixture.pauses_ms),
                "part_spans_ms": spans,
                "speech_ms": [spans[0][0], spans[-1][1]],
                "duration_ms": clip.size * 1000 // OUTPUT_RATE_HZ,
            }
        )
        print(f"{name}: {' | '.join(fixture.parts)} (pauses {list(fixture.pauses_ms)} ms, {fixture.voice})")
    for clip in REAL_CLIPS:
        path = f"../real_speech/audio/{clip['file']}"
        speech_ms = speech_span_ms(arguments.out_dir / path)
        entries.append({**clip, "file": path, "kind": "real", "voice": "recorded", "speech_ms": speech_ms})
    manifest = {
        "description": "Caller turns with pauses inside them that do not end the turn; made by "
        "audio_fixtures/make_pause_fixtures.py (real clips: measured, not made).",
        "fixtures": entries,
    }
    (arguments.out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
