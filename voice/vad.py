"""Streaming voice-activity detection: Silero VAD run window by window on the model bundled with faster-whisper.

faster-whisper's public VAD (`faster_whisper.vad.get_speech_timestamps`) needs the whole recording at once. A call
arrives 20 ms at a time, so this module drives the same ONNX session itself: each 512-sample window at 16 kHz is
scored with the 64 samples before it as context and the LSTM state (h, c) left by the previous window, which is
exactly what `SileroVADModel.__call__` does for a whole buffer. The probabilities are therefore the whole-buffer ones,
however the audio is chunked. (One exception, on faster-whisper's side: 1.2.1 zeroes the last 64 samples of the last
window of a whole buffer, in place, so its score for that one window differs.)

The session is loaded once per process and shared (onnxruntime sessions may be run from several threads at once);
each `StreamingVad` holds only its own state, about 1 KB. This relies on an internal attribute of faster-whisper
(`SileroVADModel.session`), hence the pinned version in pyproject.toml and the equivalence test in tests/test_vad.py.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np

# onnxruntime looks up a telemetry host some seconds after import; our machines have no internet. This must run
# before anything imports onnxruntime, which is why faster_whisper is imported inside `_vad_session` only.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

SAMPLE_RATE_HZ = 16_000
"""The only rate the Silero model is run at here."""
WINDOW_SAMPLES = 512
"""Samples scored per model step (32 ms at 16 kHz); Silero v5+ accepts no other size at 16 kHz."""
CONTEXT_SAMPLES = 64
"""Samples of the previous window prepended to each window, as faster-whisper does."""
_STATE_SHAPE = (1, 1, 128)


@functools.cache
def _vad_session() -> Any:
    """The bundled Silero ONNX session, loaded on first use and shared by every stream in the process.

    Raises:
        RuntimeError: faster-whisper is missing, or its bundled model no longer has the inputs this module feeds.
    """
    try:
        from faster_whisper.vad import get_vad_model
    except ImportError as error:
        raise RuntimeError("streaming VAD needs faster-whisper==1.2.1 (with onnxruntime): pip install -e .") from error
    session = get_vad_model().session
    # Fail at load time, naming what changed, rather than with an opaque onnxruntime error in the middle of a call.
    inputs = {tensor.name: tensor.shape for tensor in session.get_inputs()}
    expected = {"input": [WINDOW_SAMPLES + CONTEXT_SAMPLES], "h": list(_STATE_SHAPE), "c": list(_STATE_SHAPE)}
    if set(inputs) != set(expected) or inputs["input"][1:] != expected["input"]:
        raise RuntimeError(
            f"faster-whisper's bundled Silero VAD has inputs {inputs}, expected input [n, "
            f"{WINDOW_SAMPLES + CONTEXT_SAMPLES}], h and c {list(_STATE_SHAPE)}: check the faster-whisper pin"
        )
    return session


def load_vad_model() -> None:
    """Load the shared VAD model now (at start-up) rather than on the first call's first window.

    Raises:
        RuntimeError: the model cannot be loaded; the message says what to install.
    """
    _vad_session()


class StreamingVad:
    """Speech probabilities for one audio stream, fed in chunks of any size.

    Not thread-safe: one instance per call, used by one task at a time. Instances share the model, not state.
    """

    def __init__(self) -> None:
        """Load the shared model if needed and start with fresh state.

        Raises:
            RuntimeError: the model cannot be loaded.
        """
        self._session = _vad_session()
        self.reset()

    @property
    def window_ms(self) -> float:
        """Duration of the audio behind each probability: 32.0 ms."""
        return WINDOW_SAMPLES * 1000 / SAMPLE_RATE_HZ

    def reset(self) -> None:
        """Forget everything heard so far: model state, context and buffered samples."""
        self._h = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(_STATE_SHAPE, dtype=np.float32)
        # Zero context for the first window, as in the whole-buffer computation.
        self._context = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    def process(self, samples_16k: np.ndarray) -> np.ndarray:
        """Score the windows that `samples_16k` completes; keep the rest for the next call.

        Args:
            samples_16k: mono float samples in [-1, 1] at 16 kHz, any length (empty is fine).

        Returns:
            float32 speech probabilities in [0, 1], one per completed 512-sample window, oldest first; empty when no
            window was completed.

        Raises:
            ValueError: `samples_16k` is not a 1-D float array.
        """
        samples = np.asarray(samples_16k)
        if samples.ndim != 1:
            raise ValueError(f"expected a 1-D array of mono samples, got shape {samples.shape}")
        if not np.issubdtype(samples.dtype, np.floating):
            # Casting int16 PCM without scaling would give values 32768 times too large and silently wrong results.
            raise ValueError(f"expected float samples in [-1, 1], got dtype {samples.dtype}; divide PCM16 by 32768")
        if self._pending.size:
            samples = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        else:
            samples = samples.astype(np.float32, copy=False)

        window_count = samples.size // WINDOW_SAMPLES
        used = window_count * WINDOW_SAMPLES
        # Copy: the remainder must not keep a view on the caller's buffer, which they may reuse.
        self._pending = samples[used:].copy()
        if window_count == 0:
            return np.zeros(0, dtype=np.float32)

        windows = samples[:used].reshape(window_count, WINDOW_SAMPLES)
        # Each window's context is the tail of the window before it; the first uses the tail kept from last call.
        contexts = np.empty((window_count, CONTEXT_SAMPLES), dtype=np.float32)
        contexts[0] = self._context
        contexts[1:] = windows[:-1, -CONTEXT_SAMPLES:]
        batch = np.concatenate([contexts, windows], axis=1)
        # The model treats the batch's rows as consecutive steps of one sequence (its LSTM carries h/c from row to
        # row), so one run over all completed windows equals running them one by one, and costs less.
        probabilities, self._h, self._c = self._session.run(None, {"input": batch, "h": self._h, "c": self._c})
        self._context = windows[-1, -CONTEXT_SAMPLES:].copy()
        return np.asarray(probabilities, dtype=np.float32).reshape(window_count)
