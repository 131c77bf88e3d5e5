"""Speech synthesis with the real Piper voice, and the phrase cache in front of it."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

import numpy as np
import pytest

from telephony.voice_services import fixed_replies
from voice.models import piper_voice_files
from voice.tts import PhraseCache, SpeechSynthesizer
from voice.tts_piper import PiperOptions, PiperSynthesizer

# Every test runs the Piper voice.
pytestmark = pytest.mark.slow

# Replies of the shape the agent gives: one or two calm sentences.
REPLIES = (
    "I am connecting you to our billing team and passing on what you told me. Please stay on the line.",
    "I did not understand that. You can ask about bills, payments, internet or mobile problems, or say agent.",
    "Your last bill was sent on the third of the month. Is there anything else I can help you with?",
)


@pytest.fixture(scope="module")
def synthesizer() -> PiperSynthesizer:
    return PiperSynthesizer(*piper_voice_files(None))


class CountingSynthesizer:
    """The real synthesizer, counting how often it is asked to speak."""

    def __init__(self, inner: SpeechSynthesizer) -> None:
        self.inner = inner
        self.calls: list[str] = []
        self._lock = threading.Lock()

    @property
    def sample_rate_hz(self) -> int:
        return self.inner.sample_rate_hz

    def synthesize(self, text: str) -> Iterator[np.ndarray]:
        with self._lock:
            self.calls.append(text)
        return self.inner.synthesize(text)


def test_piper_is_a_speech_synthesizer(synthesizer):
    assert isinstance(synthesizer, SpeechSynthesizer)
    assert synthesizer.sample_rate_hz == 22050


def test_one_chunk_per_sentence(synthesizer):
    text = "Hello, this is the automated assistant. How can I help? Say agent for a person."
    chunks = list(synthesizer.synthesize(text))
    assert len(chunks) == 3
    for chunk in chunks:
        assert chunk.dtype == np.float32
        assert chunk.ndim == 1
        assert chunk.size > synthesizer.sample_rate_hz // 4
        assert np.abs(chunk).max() <= 1.0


def test_releasing_onnx_memory_after_each_sentence_leaves_the_audio_unchanged():
    # Without generator noise Piper is deterministic, so the memory-saving session must give the very same samples.
    quiet = {"noise_scale": 0.0, "noise_w_scale": 0.0}
    releasing = PiperSynthesizer(*piper_voice_files(None), PiperOptions(**quiet, release_memory_after_run=True))
    keeping = PiperSynthesizer(*piper_voice_files(None), PiperOptions(**quiet, release_memory_after_run=False))
    for released, kept in zip(releasing.synthesize(REPLIES[0]), keeping.synthesize(REPLIES[0]), strict=True):
        np.testing.assert_array_equal(released, kept)


def test_calm_speaking_rate(voice_services):
    # Measured on what callers hear, every fixed reply of the English catalogue as the server cached it at start-up
    # (~1,070 words, so Piper's random phoneme lengths average out), and on the audio's length, not the clock: ~196
    # words a minute at the default length_scale (1.2); Piper's own pace (1.0) is ~210, hurried.
    texts = fixed_replies(voice_services.engine.catalogue)
    words = sum(len(re.findall(r"[\w']+", text)) for text in texts)
    samples = sum(chunk.size for text in texts for chunk in voice_services.speech.get_or_synthesize(text))
    words_per_minute = words / (samples / voice_services.speech.sample_rate_hz) * 60
    assert 160 <= words_per_minute <= 200, f"{words_per_minute:.0f} words per minute"


def test_phrase_cache_synthesises_once(synthesizer):
    counting = CountingSynthesizer(synthesizer)
    cache = PhraseCache(counting)
    first = cache.get_or_synthesize(REPLIES[0])
    again = cache.get_or_synthesize(REPLIES[0])
    assert counting.calls == [REPLIES[0]]
    assert len(first) == 2
    assert all(a is b for a, b in zip(first, again, strict=True))
    assert (cache.hits, cache.misses) == (1, 1)
    # Nobody can change what the next caller hears.
    with pytest.raises(ValueError, match="read-only"):
        first[0][0] = 0.0


def test_concurrent_requests_synthesise_once(synthesizer):
    counting = CountingSynthesizer(synthesizer)
    cache = PhraseCache(counting)
    results: list[list[np.ndarray]] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_synthesize(REPLIES[1]))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counting.calls == [REPLIES[1]]
    assert len(results) == 4
    assert all(len(result) == 2 for result in results)


def test_cache_is_bounded(synthesizer):
    counting = CountingSynthesizer(synthesizer)
    cache = PhraseCache(counting, max_entries=2)
    one, two, three = "One moment.", "Thank you.", "Goodbye."
    cache.get_or_synthesize(one)
    cache.get_or_synthesize(two)
    cache.get_or_synthesize(one)  # now the most recently used
    cache.get_or_synthesize(three)  # evicts `two`, the least recently used
    assert len(cache) == 2
    assert one in cache and three in cache and two not in cache
    cache.get_or_synthesize(two)
    assert counting.calls == [one, two, three, two]


def test_preload(synthesizer):
    counting = CountingSynthesizer(synthesizer)
    cache = PhraseCache(counting, max_entries=3)
    cache.preload([REPLIES[0], REPLIES[0], "", REPLIES[2]])
    assert counting.calls == [REPLIES[0], REPLIES[2]]
    cache.get_or_synthesize(REPLIES[2])
    assert len(counting.calls) == 2
    with pytest.raises(ValueError, match="max_entries"):
        cache.preload(["A.", "B.", "C.", "D."])


def test_empty_text(synthesizer):
    assert list(synthesizer.synthesize("")) == []
    assert list(synthesizer.synthesize("  \n")) == []
    counting = CountingSynthesizer(synthesizer)
    cache = PhraseCache(counting)
    assert cache.get_or_synthesize("") == []
    assert counting.calls == []


def test_cache_size_must_be_positive(synthesizer):
    with pytest.raises(ValueError, match="at least 1"):
        PhraseCache(synthesizer, max_entries=0)
