"""Response latency with N simultaneous calls: the figures behind the VOICE_AGENT_MAX_CALLS default.

Replays the fixture call `billing_then_agent` (~35 s: the greeting, two questions) N times through the real Media
Streams path (the in-process server, real-time 20 ms pacing, the bundled models shared by all calls) and prints, per
N, the callers' response latency (end of their speech to the first reply audio, as the replay measures it) over
every turn of every call, in two ways:
- all at once: the N calls start together, so every caller finishes speaking at the same moment and all the
  transcriptions queue for the two model workers together (the worst case);
- spread: the N calls start evenly over `SPREAD_S`, so that N calls are live at the peak but their turns end at
  different moments, as on a real line.

    PYTHONPATH=. python benchmarks/concurrent_calls.py [N ...]
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from telephony.app import load_voice_services
from telephony.replay import replay_calls
from telephony.replay_fixtures import CallerVoice, load_fixtures, prepare_call
from telephony.replay_report import CallReport
from telephony.replay_server import InProcessServer
from telephony.settings import load_settings
from voice.prompts import load_catalogue

FIXTURE = Path(__file__).resolve().parent.parent / "audio_fixtures" / "calls" / "billing_then_agent.json"
DEFAULT_COUNTS = (1, 5, 10, 15)
SPREAD_S = 30.0
"""Starts spread over less than one call's length: at the peak all N calls are live."""


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _replay(server: InProcessServer, count: int, spread_s: float, report_dir: Path) -> list[CallReport]:
    voice = CallerVoice()
    calls = [prepare_call(item, voice) for item in load_fixtures([FIXTURE] * count)]

    async def one(index: int) -> CallReport:
        await asyncio.sleep(index * spread_s / count)
        result = await replay_calls(
            [calls[index]], report_dir / str(index), in_process=server, progress=lambda line: None
        )
        return result.calls[0]

    return list(await asyncio.gather(*(one(index) for index in range(count))))


def main(counts: list[int]) -> None:
    settings = load_settings()
    services = load_voice_services(settings, load_catalogue(settings.prompts_dir, settings.language))
    print(f"cores: {os.cpu_count()}; model workers: {services.workers.max_workers}; load before: {os.getloadavg()}")
    print("starts    calls  turns  ok   p50_ms  p95_ms  max_ms  wall_s  load_1m")
    try:
        with (
            tempfile.TemporaryDirectory() as records_dir,
            # The replayed calls' records go to a throwaway database, never to the configured one.
            InProcessServer(settings.language, services, f"sqlite:///{records_dir}/calls.sqlite3") as server,
        ):
            for spread_s in (0.0, SPREAD_S):
                for count in counts:
                    with tempfile.TemporaryDirectory() as report_dir:
                        started = time.perf_counter()
                        reports = asyncio.run(_replay(server, count, spread_s, Path(report_dir)))
                        wall_s = time.perf_counter() - started
                    latencies = [
                        turn["response_latency_ms"]
                        for call in reports
                        for turn in call.data["turns"]
                        if turn.get("response_latency_ms") is not None
                    ]
                    ok = sum(call.ok for call in reports)
                    p50 = statistics.median(latencies) if latencies else float("nan")
                    p95 = _quantile(latencies, 0.95) if latencies else float("nan")
                    worst = max(latencies, default=float("nan"))
                    mode = "at once" if spread_s == 0 else f"over {spread_s:.0f}s"
                    print(
                        f"{mode:8s}  {count:5d}  {len(latencies):5d}  {ok:3d}  {p50:7.0f}  {p95:6.0f}  {worst:6.0f}  "
                        f"{wall_s:6.1f}  {os.getloadavg()[0]:7.2f}",
                        flush=True,
                    )
    finally:
        services.workers.shutdown()


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or list(DEFAULT_COUNTS))
