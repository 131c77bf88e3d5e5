"""How the Piper voice speaks: its options, apart from `voice.tts_piper`, so that settings can offer them as knobs
without importing Piper (an optional, GPL-3.0 backend)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PiperOptions:
    """How Piper speaks; defaults measured on the replies in prompts/en (`benchmarks/tts_first_audio.py`)."""

    length_scale: float = 1.2
    """The voice's pace: how long each sound lasts, 1.0 being the voice's own and above 1 slower. 1.2 (about 186
    words per minute over the catalogue with en_US-joe-medium, ~195 on short replies) is calmer than the voice's
    own pace, which sounds hurried on the phone, and keeps the English greeting under 7 s; slower paces stretch every
    sound and keep callers waiting."""
    noise_scale: float = 0.667
    """Generator noise (voice variation); the voice's own default."""
    noise_w_scale: float = 0.8
    """Phoneme width noise (rhythm variation); the voice's own default."""
    onnx_threads: int = 1
    """Intra-op threads of the ONNX session; 0 for onnxruntime's default (one per core). Two threads make a first
    sentence a little sooner when nothing else runs, but beside a transcription both get slower (`voice.workers`)."""
    release_memory_after_run: bool = True
    """Hand onnxruntime's working memory back after every sentence (arena shrinkage). The voice's intermediate
    tensors grow with the sentence's length, and without this the session keeps the largest ever needed, about three
    times the memory. It costs some time on every synthesis, but the server synthesises its fixed replies once at
    start-up and serves them from the phrase cache."""
