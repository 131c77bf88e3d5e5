"""Does the server give back what calls take? Many replayed calls against one server, then its resources compared
with a baseline.

Starts `voice-agent serve` as a subprocess (as benchmarks/concurrency.py does), warms it up with one call of each
fixture and one wave of `--wave-size` simultaneous calls (the models' first runs allocate buffers they keep, and the
first simultaneous calls raise the allocator's high-water mark once, which is not a leak), takes a baseline, then
plays:
1. `--sequential` calls one after the other (default 200);
2. `--waves` waves of `--wave-size` simultaneous calls (default 10 waves of 20), starts 0.3 s apart;
cycling through the fixtures (default: every call in audio_fixtures/calls, so transfers, goodbyes, barge-ins, key
presses and hang-ups all run). After each `--checkpoint-every` sequential calls and after each wave it prints the
server's RSS, open files, threads and asyncio tasks (the last from /healthz), then, once no call is live and
`--settle-s` have passed, baseline, after and the difference, with a verdict:
- asyncio tasks and open files must be back at the baseline or below: every call's tasks, sockets and files end
  with the call, and nothing else in an idle server grows (one fewer is no leak: a connection open at the baseline,
  such as an idle keep-alive, may have closed since);
- threads may only be those there at the first checkpoint: thread pools start threads on demand up to their bound
  (one appeared within the first 10 calls and stayed), while a leak keeps adding them;
- RSS may end at most `--rss-tolerance-mb` (default 30 MB) above the baseline. Some growth is by design or not ours
  to control: the call registry keeps the last 1000 finished calls' records (a few KB each), and glibc keeps freed
  memory in its per-thread arenas. A real per-call leak shows up far above it: one call's audio history (up to 35 s
  of 16 kHz float32, ~2 MB) kept per call would add ~800 MB over the default 400 calls, one agent reply (~250 KB)
  ~100 MB. The RSS trend over the run (MB per 100 calls, second half) is printed too: a leak keeps climbing.

The full default run takes about two hours (the calls play in real time, 10-40 s each); `--sequential 20 --waves 2
--wave-size 10` about fifteen. Figures are printed, never asserted; the load average is printed beside them.

Usage: python benchmarks/soak.py [--sequential 200] [--waves 10] [--wave-size 20] [--fixture CALL.json ...] [--port N]
Exit code: 0 when the verdict is "returns to baseline" and every call completed, 1 otherwise, 2 when the server did
not start or a fixture is invalid.
"""

from __future__ import annotations

import os

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import argparse
import asyncio
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from qa.fixtures import FixtureError, PreparedCall
from qa.load_harness import (
    CALLS_DIR,
    DEFAULT_STAGGER_S,
    CallFigures,
    ServerProcess,
    ServerStartError,
    Snapshot,
    load_average,
    prepare_fixture_calls,
    run_calls,
    say,
)

DEFAULT_RSS_TOLERANCE_MB = 30.0
LIVE_CALLS_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class Checkpoint:
    label: str
    calls: int
    """Calls played since the baseline."""
    snapshot: Snapshot
    load: str


def _line(checkpoint: Checkpoint) -> str:
    shot = checkpoint.snapshot
    return (
        f"| {checkpoint.label} | {checkpoint.calls} | {shot.rss_mb:.1f} | {shot.fds} | {shot.threads} | {shot.tasks} "
        f"| {checkpoint.load} |"
    )


async def settle(server: ServerProcess, settle_s: float) -> Snapshot:
    """The server's resources once no call is live any more and `settle_s` seconds have passed."""
    server.check_alive()
    deadline = time.monotonic() + LIVE_CALLS_TIMEOUT_S
    while (await asyncio.to_thread(server.health)).get("live_calls") and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    await asyncio.sleep(settle_s)
    return await asyncio.to_thread(server.snapshot)


async def soak(
    server: ServerProcess, calls: list[PreparedCall], args: argparse.Namespace, report_root: Path
) -> tuple[list[Checkpoint], list[CallFigures]]:
    figures: list[CallFigures] = []
    played = 0

    def batch(count: int) -> list[PreparedCall]:
        nonlocal played
        chosen = [calls[(played + index) % len(calls)] for index in range(count)]
        played += count
        return chosen

    say(f"warm-up: {args.warmup} calls, one at a time; load average {load_average()}")
    await run_calls(server, batch(args.warmup), 1, report_root / "warmup")
    if args.waves and args.wave_size > 1:
        # The first simultaneous calls raise the allocator's high-water mark once (ASR runs side by side, each
        # call's buffers); measured: +15-21 MB over the first two waves of 10, then flat. That is not a leak, so the
        # baseline is taken after one wave at the soak's own size.
        say(f"warm-up wave: {args.wave_size} calls at once")
        await run_calls(
            server, batch(args.wave_size), args.wave_size, report_root / "warmup-wave", stagger_s=args.stagger_ms / 1000
        )
    played = 0
    checkpoints = [Checkpoint("baseline", 0, await settle(server, args.settle_s), load_average())]
    print("| point | calls | RSS MB | open files | threads | asyncio tasks | load average |")
    print("|---|---|---|---|---|---|---|")
    print(_line(checkpoints[0]), flush=True)

    done = 0
    while done < args.sequential:
        count = min(args.checkpoint_every, args.sequential - done)
        say(f"sequential calls {done + 1}-{done + count} of {args.sequential}; load average {load_average()}")
        figures += await run_calls(server, batch(count), 1, report_root / f"sequential-{done + 1:04d}")
        done += count
        checkpoint = Checkpoint(f"sequential {done}", played, await settle(server, 1.0), load_average())
        checkpoints.append(checkpoint)
        print(_line(checkpoint), flush=True)
    for wave in range(1, args.waves + 1):
        say(f"wave {wave} of {args.waves}: {args.wave_size} calls at once; load average {load_average()}")
        figures += await run_calls(
            server,
            batch(args.wave_size),
            args.wave_size,
            report_root / f"wave-{wave:03d}",
            stagger_s=args.stagger_ms / 1000,
        )
        checkpoint = Checkpoint(f"wave {wave}", played, await settle(server, 1.0), load_average())
        checkpoints.append(checkpoint)
        print(_line(checkpoint), flush=True)
    after = Checkpoint("after", played, await settle(server, args.settle_s), load_average())
    checkpoints.append(after)
    print(_line(after))
    print(flush=True)
    return checkpoints, figures


def verdict(checkpoints: list[Checkpoint], figures: list[CallFigures], tolerance_mb: float) -> bool:
    """Print baseline, after and the difference, the RSS trend, and whether the server returned to its baseline."""
    base, after = checkpoints[0].snapshot, checkpoints[-1].snapshot
    failed = sum(1 for call in figures if not call.ok)
    rss_growth = after.rss_mb - base.rss_mb
    exact = {"asyncio tasks": (base.tasks, after.tasks), "open files": (base.fds, after.fds)}
    # Thread pools start their threads on demand, up to a bound; a thread that first appears in the first stretch
    # of calls and never grows again is a pool filling up, while a leak keeps adding threads.
    first = checkpoints[1].snapshot if len(checkpoints) > 2 else base
    threads_allowed = max(base.threads, first.threads)
    print("|  | baseline | after | difference | allowed |")
    print("|---|---|---|---|---|")
    print(f"| RSS MB | {base.rss_mb:.1f} | {after.rss_mb:.1f} | {rss_growth:+.1f} | +{tolerance_mb:.0f} |")
    for name, (before, now) in exact.items():
        difference = (now - before) if before is not None and now is not None else None
        print(f"| {name} | {before} | {now} | {difference:+d} | +0 |" if difference is not None else f"| {name} | ? |")
    print(
        f"| threads | {base.threads} | {after.threads} | {after.threads - base.threads:+d} "
        f"| +{threads_allowed - base.threads} (threads started by the first checkpoint) |"
    )
    # The trend over the second half of the calls: a leak keeps climbing, warm-up effects and caches level off.
    points = [checkpoint for checkpoint in checkpoints[1:-1] if checkpoint.calls]
    if len(points) >= 2:
        middle = next(point for point in points if point.calls >= points[-1].calls / 2)
        last = points[-1]
        span = last.calls - middle.calls
        if span:
            slope = (last.snapshot.rss_mb - middle.snapshot.rss_mb) / span * 100
            print(f"RSS trend over calls {middle.calls}-{last.calls}: {slope:+.1f} MB per 100 calls")
    extra_files = Counter(after.fd_targets) - Counter(base.fd_targets)
    if extra_files:
        print(f"open files not there at the baseline: {', '.join(sorted(extra_files.elements()))}")
    print(f"calls: {len(figures) - failed}/{len(figures)} completed without violations")
    returned = (
        rss_growth <= tolerance_mb
        and after.threads <= threads_allowed
        and all(before is not None and now is not None and now <= before for before, now in exact.values())
    )
    print(
        "verdict: "
        + ("returns to baseline" if returned else "DOES NOT return to baseline")
        + f" (RSS within +{tolerance_mb:.0f} MB; no more asyncio tasks or open files; no thread after the first "
        "checkpoint)"
    )
    return returned and not failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequential", type=int, default=200, help="calls one after the other (default 200)")
    parser.add_argument("--waves", type=int, default=10, help="waves of simultaneous calls (default 10)")
    parser.add_argument("--wave-size", type=int, default=20, help="calls per wave (default 20)")
    parser.add_argument("--fixture", type=Path, nargs="+", help="fixture calls, used in turn (default: all)")
    parser.add_argument("--warmup", type=int, help="calls before the baseline (default: one per fixture)")
    parser.add_argument(
        "--checkpoint-every", type=int, default=20, help="sequential calls between two figures (default 20)"
    )
    parser.add_argument(
        "--settle-s", type=float, default=5.0, help="quiet seconds before the baseline and the final figures"
    )
    parser.add_argument(
        "--rss-tolerance-mb",
        type=float,
        default=DEFAULT_RSS_TOLERANCE_MB,
        help=f"RSS growth still counted as back to baseline (default {DEFAULT_RSS_TOLERANCE_MB:.0f})",
    )
    parser.add_argument(
        "--stagger-ms", type=float, default=DEFAULT_STAGGER_S * 1000, help="between simultaneous starts (default 300)"
    )
    parser.add_argument("--report", type=Path, help="keep every call's replay report here (default: discarded)")
    parser.add_argument("--port", type=int, help="the server's port on 127.0.0.1 (default: any free port)")
    args = parser.parse_args()
    fixtures = args.fixture or sorted(CALLS_DIR.glob("*.json"))
    if min(args.sequential, args.waves, args.wave_size) < 0 or args.checkpoint_every < 1:
        parser.error("counts must not be negative, and --checkpoint-every at least 1")
    args.warmup = len(fixtures) if args.warmup is None else args.warmup

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        calls = prepare_fixture_calls(fixtures)
    except FixtureError as error:
        print(f"soak: {error}", file=sys.stderr)
        return 2
    total = args.sequential + args.waves * args.wave_size
    print(
        f"voice-agent soak: {args.warmup} warm-up calls and a warm-up wave, then {args.sequential} sequential calls "
        f"and {args.waves} "
        f"waves of {args.wave_size}; fixtures {', '.join(path.name for path in fixtures)}"
    )
    print(f"{total} calls after the baseline; load average {load_average()}")
    print(flush=True)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="voice-agent-soak-") as scratch,
            ServerProcess(max_calls=args.wave_size, port=args.port) as server,
        ):
            checkpoints, figures = asyncio.run(soak(server, calls, args, args.report or Path(scratch)))
    except ServerStartError as error:
        print(f"soak: {error}", file=sys.stderr)
        return 2
    return 0 if verdict(checkpoints, figures, args.rss_tolerance_mb) else 1


if __name__ == "__main__":
    sys.exit(main())
