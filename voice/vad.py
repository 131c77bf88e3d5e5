"""Streaming voice-activity detection: Silero VAD v6, shipped in this package, run window by window at the input rate.

The model (`voice/data/silero_vad.onnx`, MIT, Silero Team; the licence is beside it) is the ONNX export that the
`silero-vad` package ships (6.2.3) and that pipecat-ai bundles, byte for byte. It scores 32 ms windows at two rates:
16 kHz (512 samples, with the 64 samples before them as context) and half that (256 samples, with 32). So audio at
the input rate is scored as it arrives when the input is at one of those rates: no resampler sits in front of the
VAD, and the 60-115 ms that a streaming resampler holds back (`voice.resample`) no longer delays barge-in or the end
of a turn. Other input rates are resampled to 16 kHz by the caller (`voice.pipeline`).

Each window is scored with the context and the recurrent state (2 x 1 x 128) left by the previous window, which is
what Silero's own wrapper does for a whole recording, so the probabilities are the whole-buffer ones however the
audio is chunked (tests/test_vad.py). Windows are run one by one: this export treats a batch's rows as separate
streams, not as consecutive steps. One window costs about 0.08 ms on one core.

pipecat resets the model's state every 2 s of clear non-speech, because long silence at the lower rate left it
under-reporting the speech that followed. We measured no such effect with this model on our clips: speech after
0.5 to 90 s of digital silence or -60 dBFS line noise, at the lower rate through 8-bit companding, was found at the
same window (within 32 ms) and as voiced as after a short lead (docs/benchmarks.md). So the state is kept for the
whole call, and the results depend on the audio alone.

The file is checked against its pinned SHA-256 and its inputs and outputs when it is loaded (once per process: the
session is shared, onnxruntime sessions may be run from several threads at once); a missing, replaced or different
model stops the start-up with a message rather than failing in the middle of a call. Each `StreamingVad` holds only
its own state, about 1 KB.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import numpy as np

from voice.model_integrity import verify_sha256
from voice.models import ModelNotFound

# onnxruntime looks up a telemetry host some seconds after import; our machines have no internet. This must run
# before anything imports onnxruntime, which is why it is imported inside `_vad_session` only.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

MODEL_PATH = Path(__file__).resolve().parent / "data" / "silero_vad.onnx"
"""Silero VAD v6 (ONNX), shipped as package data."""
MODEL_SHA256 = "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3"
"""The SHA-256 of `MODEL_PATH`: silero-vad 6.2.3's `silero_vad.onnx`."""
WINDOW_MS = 32
"""Audio behind each probability, at either rate."""
_CONTEXT_MS = 4
SAMPLE_RATES_HZ = (16_000, 16_000 // 2)
"""The rates the model scores directly; audio at any other rate must be resampled to 16 kHz first."""
DEFAULT_SAMPLE_RATE_HZ = 16_000
_STATE_SHAPE = (2, 1, 128)
_INPUTS = {"input": 2, "state": 3, "sr": 0}
"""The model's inputs and their ranks: samples (batch x context + window), recurrent state, rate."""


class VadModelError(ModelNotFound):
    """The VAD model file is not the model this module drives (its inputs or outputs differ)."""


def window_samples(sample_rate_hz: int) -> int:
    """Samples scored per model step at `sample_rate_hz` (512 at 16 kHz, 256 at half that)."""
    return sample_rate_hz * WINDOW_MS // 1000


def context_samples(sample_rate_hz: int) -> int:
    """Samples of the previous window prepended to each window (64 at 16 kHz, 32 at half that)."""
    return sample_rate_hz * _CONTEXT_MS // 1000


def load_session(path: Path, expected_sha256: str) -> Any:
    """An onnxruntime session of the Silero VAD model at `path`, after checking its bytes and its signature.

    Raises:
        ModelNotFound: the file does not exist.
        voice.model_integrity.ModelIntegrityError: its SHA-256 is not `expected_sha256`.
        VadModelError: its inputs or outputs are not those of Silero VAD v5/v6.
    """
    what = "Silero VAD model (shipped in the voice package as voice/data/silero_vad.onnx)"
    if not path.is_file():
        raise ModelNotFound(
            f"{what}: {path} does not exist; it is package data: reinstall the package (pip install -e .) or "
            "restore the file from the repository"
        )
    verify_sha256(path, expected_sha256, what)
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # One window is a few kFLOPs: threads would cost more than they save, and every call shares the session.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    # Fail at load time, naming what differs, rather than with an opaque onnxruntime error in the middle of a call.
    inputs = {tensor.name: list(tensor.shape) for tensor in session.get_inputs()}
    outputs = [list(tensor.shape) for tensor in session.get_outputs()]
    ranks = {name: len(shape) for name, shape in inputs.items()}
    if ranks != _INPUTS or inputs["state"][0] != _STATE_SHAPE[0] or inputs["state"][2] != _STATE_SHAPE[2]:
        raise VadModelError(
            f"{what}: {path} has inputs {inputs}, expected input [batch, samples], state {list(_STATE_SHAPE)} "
            "(batch 1) and a scalar sr, as in Silero VAD v5/v6"
        )
    if len(outputs) != 2:
        raise VadModelError(f"{what}: {path} has {len(outputs)} outputs, expected 2 (probability and state)")
    return session


@functools.cache
def _vad_session() -> Any:
    """The shipped model's session, loaded on first use and shared by every stream in the process."""
    return load_session(MODEL_PATH, MODEL_SHA256)


def load_vad_model() -> None:
    """Load the shared VAD model now (at start-up) rather than on the first call's first window.

    Raises:
        ModelNotFound: the model file is missing, is not the pinned file, or is not a Silero VAD model; the
            message says which and what to do.
    """
    _vad_session()


class StreamingVad:
    """Speech probabilities for one audio stream at one rate, fed in chunks of any size.

    Not thread-safe: one instance per call, used by one task at a time. Instances share the model, not state.
    """

    def __init__(self, sample_rate_hz: int = DEFAULT_SAMPLE_RATE_HZ, session: Any | None = None) -> None:
        """Load the shared model if needed and start with fresh state.

        Args:
            sample_rate_hz: the rate of the audio `process` takes: 16 kHz or half that (`SAMPLE_RATES_HZ`).
            session: a session from `load_session`, instead of the shared one of the shipped model (for tests).

        Raises:
            ValueError: the model cannot score audio at `sample_rate_hz`.
            ModelNotFound: the model cannot be loaded.
        """
        if sample_rate_hz not in SAMPLE_RATES_HZ:
            raise ValueError(
                f"the VAD scores audio at {' or '.join(map(str, SAMPLE_RATES_HZ))} Hz, not {sample_rate_hz!r}: "
                "resample it to 16 kHz first"
            )
        self.sample_rate_hz = sample_rate_hz
        self._session = session if session is not None else _vad_session()
        self._window = window_samples(sample_rate_hz)
        self._context_size = context_samples(sample_rate_hz)
        self._rate = np.array(sample_rate_hz, dtype=np.int64)
        self.reset()

    @property
    def window_ms(self) -> float:
        """Duration of the audio behind each probability: 32.0 ms at either rate."""
        return self._window * 1000 / self.sample_rate_hz

    def reset(self) -> None:
        """Forget everything heard so far: model state, context and buffered samples."""
        self._state = np.zeros(_STATE_SHAPE, dtype=np.float32)
        # Zero context for the first window, as in the whole-buffer computation.
        self._context = np.zeros(self._context_size, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Score the windows that `samples` completes; keep the rest for the next call.

        Args:
            samples: mono float samples in [-1, 1] at `sample_rate_hz`, any length (empty is fine).

        Returns:
            float32 speech probabilities in [0, 1], one per completed window, oldest first; empty when no window
            was completed.

        Raises:
            ValueError: `samples` is not a 1-D float array.
        """
        samples = np.asarray(samples)
        if samples.ndim != 1:
            raise ValueError(f"expected a 1-D array of mono samples, got shape {samples.shape}")
        if not np.issubdtype(samples.dtype, np.floating):
            # Casting int16 PCM without scaling would give values 32768 times too large and silently wrong results.
            raise ValueError(f"expected float samples in [-1, 1], got dtype {samples.dtype}; divide PCM16 by 32768")
        if self._pending.size:
            samples = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        else:
            samples = samples.astype(np.float32, copy=False)

        window = self._window
        window_count = samples.size // window
        used = window_count * window
        # Copy: the remainder must not keep a view on the caller's buffer, which they may reuse.
        self._pending = samples[used:].copy()
        probabilities = np.empty(window_count, dtype=np.float32)
        step = np.empty((1, self._context_size + window), dtype=np.float32)
        for index in range(window_count):
            step[0, : self._context_size] = self._context
            step[0, self._context_size :] = samples[index * window : (index + 1) * window]
            output, self._state = self._session.run(None, {"input": step, "state": self._state, "sr": self._rate})
            probabilities[index] = output.reshape(-1)[0]
            self._context = step[0, -self._context_size :].copy()
        return probabilities
