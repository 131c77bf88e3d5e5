"""Smart Turn v3.2: how likely the caller has finished their turn, judged from how the last seconds sound.

The words say whether a request is complete ("I want to pay my bill"), but not whether the caller is done: "I have a
question about" - pause - "my last bill" reads complete after the first part to nobody, yet "My internet is not
working" may go on. Smart Turn (Daily, BSD-2-Clause, 23 languages including Dutch) hears the intonation and rhythm
of the end of an utterance: a falling, finished phrase scores near 1, a phrase left hanging near 0. It is one signal
of the end-of-turn decision (`voice.end_of_turn`), beside the engine's reading of the words and the silence.

The model takes Whisper's log-mel features (80 bins, 10 ms hop) of exactly 8 s of 16 kHz audio: the last 8 s of
the turn, zero-padded at the start when shorter, normalised to zero mean and unit variance first. faster-whisper's
feature extractor computes the same features, so it is reused rather than written again. One run takes tens of
milliseconds on one thread: run it through `voice.workers`, never on the event loop.

The file ships in this package (voice/data/, licence beside it) and is checked against its pinned SHA-256 before
it is loaded.
"""

from __future__ import annotations

import os

# onnxruntime looks up a telemetry host after import; there is no internet here, and nothing may try to reach it.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime
from faster_whisper.feature_extractor import FeatureExtractor

from voice.model_integrity import verify_sha256

SAMPLE_RATE_HZ = 16_000
"""The rate the model takes."""
WINDOW_S = 8
"""Seconds of audio the model hears: the end of the turn."""
SMART_TURN_FILE = Path(__file__).resolve().parent / "data" / "smart-turn-v3.2-cpu.onnx"
"""The bundled model, from the `pipecat-ai` 1.14.0 wheel (pipecat/audio/turn/smart_turn/data/)."""
SMART_TURN_SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"
"""The pinned SHA-256 of `SMART_TURN_FILE`."""

_WINDOW_SAMPLES = WINDOW_S * SAMPLE_RATE_HZ
# The variance floor of the waveform normalisation the model was trained with (Hugging Face's feature extractor).
_NORM_EPS = 1e-7


@dataclass(frozen=True, slots=True)
class TurnModelOptions:
    """Whether and how Smart Turn runs."""

    enabled: bool = False
    """Score the end of each pause with Smart Turn (`voice.turn_model`); False: the words and the silence decide.
    Off by default: each pause costs one more job in the shared model pool, and on a loaded two-core machine the
    replay suite's simultaneous calls then waited over 10 s for a worker (docs/benchmarks.md)."""
    threads: int = 1
    """Intra-op threads of the ONNX session. One suits two cores: the other core stays free for a transcription."""

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise ValueError(f"TurnModelOptions.threads must be at least 1, got {self.threads}")


class SmartTurn:
    """The Smart Turn model, loaded once per process; `probability` scores one turn's ending.

    Safe to call from several threads (onnxruntime sessions are).
    """

    def __init__(
        self,
        model_file: Path = SMART_TURN_FILE,
        sha256: str = SMART_TURN_SHA256,
        options: TurnModelOptions | None = None,
    ) -> None:
        """Check the file's SHA-256 and load it.

        Args:
            model_file: the ONNX file; default the bundled Smart Turn v3.2.
            sha256: its pinned SHA-256.
            options: threads; the defaults suit two cores.

        Raises:
            voice.models.ModelNotFound: the file does not exist.
            voice.model_integrity.ModelIntegrityError: its bytes are not the pinned ones.
        """
        self.options = options or TurnModelOptions()
        verify_sha256(model_file, sha256, "Smart Turn v3.2 end-of-turn model")
        session_options = onnxruntime.SessionOptions()
        session_options.intra_op_num_threads = self.options.threads
        session_options.inter_op_num_threads = 1
        session_options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        self._session = onnxruntime.InferenceSession(
            str(model_file), sess_options=session_options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name
        self._features = FeatureExtractor(feature_size=80, sampling_rate=SAMPLE_RATE_HZ, chunk_length=WINDOW_S)

    def features(self, samples_16k: np.ndarray) -> np.ndarray:
        """The model's input for one turn: log-mel features of its last 8 s, shape (80, 800), float32.

        Raises:
            ValueError: `samples_16k` is not a one-dimensional array of floats.
        """
        samples = np.asarray(samples_16k)
        if samples.ndim != 1 or not np.issubdtype(samples.dtype, np.floating):
            raise ValueError(f"expected 1-D float samples at 16 kHz, got {samples.dtype} of shape {samples.shape}")
        window = np.zeros(_WINDOW_SAMPLES, dtype=np.float32)
        tail = samples[-_WINDOW_SAMPLES:]
        if tail.size:
            window[-tail.size :] = tail
        window = (window - window.mean()) / np.sqrt(window.var() + _NORM_EPS)
        # No extra padding: 8 s give 801 frames, of which the extractor drops the last.
        return np.asarray(self._features(window, padding=0), dtype=np.float32)

    def probability(self, samples_16k: np.ndarray) -> float:
        """How likely the turn is over, in [0, 1], from its audio up to now. Blocking (tens of ms): run it in
        `voice.workers`.

        Args:
            samples_16k: mono float samples in -1..1 at 16 kHz: the turn so far, ending where the caller fell silent
                (a little trailing silence is fine); only the last 8 s count.

        Raises:
            ValueError: `samples_16k` is not a one-dimensional array of floats.
        """
        features = self.features(samples_16k)[np.newaxis]
        (output,) = self._session.run(None, {self._input: features})
        return float(np.clip(np.asarray(output).reshape(-1)[0], 0.0, 1.0))
