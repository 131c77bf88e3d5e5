"""Speech recognition: one caller utterance (16 kHz float samples) in, one `Transcript` out.

The only module that imports faster-whisper. The model is loaded once per process and shared by all calls; the
worker pool (`voice.workers`) runs `transcribe` off the event loop.

Noise must never become words: an open line, breathing or silence that slips past the VAD makes Whisper produce
"Thank you.", "you" or ". . .". Three checks stop that (their thresholds sit between what real speech and noise
scored on the clips in `audio_fixtures/real_speech/`; docs/benchmarks.md has the figures):
- Whisper's own rule, applied here rather than inside faster-whisper so that one place decides: drop a segment
  whose no-speech probability is high *and* whose average log-probability is low.
- Known hallucinations ("Thank you.", "you", "Thanks for watching.") are dropped when the no-speech probability is
  above a lower bar, so that the same words really spoken are kept.
- Text without a letter or a digit (". . .") is dropped.

The encoder window can be shorter than Whisper's 30 s (`AsrOptions.encoder_window_s`): faster-whisper pads every
utterance to 30 s before the encoder, so a 3 s turn costs the encoder as much as 30 s of speech.
`benchmarks/asr_window.py` measures time and word errors per window (docs/benchmarks.md).
"""

from __future__ import annotations

import os

# onnxruntime (imported by faster-whisper for its VAD) looks up a telemetry host after import; there is no
# internet here, and nothing may try to reach it. Must be set before the import.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.transcribe import Segment

from voice.events import Transcript

SAMPLE_RATE_HZ = 16_000
"""The only rate Whisper takes."""
FRAMES_PER_S = 100
"""Whisper's log-mel frames per second (10 ms hop)."""
FULL_WINDOW_S = 30
"""The window Whisper was trained on, and the one faster-whisper pads every utterance to."""

# What Whisper says on silence and noise, learned from subtitles in its training data. Compared after
# normalisation (lower case, no punctuation).
KNOWN_HALLUCINATIONS: frozenset[str] = frozenset(
    {
        "you",
        "thank you",
        "thank you very much",
        "thanks",
        "thanks for watching",
        "thank you for watching",
        "thanks for listening",
        "thank you for listening",
        "please subscribe",
        "subscribe",
        "bye",
        "okay",
        "oh",
        "so",
        "the end",
    }
)


@dataclass(frozen=True, slots=True)
class AsrOptions:
    """How the recogniser is loaded and how it decodes.

    Defaults chosen for two cores and Whisper tiny.en int8 (`benchmarks/asr_latency.py`; docs/benchmarks.md).
    """

    language: str = "en"
    """Language of the speech. Always passed: language detection on telephone-band audio is unreliable, and slow."""
    beam_size: int = 5
    """Beam width. With tiny.en the encoder dominates the time, so 5 costs no more than greedy (1) and makes fewer
    word errors over the phone."""
    no_speech_threshold: float = 0.6
    """Drop a segment when its no-speech probability is above this and `avg_logprob` is below
    `log_prob_threshold` (Whisper's rule); between what real speech and noise scored."""
    log_prob_threshold: float = -1.0
    """See `no_speech_threshold`."""
    hallucination_no_speech_threshold: float = 0.5
    """Drop a known hallucination ("Thank you.") when the no-speech probability is above this, however confident
    the words: on noise they come with a high one, really spoken with a low one."""
    cpu_threads: int = 1
    """Intra-op threads per transcription. On two cores one thread is as fast as two for tiny.en (the decoder is
    sequential and its matrices small), and it leaves the other core to a synthesis running beside it."""
    num_workers: int = 2
    """Transcriptions that run in parallel (CTranslate2 model replicas); match the worker pool's size, or two
    utterances that end together share one replica, which interleaves them and slows both."""
    initial_prompt: str | None = None
    """Text Whisper reads as if it came before every utterance; the server passes the greeting
    (`voice.asr_prompt.catalogue_prompt`, measured in `benchmarks/asr.py` and `benchmarks/fairness.py`). None for no
    prompt."""
    hotwords: str | None = None
    """Words to favour, given to faster-whisper as hint phrases (also a prompt, placed after `initial_prompt`);
    None for none."""
    compression_ratio_threshold: float | None = 2.4
    """Whisper's sign of a decoding loop: text that gzip compresses more than this many times. Such a result is
    decoded once more with repeated 3-grams forbidden (costs one decode, only then); None never re-decodes."""
    encoder_window_s: int = 15
    """Seconds of audio the encoder sees: an utterance is padded to this (or to its own length rounded up to a whole
    second, when longer) instead of to Whisper's 30 s; 30 changes nothing, 0 pads to the utterance's length alone.
    15 s halved the time of a transcription with no more word errors than 30 s on the real recordings over the phone;
    10 s and less make more errors on utterances that fill most of the window (`benchmarks/asr_window.py`,
    docs/benchmarks.md)."""

    def __post_init__(self) -> None:
        for name in ("beam_size", "cpu_threads", "num_workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"AsrOptions.{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.encoder_window_s <= FULL_WINDOW_S:
            raise ValueError(
                f"AsrOptions.encoder_window_s must be 0-{FULL_WINDOW_S} seconds, got {self.encoder_window_s}"
            )


class SpeechRecognizer:
    """Whisper, loaded once; `transcribe` turns one utterance into a `Transcript`.

    Safe to call from several threads: up to `AsrOptions.num_workers` calls run in parallel, more wait their turn
    inside CTranslate2.
    """

    def __init__(self, model_dir: Path, options: AsrOptions | None = None) -> None:
        """Load the model (a second or so).

        Args:
            model_dir: a CTranslate2 Whisper model directory, from `voice.models.whisper_model_dir`.
            options: decoding options; the defaults suit tiny.en on two cores.

        Raises:
            ValueError: the model is English-only and `options.language` is not "en".
        """
        self.options = options or AsrOptions()
        # float16 weights fail on CPU and "default" converts them to float32, which is slower: int8 it is.
        # local_files_only: a path is never downloaded, but make sure nothing ever tries.
        self._model = WindowedWhisper(
            str(model_dir),
            window_s=self.options.encoder_window_s,
            device="cpu",
            compute_type="int8",
            cpu_threads=self.options.cpu_threads,
            num_workers=self.options.num_workers,
            local_files_only=True,
        )
        if not self._model.model.is_multilingual and self.options.language != "en":
            raise ValueError(
                f"the Whisper model in {model_dir} is English-only, but language {self.options.language!r} was "
                "asked for: configure a multilingual model (such as Whisper base) or use language 'en'"
            )

    def transcribe(self, samples_16k: np.ndarray, start_ms: int = 0) -> Transcript:
        """Recognise one utterance. Blocking for tenths of a second: run it through `voice.workers`.

        Args:
            samples_16k: mono float samples in -1..1 at 16 kHz (float32 preferred), one utterance as cut by the VAD.
            start_ms: where the utterance starts, in milliseconds from the start of the call.

        Returns:
            The words, or empty text with confidence 0.0 when there was no speech. `confidence` is
            `exp(mean avg_logprob)` of the kept segments, weighted by their duration, in 0..1 (the geometric mean of
            the token probabilities). On the real clips: 0.69-0.95 for recorded speech, 0.57-0.93 over a telephone
            round trip; lone short words ("agent", "no", synthesised) over the phone come out lower, at about 0.45-0.6.
            `start_ms`..`end_ms` spans the whole input.

        Raises:
            ValueError: `samples_16k` is not a one-dimensional array of floats.
        """
        samples = _as_float32_mono(samples_16k)
        end_ms = start_ms + round(samples.size * 1000 / SAMPLE_RATE_HZ)
        if samples.size == 0:
            return Transcript("", 0.0, start_ms, end_ms)

        kept = self._decode(samples)
        text = " ".join(segment.text.strip() for segment in kept).strip()
        if not kept or not text:
            return Transcript("", 0.0, start_ms, end_ms)
        return Transcript(text, _confidence(kept), start_ms, end_ms)

    def _decode(self, samples: np.ndarray) -> list[Segment]:
        segments = self._segments(samples, no_repeat_ngram_size=0)
        threshold = self.options.compression_ratio_threshold
        if threshold is not None and any(segment.compression_ratio > threshold for segment in segments):
            # A decoding loop ("Hi, sir. Hi, sir. ..." to the token limit, seen on synthetic accented speech): decode
            # once more with repeated 3-grams forbidden. Only then, because digit strings legitimately repeat.
            segments = self._segments(samples, no_repeat_ngram_size=3)
        return [segment for segment in segments if self._is_speech(segment)]

    def _segments(self, samples: np.ndarray, no_repeat_ngram_size: int) -> list[Segment]:
        options = self.options
        segments, _info = self._model.transcribe(
            samples,
            language=options.language,
            beam_size=options.beam_size,
            # One temperature: a fallback list re-decodes up to five more times on hard audio (5-9x the time).
            temperature=0.0,
            # Each utterance stands alone; carrying text over lets one hallucination seed the next.
            condition_on_previous_text=False,
            # Our own streaming VAD has already cut the utterance.
            vad_filter=False,
            without_timestamps=True,
            # The no-speech rule is applied below, in one place, with the hallucination check.
            no_speech_threshold=None,
            log_prob_threshold=None,
            initial_prompt=options.initial_prompt or None,
            hotwords=options.hotwords or None,
            no_repeat_ngram_size=no_repeat_ngram_size,
        )
        # faster-whisper decodes lazily: consume the generator here, inside the worker thread.
        return list(segments)

    def _is_speech(self, segment: Segment) -> bool:
        options = self.options
        if segment.no_speech_prob > options.no_speech_threshold and segment.avg_logprob < options.log_prob_threshold:
            return False
        words = _normalize(segment.text)
        if not words:
            return False
        return not (
            words in KNOWN_HALLUCINATIONS and segment.no_speech_prob > options.hallucination_no_speech_threshold
        )


def trim_padding(features: np.ndarray, window_s: int) -> np.ndarray:
    """Log-mel `features` padded to 30 s, cut back to `window_s` seconds or the speech's length rounded up to a whole
    second, whichever is longer.

    The padding faster-whisper adds is exact zeros (`pad_or_trim`); a real log-mel frame is never all zeros, so the
    speech ends after the last frame with a non-zero value. Features already shorter are returned as they are.
    """
    window_frames = window_s * FRAMES_PER_S
    if features.shape[-1] <= window_frames:
        return features
    flat = features.reshape(-1, features.shape[-1])
    content = np.flatnonzero(np.any(flat != 0, axis=0))
    used_frames = int(content[-1]) + 1 if content.size else 0
    keep = max(window_frames, -(-used_frames // FRAMES_PER_S) * FRAMES_PER_S, FRAMES_PER_S)
    return features[..., :keep] if keep < features.shape[-1] else features


class WindowedWhisper(WhisperModel):
    """faster-whisper's model, with its encoder window cut to `window_s` seconds (see `trim_padding`).

    A subclass because faster-whisper pads the features to 30 s inside `generate_segments` and has no option to stop
    it; `encode` is the one method that sees the padded features before the encoder, which accepts fewer frames.
    Stateless, so one model serves several threads.
    """

    def __init__(self, model_size_or_path: str, *, window_s: int = FULL_WINDOW_S, **kwargs: Any) -> None:
        super().__init__(model_size_or_path, **kwargs)
        self.window_s = window_s

    def encode(self, features: np.ndarray) -> Any:
        if self.window_s < FULL_WINDOW_S:
            features = trim_padding(features, self.window_s)
        return super().encode(features)


def _confidence(segments: Iterable[Segment]) -> float:
    # avg_logprob is the mean log-probability per token; exp of it is the geometric-mean token probability, a
    # per-token confidence that does not shrink with the length of the utterance.
    weighted_sum, total_s = 0.0, 0.0
    for segment in segments:
        duration_s = max(segment.end - segment.start, 0.01)
        weighted_sum += segment.avg_logprob * duration_s
        total_s += duration_s
    return min(1.0, max(0.0, math.exp(weighted_sum / total_s)))


_NOT_WORD = re.compile(r"[^\w\s]+|_")


def _normalize(text: str) -> str:
    """Lower case, punctuation removed, spaces collapsed: "Thank you." -> "thank you"."""
    return " ".join(_NOT_WORD.sub(" ", unicodedata.normalize("NFKC", text).lower()).split())


def _as_float32_mono(samples: np.ndarray) -> np.ndarray:
    samples = np.asarray(samples)
    if samples.ndim != 1:
        raise ValueError(f"expected mono samples as a 1-D array, got shape {samples.shape}; pass one channel")
    if not np.issubdtype(samples.dtype, np.floating):
        raise ValueError(
            f"expected float samples in -1..1, got dtype {samples.dtype}; convert PCM16 with samples / 32768"
        )
    return np.ascontiguousarray(samples, dtype=np.float32)
