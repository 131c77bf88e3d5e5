"""Dutch on the phone path: multilingual Whisper base told the language is Dutch, the Dutch catalogue, and the
espeak-ng stand-in voice (Debian's espeak-ng speaking Dutch; CI installs it, no Dutch Piper voice can be installed
here). The whole Dutch call flow is replayed in the suite (tests/test_replay_suite.py, audio_fixtures/calls/nl_*)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qa.caller_audio import ASR_RATE_HZ, telephone_round_trip
from voice.models import ModelNotFound
from voice.resample import resample
from voice.tts_espeak import EspeakStandInSynthesizer
from voice.wavfile import read_wav

DUTCH_CALLERS = Path(__file__).resolve().parent.parent / "audio_fixtures" / "dutch"


def test_the_dutch_services_recognise_dutch_over_the_phone(voice_services_nl):
    recognizer = voice_services_nl.recognizer
    assert recognizer.options.language == "nl"
    samples, rate_hz = read_wav(DUTCH_CALLERS / "gestolen_m3.wav")
    transcript = recognizer.transcribe(telephone_round_trip(resample(samples, rate_hz, ASR_RATE_HZ)))
    assert "telefoon" in transcript.text.lower() and "gestolen" in transcript.text.lower()
    _state, decision = voice_services_nl.engine.step(voice_services_nl.engine.start()[0], transcript)
    assert decision.intent == "fraud_or_theft"


def test_the_dutch_services_speak_dutch_replies_with_the_stand_in(voice_services_nl):
    catalogue = voice_services_nl.engine.catalogue
    assert catalogue.language == "nl"
    assert isinstance(voice_services_nl.speech.synthesizer, EspeakStandInSynthesizer)
    greeting = voice_services_nl.speech.cached(catalogue.replies.greeting)
    assert greeting is not None and len(greeting) == 2  # preloaded at start-up, one chunk per sentence


@pytest.mark.slow
def test_the_stand_in_speaks_one_chunk_per_sentence():
    synthesizer = EspeakStandInSynthesizer("nl")
    chunks = list(synthesizer.synthesize("Goedendag. Waarmee kan ik u helpen?"))
    assert len(chunks) == 2 and synthesizer.sample_rate_hz == 22_050
    for chunk in chunks:
        assert chunk.dtype == np.float32 and 0.1 < float(np.abs(chunk).max()) <= 1.0
        assert chunk.size > 0.3 * synthesizer.sample_rate_hz  # words, not a click
    assert list(synthesizer.synthesize("   ")) == []


@pytest.mark.slow
def test_the_stand_in_refuses_a_voice_espeak_ng_does_not_have():
    with pytest.raises(ModelNotFound, match="espeak-ng's voice 'xx-nowhere'"):
        EspeakStandInSynthesizer("xx-nowhere")
