"""What a shorter Whisper encoder window saves, and what it costs in word errors.

faster-whisper pads every utterance's features to Whisper's 30 s window (3000 frames) before the encoder, whatever its
`chunk_length`: a 2 s turn costs the encoder as much as 30 s of speech. `AsrOptions.encoder_window_s`
(VOICE_AGENT_ASR_WINDOW_S, `voice.asr.WindowedWhisper`) cuts the padding back to a shorter window, never shorter than
the utterance; 0 keeps only the utterance, rounded up to a whole second.

Transcribes, with the recogniser exactly as the server runs it (`telephony.voice_services.asr_options`: the greeting
as prompt, beam 5) apart from the window:
- the English clips of audio_fixtures/real_speech/, recorded and through a telephone round trip (2.6-20 s long),
  also pooled apart for the clips up to 6 s long (as most turns are);
- domain phrases as callers say them (the `say` turns of audio_fixtures/calls/, spoken by the replay's Piper caller,
  through the same telephone path; 1-3 s long).
Every utterance gets the 0.6 s of silence the pipeline keeps on either side of a turn. Prints the pooled word error
rate per set and window and the median time of one transcription; never asserts.

Usage: python benchmarks/asr_window.py [--windows-s 30 20 15 10 0]
"""

from __future__ import annotations

import os

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import argparse
import statistics
import time
from dataclasses import replace

import numpy as np

from qa.caller_audio import (
    PiperCaller,
    fixture_phrases,
    load_real_speech,
    telephone_round_trip,
    word_error_rate,
)
from telephony.settings import load_settings
from telephony.voice_services import asr_options
from voice.asr import SAMPLE_RATE_HZ, SpeechRecognizer
from voice.models import whisper_model_dir
from voice.prompts import load_catalogue

# The audio the pipeline keeps on either side of a turn (voice/pipeline.py, _TURN_PAD_MS).
TURN_PAD_S = 0.6
# Clips up to this long are pooled apart too: most turns are this short.
SHORT_S = 6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows-s", type=int, nargs="+", default=[30, 20, 15, 10, 0], help="0: the utterance's")
    args = parser.parse_args()

    settings = load_settings()
    options = asr_options(settings, load_catalogue(settings.prompts_dir, settings.language))
    model_dir = whisper_model_dir(settings.whisper_model)
    recognizers = {
        window: SpeechRecognizer(model_dir, replace(options, encoder_window_s=window, num_workers=1))
        for window in args.windows_s
    }
    pad = np.zeros(round(TURN_PAD_S * SAMPLE_RATE_HZ), dtype=np.float32)

    def turn(samples: np.ndarray) -> np.ndarray:
        return np.concatenate([pad, samples, pad])

    clips = load_real_speech("en")
    short = [clip for clip in clips if clip.samples_16k.size <= SHORT_S * SAMPLE_RATE_HZ]
    sets: dict[str, tuple[list[str], list[np.ndarray]]] = {
        "real recorded": ([clip.text for clip in clips], [turn(clip.samples_16k) for clip in clips]),
        "real telephone": (
            [clip.text for clip in clips],
            [turn(telephone_round_trip(clip.samples_16k)) for clip in clips],
        ),
        f"real telephone <= {SHORT_S} s": (
            [clip.text for clip in short],
            [turn(telephone_round_trip(clip.samples_16k)) for clip in short],
        ),
    }
    caller = PiperCaller()
    phrases = fixture_phrases()
    sets["domain telephone"] = (phrases, [turn(telephone_round_trip(caller.speak(text, 1.0))) for text in phrases])
    print(
        f"{len(clips)} real English clips, {len(phrases)} domain phrases; beam {options.beam_size}, prompt "
        f"{'on' if options.initial_prompt else 'off'}, {options.cpu_threads} thread(s); load {_load()}\n"
    )
    texts: dict[tuple[int, str], list[str]] = {(window, name): [] for window in args.windows_s for name in sets}
    seconds: dict[tuple[int, str], list[float]] = {key: [] for key in texts}
    # Utterance by utterance, every window in turn, so that the drifting load of a shared machine hits all alike.
    for name, (_references, audio) in sets.items():
        for samples in audio:
            for window in args.windows_s:
                started = time.perf_counter()
                texts[window, name].append(recognizers[window].transcribe(samples).text)
                seconds[window, name].append(time.perf_counter() - started)
    names = list(sets)
    print(
        "| encoder window | "
        + " | ".join(f"WER {name}" for name in names)
        + " | "
        + " | ".join(f"median ms {name}" for name in names)
        + " |"
    )
    print("|---" * (1 + 2 * len(names)) + "|")
    for window in args.windows_s:
        rates = [word_error_rate(sets[name][0], texts[window, name]) for name in names]
        medians = [statistics.median(seconds[window, name]) * 1000 for name in names]
        label = f"{window} s" if window else "utterance"
        print(
            f"| {label} | "
            + " | ".join(f"{rate:.1%}" for rate in rates)
            + " | "
            + " | ".join(f"{ms:.0f}" for ms in medians)
            + " |"
        )
    print(f"\nload {_load()}")


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f} (1/5/15 min) on {os.cpu_count()} CPUs"


if __name__ == "__main__":
    main()
