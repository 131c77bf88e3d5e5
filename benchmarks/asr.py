"""Word error rate and latency of the speech recogniser, and what a domain prompt, beam size and resampling change.

Three sets, each transcribed by every variant (clip by clip in turn, so that the drifting load of a shared machine
hits all variants alike):
- real/native: the English clips of audio_fixtures/real_speech/ (recorded people, the sources' own transcripts), 16 kHz;
- real/phone: the same through a telephone round trip (8 kHz mu-law with telephony/twilio/mulaw.py, back to 16 kHz with
  voice/resample.py, as the server hears a caller);
- domain/phone: what callers say in this domain, spoken by the replay's Piper caller (en_US-joe, pace 1.0) through
  the same telephone path: the `say` turns of audio_fixtures/calls/*.json, plus `--per-intent` examples of every
  intent in prompts/en/intents.yaml, chosen by the SHA-1 of their text (fixed and reproducible, no hand-picking);
- domain/espeak: the same phrases spoken by espeak-ng (en-us; Debian package espeak-ng) through the same path.

Variants: "before" is the recogniser as it was (beam 5, no prompt, no loop guard); "after" is exactly what the server
runs now (telephony.voice_services.asr_options); the others change one thing each. Held out: the catalogue-terms
prompt and hotwords are built by voice/asr_prompt.py from the catalogue *without* the measured examples, so no measured
sentence feeds them; the greeting prompt holds no caller phrase at all.

Word errors are pooled per set (all errors over all reference words, with jiwer) after voice.text.normalize on both
sides, so "3" against "three" is not an error. Latency is the wall time of `SpeechRecognizer.transcribe`.

Usage: python benchmarks/asr.py [--variants before beam1 terms greeting guard after] [--per-intent 2] [--show-errors]
"""

from __future__ import annotations

import os

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import argparse
import hashlib
import statistics
import sys
import time
from dataclasses import dataclass, replace

from qa.caller_audio import (
    REPO,
    Clip,
    PiperCaller,
    espeak_ng,
    fixture_phrases,
    load_real_speech,
    telephone_round_trip,
    word_error_rate,
)
from qa.domain_terms import domain_terms, prompt_from_terms
from qa.stats import percentile
from telephony.settings import load_settings
from telephony.voice_services import asr_options
from voice.asr import AsrOptions, SpeechRecognizer
from voice.asr_prompt import catalogue_prompt
from voice.models import whisper_model_dir
from voice.prompts import Catalogue, load_catalogue
from voice.text import normalize

ESPEAK_VOICE = "en-us"
"""A second, more robotic voice for the domain phrases, so that the domain set is not one voice alone."""
SETS = ("real/native", "real/phone", "domain/phone", "domain/espeak")


@dataclass(frozen=True, slots=True)
class Variant:
    """One way of running the recogniser."""

    label: str
    options: AsrOptions
    upsample_quality: str = "HQ"
    """soxr recipe of the server's 8 -> 16 kHz step (only the phone sets change)."""


def split_examples(catalogue: Catalogue, per_intent: int) -> tuple[list[str], dict[str, list[str]]]:
    """`per_intent` examples of every intent to measure, and the remaining examples to build the prompt from."""
    measured: list[str] = []
    remaining: dict[str, list[str]] = {}
    for name, intent in catalogue.intents.items():
        ranked = sorted(intent.examples, key=lambda text: hashlib.sha1(text.encode()).hexdigest())
        measured += ranked[:per_intent]
        remaining[name] = ranked[per_intent:]
    return measured, remaining


def held_out_prompt_terms(catalogue: Catalogue, measured: list[str]) -> list[str]:
    """The domain terms of voice/asr_prompt.py, from the catalogue minus every measured phrase."""
    measured_forms = {normalize(text, "en") for text in measured}
    _, remaining = split_examples(catalogue, 0)
    examples = {
        name: [text for text in texts if normalize(text, "en") not in measured_forms]
        for name, texts in remaining.items()
    }
    agent_texts = [intent.reply for intent in catalogue.intents.values()]
    agent_texts += [keyword for intent in catalogue.intents.values() for keyword in intent.keywords]
    return domain_terms(examples, agent_texts, "en")


def build_variants(names: list[str], catalogue: Catalogue, terms: list[str]) -> list[Variant]:
    """The variants by name; "before" is the recogniser as it was, "after" exactly as the server now runs it."""
    server = replace(asr_options(load_settings(), catalogue), num_workers=1)
    before = AsrOptions(language="en", num_workers=1, compression_ratio_threshold=None)
    greeting = catalogue_prompt(catalogue)
    known = {
        "before": Variant("before: beam 5, no prompt", before),
        "beam1": Variant("beam 1", replace(before, beam_size=1)),
        "beam3": Variant("beam 3", replace(before, beam_size=3)),
        "terms": Variant("catalogue terms as prompt", replace(before, initial_prompt=prompt_from_terms(terms))),
        "hotwords": Variant("catalogue terms as hotwords", replace(before, hotwords=" ".join(terms))),
        "greeting": Variant("greeting as prompt", replace(before, initial_prompt=greeting)),
        "guard": Variant("loop guard (re-decode)", replace(before, compression_ratio_threshold=2.4)),
        "vhq": Variant("8->16 kHz soxr VHQ", before, upsample_quality="VHQ"),
        "after": Variant("after: as the server runs", server),
    }
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; expected some of {list(known)}")
    return [known[name] for name in names]


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["before", "beam1", "terms", "greeting", "guard", "after"],
        help="variants to compare (the first is the reference)",
    )
    parser.add_argument("--per-intent", type=int, default=2, help="measured catalogue examples per intent")
    parser.add_argument("--show-errors", action="store_true", help="print every transcript that differs")
    args = parser.parse_args()

    catalogue = load_catalogue(REPO / "prompts", "en")
    measured_examples, _ = split_examples(catalogue, args.per_intent)
    fixture_lines = fixture_phrases()
    phrases = fixture_lines + [text for text in measured_examples if text not in fixture_lines]
    terms = held_out_prompt_terms(catalogue, phrases)
    variants = build_variants(args.variants, catalogue, terms)
    print(
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f} at start; Whisper tiny.en int8, 1 thread, temperature 0"
    )
    print(
        f"domain/phone: {len(phrases)} phrases ({len(fixture_lines)} fixture `say` turns + {args.per_intent} "
        f"catalogue examples per intent by SHA-1); the terms are built from the other "
        f"{sum(len(i.examples) for i in catalogue.intents.values()) - len(measured_examples)} examples, none measured"
    )
    print(f"terms ({len(terms)}): {prompt_from_terms(terms)}")
    print(f"greeting (no caller phrase in it): {catalogue_prompt(catalogue)}")

    progress("synthesising the domain phrases ...")
    caller = PiperCaller()
    real = load_real_speech("en")
    domain = [Clip(f"phrase{i:02d}", text, caller.speak(text, 1.0)) for i, text in enumerate(phrases)]
    qualities = sorted({variant.upsample_quality for variant in variants})
    spoken = [Clip(f"phrase{i:02d}", text, espeak_ng(text, ESPEAK_VOICE)) for i, text in enumerate(phrases)]
    audio: dict[tuple[str, str], list[Clip]] = {}
    for quality in qualities:
        audio["real/native", quality] = real
        audio["real/phone", quality] = [
            replace(clip, samples_16k=telephone_round_trip(clip.samples_16k, quality)) for clip in real
        ]
        audio["domain/phone", quality] = [
            replace(clip, samples_16k=telephone_round_trip(clip.samples_16k, quality)) for clip in domain
        ]
        audio["domain/espeak", quality] = [
            replace(clip, samples_16k=telephone_round_trip(clip.samples_16k, quality)) for clip in spoken
        ]

    model_dir = whisper_model_dir(None)
    recognizers = []
    for variant in variants:
        recognizer = SpeechRecognizer(model_dir, variant.options)
        recognizer.transcribe(real[0].samples_16k)  # warm-up: the first call allocates buffers
        recognizers.append(recognizer)

    texts: dict[tuple[str, str], list[str]] = {}
    seconds: dict[tuple[str, str], list[float]] = {}
    for set_name in SETS:
        count = len(audio[set_name, qualities[0]])
        for index in range(count):
            progress(f"{set_name} {index + 1}/{count}")
            for variant, recognizer in zip(variants, recognizers, strict=True):
                clip = audio[set_name, variant.upsample_quality][index]
                started = time.perf_counter()
                transcript = recognizer.transcribe(clip.samples_16k)
                seconds.setdefault((variant.label, set_name), []).append(time.perf_counter() - started)
                texts.setdefault((variant.label, set_name), []).append(transcript.text)

    width = max(len(variant.label) for variant in variants) + 2
    print()
    print(f"{'':<{width}}" + "".join(f"{name:<26}" for name in SETS))
    print(f"{'variant':<{width}}" + f"{'WER':>6} {'median':>8} {'p95':>7}    " * len(SETS))
    for variant in variants:
        row = f"{variant.label:<{width}}"
        for set_name in SETS:
            references = [clip.text for clip in audio[set_name, variant.upsample_quality]]
            wer = word_error_rate(references, texts[variant.label, set_name])
            times = seconds[variant.label, set_name]
            row += f"{wer:>6.1%} {statistics.median(times) * 1000:>6.0f}ms {percentile(times, 0.95) * 1000:>5.0f}ms    "
        print(row.rstrip())
    sizes = ", ".join(f"{len(audio[name, qualities[0]])} {name}" for name in SETS)
    print(f"\nload {os.getloadavg()[0]:.2f} at the end; n = {sizes}")

    if args.show_errors:
        for set_name in SETS:
            for index, clip in enumerate(audio[set_name, variants[0].upsample_quality]):
                hyps = {v.label: texts[v.label, set_name][index] for v in variants}
                if any(normalize(h, "en") != normalize(clip.text, "en") for h in hyps.values()):
                    print(f"\n[{set_name}] {clip.name}: {clip.text}")
                    for label, hyp in hyps.items():
                        print(f"    {label:<{width}} {hyp}")


if __name__ == "__main__":
    main()
