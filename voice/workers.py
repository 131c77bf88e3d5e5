"""The bounded thread pool through which every speech-recognition and speech-synthesis call runs.

Model calls block for tenths of a second; on the event loop they would stall every other call's audio. The loop
hands them to this pool and awaits the result, so it keeps parsing, queueing and sending while the models work.

Thread counts, for two cores (both libraries default to one thread per core, and two models with two threads each on
two cores slow each other down; `benchmarks/asr_latency.py` and `benchmarks/tts_first_audio.py` measure it, and
docs/benchmarks.md has the figures):
- The pool has 2 workers, one per core: at most two model calls run at once, whatever the number of calls.
- Whisper runs with 1 intra-op thread and 2 model replicas (`AsrOptions.cpu_threads`, `num_workers`): one thread is
  as fast as two for tiny.en, and two utterances that end together each get a replica instead of being interleaved.
- Piper runs with 1 intra-op thread (`PiperOptions.onnx_threads`), one sentence at a time (the synthesis lock in
  `voice.tts_piper`): with onnxruntime's default a synthesis slows a transcription beside it far more than it gains.
So the worst overlap is two single-threaded model calls on two cores. More workers would buy nothing: extra calls
would queue inside CTranslate2 or behind the synthesis lock, out of sight, instead of here.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_WORKERS = 2

# Marks the end of a generator stepped in the pool: StopIteration cannot travel through a Future.
_DONE = object()


class ModelWorkers:
    """A bounded pool of threads for model calls, with asyncio helpers. Create one per process, at start-up.

    A call that times out raises at once, but its thread runs on until the model returns (a thread cannot be
    stopped from outside); the pool slot stays busy until then.
    """

    def __init__(self, max_workers: int = DEFAULT_WORKERS, default_timeout_s: float | None = None) -> None:
        """Start the pool (threads are created on first use).

        Args:
            max_workers: threads in the pool, at least 1; see the module docstring for why 2 suits two cores.
            default_timeout_s: timeout of each call (or generator step) that passes none; None waits forever.

        Raises:
            ValueError: `max_workers` is below 1 or `default_timeout_s` is not positive.
        """
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        if default_timeout_s is not None and default_timeout_s <= 0:
            raise ValueError(f"default_timeout_s must be positive or None, got {default_timeout_s}")
        self.max_workers = max_workers
        self.default_timeout_s = default_timeout_s
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="model-worker")
        # Calls handed to the pool and not finished (running or queued); a lock, as several event loops may share it.
        self._in_flight = 0
        self._count_lock = threading.Lock()

    @property
    def idle(self) -> bool:
        """No model call is running or waiting: optional work (partial transcripts) may start without delaying any."""
        return self._in_flight == 0

    async def run(self, fn: Callable[..., T], *args: Any, timeout_s: float | None = None) -> T:
        """Run `fn(*args)` in the pool and wait for its result without blocking the event loop.

        The timeout is counted twice, separately: for the wait for a free worker, and for `fn` itself once it runs.
        A model that hangs is caught by the second; a burst of calls queueing behind busy workers is not mistaken
        for a hung model, yet cannot wait without end behind models that hang.

        Args:
            fn: a blocking function, such as `SpeechRecognizer.transcribe`.
            *args: its arguments (bind keyword arguments with `functools.partial`).
            timeout_s: most seconds to wait for a worker, and then for `fn`; default `default_timeout_s`.

        Returns:
            What `fn` returned.

        Raises:
            asyncio.TimeoutError: no worker was free in time, or `fn` took longer than the timeout.
            Exception: whatever `fn` raised.
        """
        loop = asyncio.get_running_loop()
        started = asyncio.Event()

        def call() -> T:
            loop.call_soon_threadsafe(started.set)
            return fn(*args)

        future = loop.run_in_executor(self._executor, call)
        with self._count_lock:
            self._in_flight += 1
        future.add_done_callback(self._finished)
        timeout = self.default_timeout_s if timeout_s is None else timeout_s
        if timeout is None:
            return await future
        waiting = asyncio.ensure_future(started.wait())
        try:
            done, _ = await asyncio.wait({future, waiting}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting.cancel()
        if not done:
            future.cancel()  # still queued: it will not run
            raise TimeoutError(f"no model worker was free within {timeout:g} s")
        return await asyncio.wait_for(future, timeout)

    async def iterate(
        self, gen_fn: Callable[..., Iterable[T]], *args: Any, timeout_s: float | None = None
    ) -> AsyncIterator[T]:
        """Step `gen_fn(*args)` in the pool, one item at a time, as Starlette's `iterate_in_threadpool` does.

        Each item is handed over as soon as it exists: with `PiperSynthesizer.synthesize`, the first sentence
        plays while the second is synthesised. Stopping early (barge-in) closes the generator.

        Args:
            gen_fn: a function returning an iterable, such as `PiperSynthesizer.synthesize`; it is called in the
                pool too, in case it does work before its first item.
            *args: its arguments.
            timeout_s: most seconds to wait for each item; default `default_timeout_s`.

        Yields:
            The items, in order.

        Raises:
            asyncio.TimeoutError: an item took longer than the timeout.
            Exception: whatever the generator raised.
        """
        iterator = await self.run(_start, gen_fn, *args, timeout_s=timeout_s)
        try:
            while True:
                item = await self.run(next, iterator, _DONE, timeout_s=timeout_s)
                if item is _DONE:
                    return
                yield item
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                # Cheap for our generators (no work after the last yield). After a timeout the generator may still
                # be running in its thread and cannot be closed; it ends with its thread.
                with contextlib.suppress(ValueError):
                    close()

    def _finished(self, _future: asyncio.Future[Any]) -> None:
        with self._count_lock:
            self._in_flight -= 1

    def shutdown(self, wait: bool = True) -> None:
        """Stop the pool; calls already queued still run.

        Args:
            wait: block until running calls have finished.
        """
        self._executor.shutdown(wait=wait, cancel_futures=False)

    def __enter__(self) -> ModelWorkers:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()


def _start(gen_fn: Callable[..., Iterable[T]], *args: Any):
    return iter(gen_fn(*args))
