"""Piper text-to-speech (voice en_US-joe-medium by default), one chunk per sentence.

The only module that imports `piper`. piper-tts is GPL-3.0, so it stays an optional backend behind
`voice.tts.SpeechSynthesizer`: install it with `pip install piper-tts` (or the `piper` extra) to use it.
"""

from __future__ import annotations

import os

# onnxruntime looks up a telemetry host after import; there is no internet here, and nothing may try to reach it.
# Must be set before piper imports onnxruntime.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime

from voice.piper_options import PiperOptions

try:
    from piper import PiperConfig, PiperVoice, SynthesisConfig
except ImportError as error:  # pragma: no cover (the dev extras install it)
    raise ImportError(
        "voice.tts_piper needs the optional Piper backend (GPL-3.0): pip install piper-tts "
        "(or pip install 'voice-agent[piper]'), or plug in another voice.tts.SpeechSynthesizer"
    ) from error

# Piper's espeak-ng phonemizer is process-global C state and not thread-safe across voices; Piper 1.8 locks it,
# older releases do not. One lock for all voices also keeps two syntheses from splitting two cores between them,
# which makes both late instead of one on time. Held for one sentence at a time, never across a yield.
_SYNTHESIS_LOCK = threading.Lock()


class _ShrinkingSession:
    """An onnxruntime session whose every run releases its arena memory afterwards (`release_memory_after_run`).

    Piper calls `session.run(None, inputs)` with no run options; this passes ours and forwards everything else.
    """

    def __init__(self, session: onnxruntime.InferenceSession) -> None:
        self._session = session
        self._run_options = onnxruntime.RunOptions()
        self._run_options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    def run(
        self,
        output_names: list[str] | None,
        input_feed: dict[str, Any],
        run_options: onnxruntime.RunOptions | None = None,
    ) -> list[Any]:
        return self._session.run(output_names, input_feed, run_options or self._run_options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


class PiperSynthesizer:
    """A Piper voice, loaded once; implements `voice.tts.SpeechSynthesizer`."""

    def __init__(self, model_path: Path, config_path: Path, options: PiperOptions | None = None) -> None:
        """Load the voice (under a second).

        Args:
            model_path: the voice's `.onnx` file, from `voice.models.piper_voice_files`.
            config_path: its `.onnx.json` config.
            options: how to speak; the defaults are calm.

        Raises:
            ValueError: `options.onnx_threads` is negative.
        """
        self.options = options or PiperOptions()
        if self.options.onnx_threads < 0:
            raise ValueError(f"onnx_threads must be 0 (onnxruntime's default) or more, got {self.options.onnx_threads}")
        # PiperVoice.load gives onnxruntime no thread count (so it takes every core): build the session here and
        # hand it to PiperVoice, exactly as load() does otherwise.
        session_options = onnxruntime.SessionOptions()
        session_options.intra_op_num_threads = self.options.onnx_threads
        session_options.inter_op_num_threads = 1
        with open(config_path, encoding="utf-8") as config_file:
            config = PiperConfig.from_dict(json.load(config_file))
        session = onnxruntime.InferenceSession(
            str(model_path), sess_options=session_options, providers=["CPUExecutionProvider"]
        )
        self._voice = PiperVoice(
            session=_ShrinkingSession(session) if self.options.release_memory_after_run else session,
            config=config,
        )
        self._syn_config = SynthesisConfig(
            length_scale=self.options.length_scale,
            noise_scale=self.options.noise_scale,
            noise_w_scale=self.options.noise_w_scale,
        )

    @property
    def sample_rate_hz(self) -> int:
        """Rate of the voice's audio: 22050 for the medium voices."""
        return self._voice.config.sample_rate

    def synthesize(self, text: str) -> Iterator[np.ndarray]:
        """Speak `text`, one chunk per sentence (Piper splits sentences with espeak-ng).

        Each step blocks for ~5% of the chunk's duration: step it through `voice.workers`.

        Args:
            text: one reply.

        Returns:
            An iterator of mono float32 arrays in -1..1 at `sample_rate_hz`, one per sentence, each peak-normalised
            by Piper; nothing for blank text.
        """
        if not text.strip():
            return
        chunks = iter(self._voice.synthesize(text, syn_config=self._syn_config))
        while True:
            # Step Piper's generator under the lock (phonemising happens on the first step), then yield outside it,
            # so a consumer that stops early never leaves the lock held.
            with _SYNTHESIS_LOCK:
                chunk = next(chunks, None)
            if chunk is None:
                return
            yield chunk.audio_float_array
