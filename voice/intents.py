"""Scores caller text against the catalogue's intents, learned at start-up from the examples.

A linear model over two views of the text: whole words (what the caller asked for) and character n-grams within
words (robust to speech-recognition slips such as "interned" for "internet" or "con tract" for "contract").
It is small, offline, trains in well under a second and gives the same answer for the same text every time.
Every score carries its evidence: the nearest training example and the words that weighed most.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from voice.text import normalize

# Inverse regularisation strength: examples are few and clean, so fit them closely.
_REGULARISATION_C = 50.0
_KEY_WORDS = 3


@dataclass(frozen=True, slots=True)
class IntentScore:
    """The best intent for a text, with the evidence behind it."""

    intent: str
    """Best-scoring intent."""
    confidence: float
    """Its probability under the model, 0..1."""
    runner_up: str
    """Second-best intent."""
    runner_up_confidence: float
    """Its probability."""
    nearest_example: str
    """The training example of `intent` most similar to the text."""
    similarity: float
    """Cosine similarity of the text to `nearest_example`, 0..1."""
    key_words: tuple[str, ...]
    """Words of the text that pushed most towards `intent`."""


class IntentClassifier:
    """Intent model trained once from the catalogue's examples; `classify` is then cheap and pure."""

    def __init__(self, examples: Mapping[str, Sequence[str]], language: str) -> None:
        """Train on `examples`.

        Args:
            examples: intent name -> example phrasings; at least two intents.
            language: "en" or "nl", for normalising text.

        Raises:
            ValueError: fewer than two intents, or an intent without examples.
        """
        if len(examples) < 2:
            raise ValueError(f"need examples for at least two intents, got {len(examples)}")
        empty = [name for name, texts in examples.items() if not texts]
        if empty:
            raise ValueError(f"intents without examples: {', '.join(empty)}")
        self.language = language
        self._texts = [normalize(text, language) for texts in examples.values() for text in texts]
        self._originals = [text for texts in examples.values() for text in texts]
        labels = [name for name, texts in examples.items() for _ in texts]
        self._words = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"\S+")
        self._chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)
        features = self._features(self._texts, fit=True)
        self._model = LogisticRegression(C=_REGULARISATION_C, max_iter=5000)
        self._model.fit(features, labels)
        self._labels = np.asarray(labels)
        self._example_chars = self._chars.transform(self._texts)
        self._classes: list[str] = [str(name) for name in self._model.classes_]
        self._word_names = self._words.get_feature_names_out()

    @property
    def intents(self) -> tuple[str, ...]:
        """The intents the model knows."""
        return tuple(self._classes)

    def _features(self, texts: Sequence[str], fit: bool = False):
        if fit:
            return hstack([self._words.fit_transform(texts), self._chars.fit_transform(texts)]).tocsr()
        return hstack([self._words.transform(texts), self._chars.transform(texts)]).tocsr()

    def classify(self, text: str) -> IntentScore | None:
        """Score `text`; None when it has no words at all.

        Args:
            text: caller text, raw or normalised.

        Returns:
            The best intent with confidence and evidence.
        """
        normalized = normalize(text, self.language)
        if not normalized:
            return None
        return self._classify_normalized(normalized)

    # The model is fixed after training, so a score depends on the text alone; common turns ("yes", "agent")
    # recur in every call.
    @functools.lru_cache(maxsize=4096)  # noqa: B019 (one classifier per process; the cache dies with it)
    def _classify_normalized(self, normalized: str) -> IntentScore:
        features = self._features([normalized])
        probabilities = self._model.predict_proba(features)[0]
        order = np.argsort(-probabilities, kind="stable")
        best, second = self._classes[order[0]], self._classes[order[1]]

        own = np.flatnonzero(self._labels == best)
        similarities = (self._example_chars[own] @ self._chars.transform([normalized]).T).toarray().ravel()
        nearest = int(own[int(np.argmax(similarities))])

        return IntentScore(
            intent=best,
            confidence=float(probabilities[order[0]]),
            runner_up=second,
            runner_up_confidence=float(probabilities[order[1]]),
            nearest_example=self._originals[nearest],
            similarity=min(1.0, float(similarities.max())),
            key_words=self._key_words(features, int(order[0])),
        )

    def _key_words(self, features, class_index: int) -> tuple[str, ...]:
        word_count = len(self._word_names)
        row = features[0, :word_count].tocoo()
        coefficients = self._model.coef_[class_index]
        weighted = sorted(
            (
                (value * coefficients[column], self._word_names[column])
                for column, value in zip(row.col, row.data, strict=True)
            ),
            key=lambda pair: (-pair[0], pair[1]),
        )
        return tuple(word for weight, word in weighted[:_KEY_WORDS] if weight > 0)
