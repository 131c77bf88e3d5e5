"""Smart Turn v3.2 (voice/turn_model.py): the bundled model is checked before it is loaded, and it hears a finished
sentence as finished and the same sentence cut mid-way as unfinished."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from voice.model_integrity import ModelIntegrityError
from voice.models import ModelNotFound
from voice.resample import resample
from voice.turn_model import SAMPLE_RATE_HZ, SMART_TURN_FILE, SMART_TURN_SHA256, SmartTurn, TurnModelOptions
from voice.wavfile import read_wav

SENTENCE = Path(__file__).resolve().parents[1] / "audio_fixtures" / "real_speech" / "audio" / "harvard_birch_canoe.wav"


def test_a_replaced_model_file_is_refused_before_loading(tmp_path: Path) -> None:
    tampered = tmp_path / "smart-turn.onnx"
    shutil.copyfile(SMART_TURN_FILE, tampered)
    with tampered.open("r+b") as stream:
        stream.seek(-1, 2)
        last = stream.read(1)
        stream.seek(-1, 2)
        stream.write(bytes([last[0] ^ 0xFF]))

    # No ONNX session is made (the fast tier would fail the test if one were).
    with pytest.raises(ModelIntegrityError, match="Smart Turn"):
        SmartTurn(tampered)


def test_a_missing_model_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="does not exist"):
        SmartTurn(tmp_path / "absent.onnx", SMART_TURN_SHA256)


def test_threads_below_one_are_rejected() -> None:
    with pytest.raises(ValueError, match="threads"):
        TurnModelOptions(threads=0)


@pytest.fixture(scope="module")
def smart_turn() -> SmartTurn:
    return SmartTurn()


def sentence_16k() -> np.ndarray:
    samples, rate = read_wav(SENTENCE)
    return resample(samples, rate, SAMPLE_RATE_HZ)


@pytest.mark.slow
def test_a_finished_sentence_scores_high_and_the_same_sentence_cut_mid_way_low(smart_turn: SmartTurn) -> None:
    # Real recorded speech: "The birch canoe slid on the smooth planks." and its first 55 %, each ending where the
    # speech ends, as the pipeline asks (up to the last voiced window).
    whole = sentence_16k()
    finished = smart_turn.probability(whole)
    cut = smart_turn.probability(whole[: int(whole.size * 0.55)])

    assert finished > 0.9
    assert cut < 0.5


@pytest.mark.slow
def test_features_are_eight_seconds_of_log_mel_and_longer_audio_keeps_its_end(smart_turn: SmartTurn) -> None:
    whole = sentence_16k()
    assert smart_turn.features(whole).shape == (80, 800)
    # Only the last 8 s count: 20 s of silence before the sentence change nothing.
    longer = np.concatenate([np.zeros(20 * SAMPLE_RATE_HZ, dtype=np.float32), whole])
    np.testing.assert_allclose(smart_turn.features(longer), smart_turn.features(whole), atol=1e-6)


@pytest.mark.slow
def test_the_same_audio_gets_the_same_score(smart_turn: SmartTurn) -> None:
    whole = sentence_16k()
    assert smart_turn.probability(whole) == smart_turn.probability(whole.copy())


@pytest.mark.slow
def test_integer_samples_are_refused(smart_turn: SmartTurn) -> None:
    with pytest.raises(ValueError, match="float"):
        smart_turn.features(np.zeros(16000, dtype=np.int16))
