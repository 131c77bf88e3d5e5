"""How many simultaneous calls one server carries: 1, 5, 10 and 20 replayed calls at a time against one server.

Starts `voice-agent serve` as a subprocess on 127.0.0.1 (so that its CPU and memory are measured apart from the
callers), waits for /healthz 200, then per level replays fixture calls through the QA replay's Twilio emulation
(qa/replay.py), `--level` calls at a time, and prints:
- response latency, median and p95 over every answered turn: the caller's last voiced frame sent -> the first agent
  frame received (it includes the 800 ms end-of-turn silence);
- underruns per call: the emulated Twilio playback buffer running dry in the middle of an answer;
- the server's CPU, as a share of all cores, over the level, and the callers' (this script's) beside it;
- the server's peak RSS (children included), sampled every 100 ms;
- the load average before and after, since other work on the machine inflates every figure;
with the targets beside them: 10 simultaneous calls on 2 cores, p95 <= 1.2 s, no underruns, RSS <= 700 MB.

The caller audio is synthesised once and reused by every call. Simultaneous calls start 0.3 s apart (`--stagger-ms`)
so that identical scripts do not end their turns on the same tick; after that, a line starts its next call as soon
as the previous one ends, so the server carries the level's number of calls until the last ones finish. The callers
run in this process, on the same cores as the server: their CPU is printed too.

Usage: python benchmarks/concurrency.py [--levels 1,5,10,20] [--calls-per-level N] [--fixture CALL.json ...]
           [--stagger-ms 300] [--report DIR] [--verbose]
Environment: the server inherits it (VOICE_AGENT_MODEL_WORKERS, VOICE_AGENT_ASR_THREADS, ...).
Exit code: 0 when every call completed without protocol violations, 1 otherwise, 2 when the server did not start.
"""

from __future__ import annotations

import os

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import argparse
import asyncio
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from qa.fixtures import FixtureError, PreparedCall
from qa.load_harness import (
    CALLS_DIR,
    DEFAULT_STAGGER_S,
    CallFigures,
    ResourceSampler,
    ServerProcess,
    ServerStartError,
    cores,
    load_average,
    prepare_fixture_calls,
    run_calls,
    say,
)
from qa.stats import median, percentile

DEFAULT_FIXTURE = CALLS_DIR / "billing_then_agent.json"
"""A short, typical call: greeting, a question answered, then a request for a person (transfer)."""
TARGET_CALLS = 10
TARGET_P95_MS = 1200.0
TARGET_UNDERRUNS = 0
TARGET_RSS_MB = 700.0


@dataclass(frozen=True, slots=True)
class LevelResult:
    level: int
    calls: list[CallFigures]
    cpu_percent: float
    busiest_cpu_percent: float
    callers_cpu_percent: float
    peak_rss_mb: float
    wall_s: float
    load_before: str
    load_after: str

    @property
    def latencies(self) -> list[float]:
        return [value for call in self.calls for value in call.latencies_ms]

    @property
    def p95_ms(self) -> float | None:
        return percentile(self.latencies, 0.95) if self.latencies else None

    @property
    def underruns(self) -> int:
        return sum(call.underruns for call in self.calls)

    @property
    def failed(self) -> int:
        return sum(1 for call in self.calls if not call.ok)

    def meets_targets(self) -> bool:
        p95 = self.p95_ms
        return (
            not self.failed
            and p95 is not None
            and p95 <= TARGET_P95_MS
            and self.underruns <= TARGET_UNDERRUNS
            and self.peak_rss_mb <= TARGET_RSS_MB
        )


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def print_level(result: LevelResult) -> None:
    latencies = result.latencies
    ok = len(result.calls) - result.failed
    unanswered = sum(call.unanswered_turns for call in result.calls)
    per_call = ", ".join(str(call.underruns) for call in result.calls)
    print(f"== {result.level} simultaneous calls: {len(result.calls)} calls in {result.wall_s:.0f} s ==")
    print(f"load average before   {result.load_before}")
    if latencies:
        p95 = percentile(latencies, 0.95)
        print(
            f"response latency      median {median(latencies):.0f} ms, p95 {p95:.0f} ms over {len(latencies)} turns"
            f"   (target at {TARGET_CALLS} calls: p95 <= {TARGET_P95_MS:.0f} ms: {_verdict(p95 <= TARGET_P95_MS)})"
        )
    else:
        print("response latency      no turn was answered")
    print(
        f"underruns             {result.underruns} ({sum(c.underrun_ms for c in result.calls)} ms) over "
        f"{len(result.calls)} calls; per call: {per_call}   (target: {TARGET_UNDERRUNS}: "
        f"{_verdict(result.underruns <= TARGET_UNDERRUNS)})"
    )
    print(
        f"server CPU            {result.cpu_percent:.0f}% of {cores()} cores on average, "
        f"{result.busiest_cpu_percent:.0f}% in the busiest second (callers, this process: "
        f"{result.callers_cpu_percent:.0f}%)"
    )
    print(
        f"server peak RSS       {result.peak_rss_mb:.0f} MB   "
        f"(target: <= {TARGET_RSS_MB:.0f} MB: {_verdict(result.peak_rss_mb <= TARGET_RSS_MB)})"
    )
    print(f"calls                 {ok}/{len(result.calls)} completed without violations; {unanswered} turns unanswered")
    print(f"load average after    {result.load_after}")
    print(flush=True)


def print_table(results: list[LevelResult]) -> None:
    print(
        "| calls at once | calls | median ms | p95 ms | underruns | server CPU mean / busiest s | peak RSS MB "
        "| failed | load before |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for result in results:
        latencies = result.latencies
        middle = f"{median(latencies):.0f}" if latencies else "-"
        p95 = f"{result.p95_ms:.0f}" if result.p95_ms is not None else "-"
        print(
            f"| {result.level} | {len(result.calls)} | {middle} | {p95} | {result.underruns} | "
            f"{result.cpu_percent:.0f}% / {result.busiest_cpu_percent:.0f}% | {result.peak_rss_mb:.0f} | "
            f"{result.failed} | {result.load_before} |"
        )
    meeting = [result.level for result in results if result.meets_targets()]
    print()
    print(
        f"targets: {TARGET_CALLS} simultaneous calls on 2 cores with p95 <= {TARGET_P95_MS:.0f} ms, "
        f"{TARGET_UNDERRUNS} underruns, peak RSS <= {TARGET_RSS_MB:.0f} MB, every call completed"
    )
    if meeting:
        best = max(meeting)
        print(f"largest level meeting every target: {best} calls at once = {best / cores():.1f} calls per core")
    else:
        print("no level met every target")


async def measure(
    server: ServerProcess, calls: list[PreparedCall], args: argparse.Namespace, report_root: Path
) -> list[LevelResult]:
    results = []
    for level in args.levels:
        count = args.calls_per_level or max(4, 2 * level)
        count = max(count, level)
        batch = [calls[index % len(calls)] for index in range(count)]
        say(f"level {level}: {count} calls, {level} at a time; load average {load_average()}")
        before = load_average()
        with ResourceSampler(server) as sampler:
            figures = await run_calls(
                server,
                batch,
                level,
                report_root / f"level-{level:02d}",
                stagger_s=args.stagger_ms / 1000,
                verbose=args.verbose,
            )
        result = LevelResult(
            level=level,
            calls=figures,
            cpu_percent=sampler.cpu_percent,
            busiest_cpu_percent=sampler.busiest_second_cpu_percent,
            callers_cpu_percent=sampler.callers_cpu_percent,
            peak_rss_mb=sampler.peak_rss_mb,
            wall_s=sampler.wall_s,
            load_before=before,
            load_after=load_average(),
        )
        print_level(result)
        results.append(result)
        server.check_alive()
        # Let the server finish the calls' after-stream requests and the load settle a little before the next level.
        await asyncio.sleep(2)
    return results


def _levels(text: str) -> list[int]:
    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas, such as 1,5,10,20, got {text!r}"
        ) from None
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError(f"every level must be at least 1, got {text!r}")
    return levels


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", type=_levels, default=[1, 5, 10, 20], help="calls at once (default 1,5,10,20)")
    parser.add_argument(
        "--calls-per-level",
        type=int,
        default=0,
        help="calls per level, at least the level (default: twice the level, at least 4)",
    )
    parser.add_argument(
        "--fixture",
        type=Path,
        nargs="+",
        default=[DEFAULT_FIXTURE],
        help=f"fixture calls, used in turn (default {DEFAULT_FIXTURE.relative_to(CALLS_DIR.parents[1])})",
    )
    parser.add_argument(
        "--stagger-ms", type=float, default=DEFAULT_STAGGER_S * 1000, help="between simultaneous starts (default 300)"
    )
    parser.add_argument("--report", type=Path, help="keep every call's replay report here (default: discarded)")
    parser.add_argument("--verbose", action="store_true", help="the replay's per-turn progress on stderr")
    args = parser.parse_args()

    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so the server subprocess is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    settings = {key: value for key, value in os.environ.items() if key.startswith("VOICE_AGENT_")}
    print(f"voice-agent concurrency benchmark; {cores()} cores; load average {load_average()}")
    print(f"fixtures: {', '.join(path.name for path in args.fixture)}; starts {args.stagger_ms:.0f} ms apart")
    print(f"server configuration from the environment: {settings or 'defaults'}")
    print(flush=True)
    try:
        calls = prepare_fixture_calls(args.fixture)
    except FixtureError as error:
        print(f"concurrency: {error}", file=sys.stderr)
        return 2
    try:
        with tempfile.TemporaryDirectory(prefix="voice-agent-concurrency-") as scratch:
            report_root = args.report or Path(scratch)
            # Every call is admitted through /twilio/voice: the limit must let the largest level in.
            with ServerProcess(max_calls=max(args.levels)) as server:
                idle = server.snapshot()
                print(f"server idle after start: RSS {idle.rss_mb:.0f} MB, {idle.threads} threads", flush=True)
                print()
                results = asyncio.run(measure(server, calls, args, report_root))
    except ServerStartError as error:
        print(f"concurrency: {error}", file=sys.stderr)
        return 2
    print_table(results)
    return 1 if any(result.failed for result in results) else 0


if __name__ == "__main__":
    sys.exit(main())
