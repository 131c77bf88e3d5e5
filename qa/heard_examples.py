"""Make `prompts/<lang>/heard_examples.yaml`: the catalogue's examples as the recogniser hears them over the phone.

Every example of `prompts/<lang>/intents.yaml` is spoken `--renditions` times, each time by a voice drawn from the
training voices below (seeded by the example's text, so the same catalogue gives the same file), taken through the
telephone path (`qa.caller_audio.telephone_round_trip`, some with line noise) and transcribed by the real recogniser
of that language with the server's options. Transcripts that differ from the example become heard examples of its
intent, unless they would teach the engine something wrong (see `keep_consistent`) or have drifted far from their
example (see `close_to_source`).

Never trained on: the benchmark and evaluation lines (every `benchmarks/data/intent_eval_*` case and the fixture
calls' `say` turns; examples equal to one are not spoken), the accents in `HELD_OUT_ACCENTS` and the voice variants
in `HELD_OUT_VARIANTS` (nor espeak-ng's default variant, which `benchmarks/fairness.py` speaks with), so that the
fairness benchmark can report on callers the data never saw. Dutch (`--language nl`) is spoken by espeak-ng's Dutch
voice with the variants of `DUTCH_TRAIN_VARIANTS` only: the Dutch fairness voices (`nl`, `nl+m3`, `nl+f3`,
`nl+klatt`) are held out.

Usage: python -m qa.heard_examples [--language en|nl] [--renditions 2] [--share 1] [--limit N] [--output PATH]
       [--cache RAW.jsonl] [--refilter]
"""

from __future__ import annotations

import os

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import argparse
import difflib
import hashlib
import json
import random
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from qa.caller_audio import (
    LINE_NOISE,
    REPO,
    PiperCaller,
    espeak_ng,
    mix_at_snr,
    telephone_round_trip,
)
from qa.evaluation import load_eval_set
from voice.dialogue import DialogueEngine
from voice.heard_examples import HeardExample, HeardExamplesFile, heard_examples_path, usable
from voice.intents import IntentClassifier
from voice.prompts import Catalogue, load_catalogue
from voice.text import contains_phrase, normalize
from voice.wavfile import read_wav

TRAIN_ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp")
"""espeak-ng accents spoken in training (always with a variant from `TRAIN_VARIANTS`)."""
HELD_OUT_ACCENTS = ("en-us-nyc", "en-gb-x-gbcwmd", "en-gb-x-gbclan")
"""espeak-ng accents never spoken in training: `benchmarks/fairness.py` reports them as unseen groups."""
TRAIN_VARIANTS = ("m1", "m2", "m3", "m4", "m6", "f1", "f2", "f4")
HELD_OUT_VARIANTS = ("m5", "m7", "m8", "f3", "f5")
"""Never spoken in training, nor is espeak-ng's default voice (no variant), which the fairness benchmark uses."""
WORDS_PER_MINUTE = (130, 150, 175, 200)
PITCHES = (30, 45, 60, 75)
PIPER_PACES = (0.9, 1.2)
"""The replay's Piper caller, at paces the fairness benchmark does not use (it uses 0.8, 1.0 and 1.4)."""
PIPER_SHARE = 0.15
NOISE_SHARE = 0.35
NOISE_SNRS_DB = (20.0, 12.0)
MIN_WORDS = 2
"""Shorter transcripts ("now" for "no") are too easily another intent's word: not used."""
MIN_SIMILARITY = 0.5
"""A transcript less similar than this to its example (difflib's ratio over the normalised words) is mostly
other words; trained on, it teaches that ordinary words mean the intent (a pizza order read as cancel_contract)."""
MIN_MARGIN = 0.1
"""...unless the catalogue's own classifier already reads it as its intent, by at least this much over the next."""
DUTCH_ACCENT = "nl"
DUTCH_TRAIN_VARIANTS = ("m1", "m2", "m4", "m6", "f1", "f2", "f4")
DUTCH_HELD_OUT_VARIANTS = ("m3", "f3", "klatt")
"""The variants `benchmarks/fairness.py --dutch` speaks with (and espeak-ng's default voice): never in training."""


@dataclass(frozen=True, slots=True)
class Rendition:
    """Who speaks one example, and over what line."""

    engine: str
    """"espeak" or "piper"."""
    accent: str | None = None
    variant: str | None = None
    words_per_minute: int | None = None
    pitch: int | None = None
    pace: float | None = None
    snr_db: float | None = None
    """Line noise mixed in at this SNR, or None for a clean line."""

    def describe(self) -> str:
        """A short label for the provenance of the example."""
        if self.engine == "espeak":
            voice = f"espeak {self.accent}+{self.variant}, {self.words_per_minute} wpm, pitch {self.pitch}"
        else:
            voice = f"piper pace {self.pace:g}"
        return voice + (f", line noise {self.snr_db:g} dB SNR" if self.snr_db is not None else ", clean line")


def rendition(text: str, index: int, language: str = "en") -> Rendition:
    """The `index`-th rendition of `text`: drawn at random, seeded by the text, so it never depends on file order."""
    chooser = random.Random(f"{text}|{index}")
    snr = chooser.choice(NOISE_SNRS_DB) if chooser.random() < NOISE_SHARE else None
    if language == "nl":
        return Rendition(
            "espeak",
            accent=DUTCH_ACCENT,
            variant=chooser.choice(DUTCH_TRAIN_VARIANTS),
            words_per_minute=chooser.choice(WORDS_PER_MINUTE),
            pitch=chooser.choice(PITCHES),
            snr_db=snr,
        )
    if chooser.random() < PIPER_SHARE:
        return Rendition("piper", pace=chooser.choice(PIPER_PACES), snr_db=snr)
    return Rendition(
        "espeak",
        accent=chooser.choice(TRAIN_ACCENTS),
        variant=chooser.choice(TRAIN_VARIANTS),
        words_per_minute=chooser.choice(WORDS_PER_MINUTE),
        pitch=chooser.choice(PITCHES),
        snr_db=snr,
    )


def benchmark_lines(language: str) -> frozenset[str]:
    """Every evaluation and benchmark line of `language`, normalised: never trained on."""
    lines = {
        case.text
        for path in (REPO / "benchmarks" / "data").glob(f"intent_eval*_{language}.yaml")
        for case in load_eval_set(path)
    }
    if language == "en":
        for path in (REPO / "audio_fixtures" / "calls").glob("*.json"):
            lines.update(turn["say"] for turn in json.loads(path.read_text(encoding="utf-8"))["turns"] if "say" in turn)
    return frozenset(normalize(line, language) for line in lines)


def spoken_examples(catalogue: Catalogue, share: float = 1.0) -> list[tuple[str, str]]:
    """(intent, example) pairs to speak, in catalogue order, without the benchmark lines.

    Args:
        share: the fraction of every intent's examples to speak, chosen by a hash of their text (so the same ones
            each time, and from every intent alike).
    """
    excluded = benchmark_lines(catalogue.language)
    return [
        (name, example)
        for name, intent in catalogue.intents.items()
        for example in intent.examples
        if normalize(example, catalogue.language) not in excluded and _hash_share(example) < share
    ]


def _hash_share(text: str) -> float:
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16) / 0x1_0000_0000


class Speaker:
    """Turns a rendition into telephone-quality 16 kHz audio."""

    def __init__(self) -> None:
        self._piper = PiperCaller()
        noise, rate_hz = read_wav(LINE_NOISE)
        if rate_hz != 16_000:
            raise ValueError(f"{LINE_NOISE}: expected 16 kHz, got {rate_hz} Hz")
        self._noise = noise

    def audio(self, text: str, voice: Rendition) -> np.ndarray:
        """`text` as spoken by `voice`, after the telephone round trip."""
        if voice.engine == "piper":
            samples = self._piper.speak(text, voice.pace)
        else:
            samples = espeak_ng(text, voice.accent, voice.words_per_minute, voice.variant, voice.pitch)
        if voice.snr_db is not None:
            samples = mix_at_snr(samples, self._noise, voice.snr_db)
        return telephone_round_trip(samples)


def keep_consistent(
    candidates: Sequence[HeardExample], catalogue: Catalogue, report: Callable[[str], None] = print
) -> list[HeardExample]:
    """The candidates that teach the engine nothing wrong.

    Dropped: transcripts equal to their example (nothing to learn) or shorter than `MIN_WORDS`; those that equal
    another intent's example, or that were heard for two intents; those containing another intent's keyword (the
    keyword would decide anyway); those that drifted far from their example (`close_to_source`); and, repeatedly
    until none is left, those the classifier trained with them still reads as another intent.
    """
    language = catalogue.language
    owner = {normalize(example, language): name for name, i in catalogue.intents.items() for example in i.examples}
    heard_for: dict[str, set[str]] = {}
    for example in candidates:
        heard_for.setdefault(normalize(example.heard, language), set()).add(example.intent)
    keywords = [(name, phrase) for name, intent in catalogue.intents.items() for phrase in intent.keywords]

    kept = []
    for example in candidates:
        text = normalize(example.heard, language)
        if len(text.split()) < MIN_WORDS or text == normalize(example.source, language):
            continue
        if owner.get(text, example.intent) != example.intent or len(heard_for[text]) > 1:
            continue
        if any(name != example.intent and contains_phrase(text, phrase) for name, phrase in keywords):
            continue
        kept.append(example)
    report(f"{len(kept)} of {len(candidates)} transcripts differ from their example and clash with no other intent")
    catalogue_only = trained_classifier(catalogue, ())
    kept = [example for example in kept if close_to_source(example, catalogue_only)]
    report(f"{len(kept)} of them stay close to their example or read as its intent already")

    for round_number in range(1, 6):
        classifier = trained_classifier(catalogue, kept)
        misread = [example for example in kept if classifier.classify(example.heard).intent != example.intent]
        report(f"round {round_number}: {len(misread)} read as another intent, dropped")
        if not misread:
            break
        kept = [example for example in kept if example not in misread]
    return kept


def close_to_source(example: HeardExample, catalogue_only: IntentClassifier) -> bool:
    """The transcript is at least `MIN_SIMILARITY` similar to its example, or the classifier trained on the catalogue
    alone already reads it as the example's intent by at least `MIN_MARGIN` over the next (then it teaches nothing
    new about ordinary words)."""
    language = catalogue_only.language
    heard, source = normalize(example.heard, language), normalize(example.source, language)
    if difflib.SequenceMatcher(None, heard.split(), source.split(), autojunk=False).ratio() >= MIN_SIMILARITY:
        return True
    score = catalogue_only.classify(heard)
    return (
        score is not None
        and score.intent == example.intent
        and score.confidence - score.runner_up_confidence >= MIN_MARGIN
    )


def trained_classifier(catalogue: Catalogue, heard: Iterable[HeardExample]) -> IntentClassifier:
    """The classifier the engine would train with `heard` as the catalogue's heard examples."""
    extra = usable(list(heard), catalogue, "candidates")
    return DialogueEngine(
        catalogue,
        IntentClassifier(
            {name: intent.examples + extra.get(name, ()) for name, intent in catalogue.intents.items()},
            catalogue.language,
        ),
    ).classifier


def transcribe_all(
    pairs: Sequence[tuple[str, str]], renditions: int, catalogue: Catalogue, workers: int, cache: Path | None = None
) -> list[HeardExample]:
    """Speak and transcribe every pair `renditions` times; results in a fixed order whatever the thread timing.

    The first rendition of every example comes before any second one. With `cache` (JSON lines), transcripts
    already in it are taken from it and new ones are appended as they are made, so that an interrupted run goes on
    where it stopped.
    """
    from telephony.settings import load_settings
    from telephony.voice_services import asr_options, recognizer_model_dir
    from voice.asr import SpeechRecognizer

    language = catalogue.language
    settings = load_settings(language=language)
    options = asr_options(settings, catalogue)
    recognizer = SpeechRecognizer(recognizer_model_dir(settings), options)
    speaker = Speaker()
    jobs = [(intent, text, rendition(text, index, language)) for index in range(renditions) for intent, text in pairs]
    known: dict[tuple[str, str, str], HeardExample] = {}
    if cache is not None and cache.is_file():
        for line in cache.read_text(encoding="utf-8").splitlines():
            example = HeardExample.model_validate_json(line)
            known[example.intent, example.source, example.voice] = example
    started = time.perf_counter()

    def run(job: tuple[str, str, Rendition]) -> HeardExample:
        intent, text, voice = job
        cached = known.get((intent, text, voice.describe()))
        if cached is not None:
            return cached
        transcript = recognizer.transcribe(speaker.audio(text, voice))
        # "-" stands for no words, which the consistency check drops (a heard example is never empty).
        return HeardExample(intent=intent, heard=transcript.text or "-", source=text, voice=voice.describe())

    results = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done, result in enumerate(pool.map(run, jobs), start=1):
            results.append(result)
            if cache is not None and (result.intent, result.source, result.voice) not in known:
                with cache.open("a", encoding="utf-8") as handle:
                    handle.write(result.model_dump_json() + "\n")
            if done % 50 == 0 or done == len(jobs):
                elapsed = time.perf_counter() - started
                print(f"{done}/{len(jobs)} transcribed, {elapsed:.0f} s", file=sys.stderr, flush=True)
    return results


def provenance(language: str, renditions: int, share: float, spoken: int, transcripts: int) -> dict[str, object]:
    """How the file was made, written at its top."""
    made = {
        "generator": "python -m qa.heard_examples",
        "command": f"python -m qa.heard_examples --language {language} --renditions {renditions} --share {share:g}",
        "recogniser": "the server's (VOICE_AGENT_WHISPER_MODEL, else Whisper tiny.en for English and multilingual "
        "Whisper base for Dutch), with its options",
        "line": "8 kHz G.711 mu-law round trip (qa.caller_audio.telephone_round_trip)",
        "examples_spoken": spoken,
        "renditions_per_example": renditions,
        "transcripts": transcripts,
    }
    if language == "nl":
        voices = {
            "train_accents": [DUTCH_ACCENT],
            "train_variants": list(DUTCH_TRAIN_VARIANTS),
            "held_out_accents": [],
            "held_out_variants": [*DUTCH_HELD_OUT_VARIANTS, "espeak-ng's default voice"],
        }
    else:
        voices = {
            "train_accents": list(TRAIN_ACCENTS),
            "train_variants": list(TRAIN_VARIANTS),
            "held_out_accents": list(HELD_OUT_ACCENTS),
            "held_out_variants": [*HELD_OUT_VARIANTS, "espeak-ng's default voice"],
            "piper_paces": list(PIPER_PACES),
        }
    return {
        **made,
        **voices,
        "words_per_minute": list(WORDS_PER_MINUTE),
        "pitches": list(PITCHES),
        "line_noise_snr_db": list(NOISE_SNRS_DB),
        "never_spoken": "every benchmarks/data/intent_eval_* case and the fixture calls' say turns",
        "filter": filter_provenance(),
    }


def filter_provenance() -> str:
    """The filter the kept transcripts passed, in words."""
    return (
        f"keep_consistent: at least {MIN_WORDS} words, no clash with another intent's example or keyword, similarity "
        f"to the example at least {MIN_SIMILARITY:g} or read as its intent by the catalogue alone with margin "
        f"{MIN_MARGIN:g}, read as its intent by the classifier trained with the kept ones"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--language", default="en", choices=["en", "nl"])
    parser.add_argument("--renditions", type=int, default=2, help="voices per catalogue example")
    parser.add_argument("--limit", type=int, help="speak only the first N examples (for a quick look)")
    parser.add_argument("--share", type=float, default=1.0, help="fraction of each intent's examples to speak")
    parser.add_argument("--workers", type=int, default=2, help="transcriptions in parallel")
    parser.add_argument("--prompts", type=Path, default=REPO / "prompts")
    parser.add_argument("--output", type=Path, help="default: prompts/<lang>/heard_examples.yaml")
    parser.add_argument("--cache", type=Path, help="raw transcripts (JSON lines): reused, and new ones appended")
    parser.add_argument(
        "--refilter",
        action="store_true",
        help="transcribe nothing: pass the examples of the existing output file through the current filter again "
        "(its provenance is kept, the filter updated)",
    )
    args = parser.parse_args(argv)

    catalogue = load_catalogue(args.prompts, args.language)
    output = args.output or heard_examples_path(args.prompts, args.language)
    if args.refilter:
        existing = HeardExamplesFile.model_validate(yaml.safe_load(output.read_text("utf-8")))
        made, candidates = {**existing.provenance, "filter": filter_provenance()}, list(existing.examples)
        print(f"{len(candidates)} heard examples of {output} filtered again", file=sys.stderr)
    else:
        pairs = spoken_examples(catalogue, args.share)[: args.limit]
        print(f"{len(pairs)} examples x {args.renditions} renditions", file=sys.stderr)
        candidates = transcribe_all(pairs, args.renditions, catalogue, args.workers, args.cache)
        made = provenance(args.language, args.renditions, args.share, len(pairs), len(candidates))
    kept = keep_consistent(candidates, catalogue, report=lambda line: print(line, file=sys.stderr))

    header = (
        "# Generated by `python -m qa.heard_examples` (qa/heard_examples.py): do not edit by hand, run it again.\n"
        "# The catalogue's examples as the recogniser heard them over the phone, each labelled with its example's\n"
        "# intent; the engine trains on them beside the examples (voice/heard_examples.py, docs/catalogue.md).\n"
    )
    body = {"provenance": made, "examples": [example.model_dump() for example in kept]}
    output.write_text(header + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=120), "utf-8")
    print(f"{len(kept)} heard examples written to {output}", file=sys.stderr)


if __name__ == "__main__":
    main()
