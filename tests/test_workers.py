"""The model pool keeps the event loop free: model calls run in its threads, one generator step at a time."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from voice.asr import SpeechRecognizer
from voice.models import piper_voice_files, whisper_model_dir
from voice.wavfile import read_wav
from voice.workers import ModelWorkers

from .helpers import REAL_SPEECH_AUDIO

BIRCH_CANOE = REAL_SPEECH_AUDIO / "harvard_birch_canoe.wav"


def read_wav_16k(path: Path) -> np.ndarray:
    return read_wav(path)[0]


@pytest.fixture
def workers():
    with ModelWorkers(max_workers=2) as pool:
        yield pool


@pytest.mark.slow
def test_runs_in_pool_not_on_loop(workers):
    recognizer = SpeechRecognizer(whisper_model_dir(None))
    samples = read_wav_16k(BIRCH_CANOE)
    threads: list[str] = []

    def transcribe(samples_16k):
        threads.append(threading.current_thread().name)
        return recognizer.transcribe(samples_16k)

    async def main():
        ticks = 0

        async def tick():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        await asyncio.sleep(0)  # let the ticker start
        before = ticks
        transcript = await workers.run(transcribe, samples)
        during = ticks - before
        ticker.cancel()
        return transcript, during

    transcript, ticks_during = asyncio.run(main())
    assert "canoe" in transcript.text.lower()
    # Had the transcription blocked the loop, the ticker could not have run while it was awaited.
    assert ticks_during > 0
    assert threads[0].startswith("model-worker")


def test_iterate_steps_a_generator(workers):
    log: list[str] = []

    def produce(count):
        for index in range(count):
            assert threading.current_thread().name.startswith("model-worker")
            log.append(f"made {index}")
            yield index

    async def main():
        received = []
        async for item in workers.iterate(produce, 3):
            log.append(f"got {item}")
            received.append(item)
        return received

    assert asyncio.run(main()) == [0, 1, 2]
    # One item at a time: each is handed over before the next is made.
    assert log == ["made 0", "got 0", "made 1", "got 1", "made 2", "got 2"]


def test_iterate_closes_the_generator_when_the_consumer_stops(workers):
    closed = threading.Event()

    def produce():
        try:
            yield from range(100)
        finally:
            closed.set()

    async def main():
        async for item in workers.iterate(produce):
            if item == 1:
                break  # as on barge-in

    asyncio.run(main())
    assert closed.is_set()


@pytest.mark.slow
def test_iterate_speaks_sentence_by_sentence(workers):
    from voice.tts_piper import PiperSynthesizer

    synthesizer = PiperSynthesizer(*piper_voice_files(None))

    async def main():
        return [chunk async for chunk in workers.iterate(synthesizer.synthesize, "One moment. I am checking that.")]

    chunks = asyncio.run(main())
    assert len(chunks) == 2
    assert all(chunk.dtype == np.float32 and chunk.size > 0 for chunk in chunks)


def test_timeout_raises(workers):
    release = threading.Event()

    def slow():
        release.wait(10)
        return "late"

    def slow_steps():
        yield "first"
        release.wait(10)
        yield "late"

    async def main():
        with pytest.raises(asyncio.TimeoutError):
            await workers.run(slow, timeout_s=0.05)
        received = []
        with pytest.raises(asyncio.TimeoutError):
            async for item in workers.iterate(slow_steps, timeout_s=0.05):
                received.append(item)
        release.set()
        return received

    assert asyncio.run(main()) == ["first"]


def test_the_timeout_counts_the_wait_for_a_worker_and_the_run_separately():
    # One worker, busy for 0.6 s: the next call waits ~0.6 s and then runs 0.6 s, each within a 1 s timeout,
    # though 1.2 s pass in all. Work that hangs behind a hung worker still times out (its queue wait).
    with ModelWorkers(max_workers=1) as pool:
        hung = threading.Event()

        async def main():
            first = asyncio.ensure_future(pool.run(time.sleep, 0.6, timeout_s=1.0))
            await asyncio.sleep(0.01)
            started = time.perf_counter()
            await pool.run(time.sleep, 0.6, timeout_s=1.0)
            waited = time.perf_counter() - started
            await first
            stuck = asyncio.ensure_future(pool.run(hung.wait, 5, timeout_s=0.1))
            with pytest.raises(asyncio.TimeoutError):
                await stuck
            with pytest.raises(asyncio.TimeoutError, match="no model worker was free"):
                await pool.run(time.sleep, 0, timeout_s=0.1)
            hung.set()
            return waited

        assert asyncio.run(main()) > 1.0


def test_default_timeout_applies():
    with ModelWorkers(max_workers=1, default_timeout_s=0.05) as pool:

        async def main():
            with pytest.raises(asyncio.TimeoutError):
                await pool.run(time.sleep, 0.5)

        asyncio.run(main())


def test_errors_come_through(workers):
    def broken():
        raise RuntimeError("model failed")

    async def main():
        with pytest.raises(RuntimeError, match="model failed"):
            await workers.run(broken)

    asyncio.run(main())


def test_pool_size_must_be_positive():
    with pytest.raises(ValueError, match="max_workers"):
        ModelWorkers(max_workers=0)
    with pytest.raises(ValueError, match="default_timeout_s"):
        ModelWorkers(default_timeout_s=0)


def test_the_pool_is_idle_only_when_no_call_runs_or_waits():
    """What partial transcripts back off on: a call running or queued makes the pool busy until it returns."""
    workers = ModelWorkers(1)
    release = threading.Event()

    async def scenario() -> list[bool]:
        seen = [workers.idle]
        running = asyncio.ensure_future(workers.run(release.wait, 5))
        queued = asyncio.ensure_future(workers.run(time.sleep, 0))
        await asyncio.sleep(0.05)
        seen.append(workers.idle)
        release.set()
        await running
        await queued
        await asyncio.sleep(0)
        seen.append(workers.idle)
        return seen

    try:
        seen = asyncio.run(scenario())
    finally:
        workers.shutdown()
    assert seen == [True, False, True]
