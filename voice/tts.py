"""Speech synthesis behind a small interface, and a cache for the phrases the agent says again and again.

The interface keeps the engine replaceable: Piper (`voice.tts_piper`) is GPL-3.0 and optional, and nothing outside
that module imports it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class SpeechSynthesizer(Protocol):
    """Text in, audio out, one sentence at a time so that playback can start after the first."""

    @property
    def sample_rate_hz(self) -> int:
        """Rate of the audio that `synthesize` yields."""
        ...

    def synthesize(self, text: str) -> Iterator[np.ndarray]:
        """Speak `text`.

        Blocking per item: step it through `voice.workers`.

        Args:
            text: one reply, usually one or two sentences.

        Returns:
            An iterator of mono float32 arrays in -1..1 at `sample_rate_hz`, one per sentence; nothing for empty
            text.
        """
        ...


# A phrase is ~3 s, ~260 KB as float32 at 22.05 kHz: 64 phrases cost ~17 MB per process, far more than the
# greeting and fixed replies of one catalogue need.
DEFAULT_MAX_PHRASES = 64


class PhraseCache:
    """Fixed prompts (greeting, "connecting you now", ...) synthesised once and replayed from memory.

    Keyed by the exact text, so a reply with a filled-in name or number simply gets its own entry. Bounded: the
    least recently used phrase is evicted. Thread-safe: calls may come from any worker thread, and concurrent
    requests for the same missing phrase synthesise it once.

    Cached arrays are read-only, so that no caller can change what the next caller hears.
    """

    def __init__(self, synthesizer: SpeechSynthesizer, max_entries: int = DEFAULT_MAX_PHRASES) -> None:
        """Wrap `synthesizer`.

        Args:
            synthesizer: the engine that makes missing phrases.
            max_entries: most phrases kept; at least 1.

        Raises:
            ValueError: `max_entries` is below 1.
        """
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        self.synthesizer = synthesizer
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[np.ndarray, ...]] = OrderedDict()
        # Phrases being synthesised right now, so that a second request waits for the first instead of repeating it.
        self._pending: dict[str, Future[tuple[np.ndarray, ...]]] = {}
        self._lock = threading.Lock()
        self.hits = 0
        """Requests answered from memory."""
        self.misses = 0
        """Requests that synthesised."""

    @property
    def sample_rate_hz(self) -> int:
        """Rate of the cached audio (the synthesizer's)."""
        return self.synthesizer.sample_rate_hz

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, text: object) -> bool:
        with self._lock:
            return text in self._entries

    def get_or_synthesize(self, text: str) -> list[np.ndarray]:
        """The audio of `text`, from memory or synthesised now (blocking: call it through `voice.workers`).

        Args:
            text: the exact text to speak.

        Returns:
            One read-only float32 array per sentence, at `sample_rate_hz`; empty for empty or blank text.

        Raises:
            Exception: whatever the synthesizer raised; nothing is cached then, so the next call tries again.
        """
        if not text.strip():
            return []
        with self._lock:
            cached = self._entries.get(text)
            if cached is not None:
                self._entries.move_to_end(text)
                self.hits += 1
                return list(cached)
            pending = self._pending.get(text)
            if pending is None:
                pending = self._pending[text] = Future()
                owner = True
                self.misses += 1
            else:
                owner = False
                self.hits += 1
        if not owner:
            try:
                return list(pending.result())
            except _AbandonedError:
                # The streaming request that owned it stopped early (barge-in): make it here instead.
                return self.get_or_synthesize(text)

        try:
            chunks = tuple(_read_only(chunk) for chunk in self.synthesizer.synthesize(text))
        except BaseException as error:
            with self._lock:
                del self._pending[text]
            pending.set_exception(error)
            raise
        self._store(text, pending, chunks)
        return list(chunks)

    def stream(self, text: str) -> Iterator[np.ndarray]:
        """The audio of `text` sentence by sentence, each yielded as soon as it exists; cached once complete.

        For replies not in the cache, the first sentence can be played while the rest is synthesised. Blocking per
        item: step it through `voice.workers.ModelWorkers.iterate`. Stopping early (barge-in) caches nothing.

        Args:
            text: the exact text to speak.

        Yields:
            Read-only float32 arrays at `sample_rate_hz`, one per sentence; nothing for blank text.

        Raises:
            Exception: whatever the synthesizer raised; nothing is cached then.
        """
        if not text.strip():
            return
        with self._lock:
            cached = self._entries.get(text)
            pending = self._pending.get(text)
            owner = cached is None and pending is None
            if cached is not None:
                self._entries.move_to_end(text)
                self.hits += 1
            elif owner:
                pending = self._pending[text] = Future()
                self.misses += 1
        if not owner:
            # In memory, or being made by another request: wait for it whole (rare: the same new reply at once).
            yield from self.get_or_synthesize(text)
            return
        chunks: list[np.ndarray] = []
        try:
            for chunk in self.synthesizer.synthesize(text):
                chunks.append(_read_only(chunk))
                yield chunks[-1]
        except BaseException as error:
            with self._lock:
                del self._pending[text]
            # GeneratorExit is the consumer stopping early: waiters then synthesise it themselves.
            pending.set_exception(_AbandonedError() if isinstance(error, GeneratorExit) else error)
            raise
        self._store(text, pending, tuple(chunks))

    def _store(self, text: str, pending: Future[tuple[np.ndarray, ...]], chunks: tuple[np.ndarray, ...]) -> None:
        with self._lock:
            del self._pending[text]
            self._entries[text] = chunks
            self._entries.move_to_end(text)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        pending.set_result(chunks)

    def cached(self, text: str) -> tuple[np.ndarray, ...] | None:
        """The audio of `text` if it is in memory, else None; counts as neither hit nor miss."""
        with self._lock:
            return self._entries.get(text)

    def preload(self, texts: Iterable[str], reuse: PhraseCache | None = None) -> None:
        """Synthesise `texts` now, typically at start-up, so that the first caller does not wait for them.

        Args:
            texts: the phrases; duplicates and blank texts are skipped.
            reuse: another cache whose audio for the same text is taken instead of synthesising it again (a
                reloaded catalogue keeps most of its replies).

        Raises:
            ValueError: there are more distinct phrases than `max_entries`, so some would be evicted at once.
        """
        distinct = list(dict.fromkeys(text for text in texts if text.strip()))
        if len(distinct) > self.max_entries:
            raise ValueError(
                f"cannot preload {len(distinct)} phrases into a cache of {self.max_entries}: raise max_entries"
            )
        for text in distinct:
            known = reuse.cached(text) if reuse is not None else None
            if known is None:
                self.get_or_synthesize(text)
                continue
            with self._lock:
                self._entries[text] = known  # read-only arrays: safe to share between caches


class _AbandonedError(Exception):
    """The request synthesising a phrase stopped before the end; whoever waited for it must make it."""


def _read_only(chunk: np.ndarray) -> np.ndarray:
    chunk = np.array(chunk, dtype=np.float32, copy=True)
    chunk.flags.writeable = False
    return chunk
