"""Streaming Silero VAD: equal to faster-whisper's whole-buffer results, per-stream state, sensible probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voice.vad import WINDOW_SAMPLES, StreamingVad
from voice.wavfile import read_wav

REAL_SPEECH_DIR = Path(__file__).resolve().parents[1] / "audio_fixtures" / "real_speech" / "audio"

# Every test runs the Silero VAD model.
pytestmark = pytest.mark.slow


def read_wav_16k(path: Path) -> np.ndarray:
    """A 16-bit mono 16 kHz WAV file as float32 samples in [-1, 1]."""
    samples, rate_hz = read_wav(path)
    assert rate_hz == 16_000, path
    return samples


@pytest.fixture(scope="module")
def birch_canoe() -> np.ndarray:
    return read_wav_16k(REAL_SPEECH_DIR / "harvard_birch_canoe.wav")


@pytest.fixture(scope="module")
def mr_quilter() -> np.ndarray:
    return read_wav_16k(REAL_SPEECH_DIR / "librispeech_mr_quilter.wav")


def stream(vad: StreamingVad, samples: np.ndarray, chunk_sizes: list[int]) -> np.ndarray:
    """Feed `samples` in chunks of the given sizes, cycling through them, and collect the probabilities."""
    results, position, turn = [], 0, 0
    while position < samples.size:
        size = chunk_sizes[turn % len(chunk_sizes)]
        results.append(vad.process(samples[position : position + size]))
        position += size
        turn += 1
    return np.concatenate(results)


def whole_buffer_probabilities(samples: np.ndarray) -> np.ndarray:
    """faster-whisper's own probabilities for every complete window of `samples`."""
    from faster_whisper.vad import get_vad_model

    window_count = samples.size // WINDOW_SAMPLES
    # One window of zeros more than needed: faster-whisper 1.2.1 zeroes the last 64 samples of the last window of
    # its input (an in-place write through a view), so the last window would not be the audio we streamed.
    padded = np.zeros((window_count + 1) * WINDOW_SAMPLES, dtype=np.float32)
    padded[: window_count * WINDOW_SAMPLES] = samples[: window_count * WINDOW_SAMPLES]
    return np.asarray(get_vad_model()(padded)).reshape(-1)[:window_count]


@pytest.mark.parametrize("chunk_sizes", [[160], [320], [333], [1000], [7, 2048, 160, 511, 513]])
def test_streaming_equals_whole_buffer(birch_canoe: np.ndarray, chunk_sizes: list[int]) -> None:
    expected = whole_buffer_probabilities(birch_canoe)

    streamed = stream(StreamingVad(), birch_canoe, chunk_sizes)

    assert streamed.shape == expected.shape == (birch_canoe.size // WINDOW_SAMPLES,)
    assert streamed.dtype == np.float32
    assert float(np.max(np.abs(streamed - expected))) < 1e-4


def test_window_is_32_ms() -> None:
    assert StreamingVad().window_ms == 32.0


def test_remainder_waits_for_the_next_call() -> None:
    vad = StreamingVad()

    assert vad.process(np.zeros(WINDOW_SAMPLES - 1, dtype=np.float32)).size == 0
    assert vad.process(np.zeros(1, dtype=np.float32)).size == 1
    assert vad.process(np.zeros(0, dtype=np.float32)).size == 0


def test_silence_has_low_probability() -> None:
    # Digital silence and a -60 dBFS noise floor, like a quiet telephone line.
    noise = np.random.default_rng(0).standard_normal(16_000 * 3).astype(np.float32) * 10 ** (-60 / 20)

    for samples in (np.zeros(16_000 * 3, dtype=np.float32), noise):
        probabilities = StreamingVad().process(samples)
        assert probabilities.size == samples.size // WINDOW_SAMPLES
        assert float(probabilities.max()) < 0.2


def test_speech_has_high_probability(birch_canoe: np.ndarray) -> None:
    probabilities = StreamingVad().process(birch_canoe)

    assert float(probabilities.max()) > 0.9
    # The clip is mostly speech; its silent edges and pauses are a minority.
    assert float(np.mean(probabilities >= 0.5)) > 0.5


def test_reset_forgets_state(birch_canoe: np.ndarray, mr_quilter: np.ndarray) -> None:
    fresh = StreamingVad().process(mr_quilter)
    vad = StreamingVad()
    # Leave model state, context and a partial window behind.
    vad.process(birch_canoe[: 10 * WINDOW_SAMPLES + 100])

    vad.reset()

    assert np.array_equal(vad.process(mr_quilter), fresh)


def test_state_matters_without_reset(birch_canoe: np.ndarray, mr_quilter: np.ndarray) -> None:
    # Guards the reset test: the carried state does change the results, so "equal after reset" means something.
    fresh = StreamingVad().process(mr_quilter)
    vad = StreamingVad()
    vad.process(birch_canoe[: 10 * WINDOW_SAMPLES])

    assert not np.array_equal(vad.process(mr_quilter), fresh)


def test_streams_do_not_share_state(birch_canoe: np.ndarray, mr_quilter: np.ndarray) -> None:
    alone_a = StreamingVad().process(birch_canoe)
    alone_b = StreamingVad().process(mr_quilter)
    vad_a, vad_b = StreamingVad(), StreamingVad()

    # Two calls interleaved, 20 ms at a time, on the one shared model.
    interleaved_a, interleaved_b = [], []
    for start in range(0, max(birch_canoe.size, mr_quilter.size), 320):
        interleaved_a.append(vad_a.process(birch_canoe[start : start + 320]))
        interleaved_b.append(vad_b.process(mr_quilter[start : start + 320]))

    assert float(np.max(np.abs(np.concatenate(interleaved_a) - alone_a))) < 1e-6
    assert float(np.max(np.abs(np.concatenate(interleaved_b) - alone_b))) < 1e-6


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        (np.zeros((2, 512), dtype=np.float32), "1-D"),
        (np.zeros(512, dtype=np.int16), "float samples"),
    ],
)
def test_rejects_what_it_cannot_score(samples: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StreamingVad().process(samples)
