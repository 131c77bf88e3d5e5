"""What the load benchmarks share: a `voice-agent serve` subprocess, its resource figures, and replayed calls.

    ServerProcess: `voice-agent serve` on 127.0.0.1 and a free port, in its own process so that its CPU and memory
        are measured apart from the callers'; ready when /healthz answers 200; always stopped on exit
    ResourceSampler: the server's RSS (children included) every 100 ms in a thread, its peak, and its CPU time
    run_calls: replayed fixture calls (qa.replay, the Twilio emulator) against the server, N at a time,
        their starts staggered

Used by benchmarks/concurrency.py and benchmarks/soak.py; figures are printed there, never asserted.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

from qa.fixtures import CallerVoice, PreparedCall, load_fixtures, prepare_call
from qa.loopback_addresses import LOOPBACK_HOST, LoopbackAddresses
from qa.replay import replay_calls
from qa.report import CallReport
from qa.twilio_signing import TwilioCredentials

REPO_ROOT = Path(__file__).resolve().parents[1]
CALLS_DIR = REPO_ROOT / "audio_fixtures" / "calls"
SERVER_START_TIMEOUT_S = 300.0
"""Longest wait for /healthz 200: loading the models and synthesising the fixed replies takes ~30 s on two quiet
cores, several times that on a loaded machine."""
SERVER_STOP_TIMEOUT_S = 15.0
SAMPLE_INTERVAL_S = 0.1
CALL_TIMEOUT_S = 180.0
"""Longest one replayed call may take (the fixtures last 10-30 s; the replay bounds each wait for a reply by 15 s)."""
DEFAULT_STAGGER_S = 0.3
"""Gap between the starts of simultaneous calls, so that their turns do not end on the same 20 ms tick, as they
would if identical scripts started together: real callers arrive at random moments."""
MB = 1024 * 1024

Progress = Callable[[str], None]


def say(line: str) -> None:
    """Progress on stderr, flushed at once."""
    print(line, file=sys.stderr, flush=True)


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as `uptime` prints them."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def cores() -> int:
    """Logical CPUs this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (psutil.cpu_count() or 1)


class ServerStartError(RuntimeError):
    """The server subprocess exited (at start-up or during the run) or did not become ready; the message carries
    the end of its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK_HOST, 0))
        return sock.getsockname()[1]


# Loaded before any fork: between fork and exec the child may only make async-signal-safe calls such as prctl.
_LIBC = ctypes.CDLL("libc.so.6", use_errno=True) if sys.platform == "linux" else None
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # The server gets SIGTERM if this script dies, even by SIGKILL, so no server outlives a benchmark.
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class ServerProcess(LoopbackAddresses):
    """`voice-agent serve` in a subprocess on 127.0.0.1, with a data folder and log file of its own.

    It runs this checkout's code (the repository root is put first on PYTHONPATH) with this Python, and inherits the
    environment, so `VOICE_AGENT_MODEL_WORKERS=1 python benchmarks/concurrency.py` measures that configuration.
    """

    def __init__(
        self, start_timeout_s: float = SERVER_START_TIMEOUT_S, max_calls: int | None = None, port: int | None = None
    ) -> None:
        """Configure the server (from this process's environment); nothing starts until `start`.

        Args:
            max_calls: VOICE_AGENT_MAX_CALLS for the server, for a benchmark that carries more simultaneous calls
                than the configured limit admits (every call is admitted through /twilio/voice); default: as set.
            port: the port to serve on; a fixed one lets a shared machine keep each user's servers in their own
                range; default any free one.
        """
        self.start_timeout_s = start_timeout_s
        self.max_calls = max_calls
        self.port = port if port is not None else free_port()
        self._workdir = tempfile.TemporaryDirectory(prefix="voice-agent-load-")
        self.log_path = Path(self._workdir.name) / "server.log"
        self.popen: subprocess.Popen[bytes] | None = None
        self.process: psutil.Process | None = None
        self.credentials = TwilioCredentials()
        """What to sign the server's webhooks and media streams with (known once `start` ran)."""

    @property
    def data_dir(self) -> Path:
        """The server's VOICE_AGENT_DATA_DIR (its SQLite call records), removed by `stop`."""
        return Path(self._workdir.name) / "data"

    def start(self) -> None:
        """Start the server and wait until /healthz answers 200.

        Raises:
            ServerStartError: it exited, or was not ready within `start_timeout_s`; with the end of its log.
        """
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        env["ORT_DISABLE_TELEMETRY"] = "1"
        env["VOICE_AGENT_DATA_DIR"] = str(self.data_dir)
        # The calls are signed as Twilio signs them: with the auth token in the environment when `start` runs, else
        # a throwaway one given to the server (it refuses to start without one).
        token = env.get("TWILIO_AUTH_TOKEN") or env.get("VOICE_AGENT_TWILIO_AUTH_TOKEN")
        if not token:
            token = env["TWILIO_AUTH_TOKEN"] = secrets.token_urlsafe(24)
        self.credentials = TwilioCredentials(token)
        if self.max_calls is not None:
            env["VOICE_AGENT_MAX_CALLS"] = str(self.max_calls)
        command = [sys.executable, "-m", "telephony.cli", "serve", "--host", LOOPBACK_HOST, "--port", str(self.port)]
        say(f"starting the server: {' '.join(command[1:])} (log: {self.log_path}, removed at the end)")
        with self.log_path.open("wb") as log_file:
            self.popen = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent if _LIBC is not None else None,
            )
        self.process = psutil.Process(self.popen.pid)
        started = time.monotonic()
        while True:
            if self.popen.poll() is not None:
                raise ServerStartError(
                    f"the server exited with code {self.popen.returncode} before it was ready; "
                    f"the end of its log:\n{self.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.http_base}/healthz", timeout=2).status_code == 200:
                    say(f"server ready on port {self.port} after {time.monotonic() - started:.0f} s")
                    return
            if time.monotonic() - started > self.start_timeout_s:
                raise ServerStartError(
                    f"the server was not ready (GET /healthz 200) within {self.start_timeout_s:.0f} s; "
                    f"the end of its log:\n{self.log_tail()}"
                )
            time.sleep(0.5)

    def check_alive(self) -> None:
        """Raises ServerStartError, with the end of its log, when the server has exited."""
        if self.popen is not None and self.popen.poll() is not None:
            raise ServerStartError(
                f"the server exited with code {self.popen.returncode} during the run; "
                f"the end of its log:\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def health(self) -> dict[str, Any]:
        """GET /healthz: status, live calls and the event loop's task count."""
        response = httpx.get(f"{self.http_base}/healthz", timeout=10)
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        """Ask the server to stop (SIGTERM, as uvicorn expects), kill it if it does not, and remove its folder."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(SERVER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                say(f"the server did not stop within {SERVER_STOP_TIMEOUT_S:.0f} s of SIGTERM: killing it")
                self.popen.kill()
                self.popen.wait(SERVER_STOP_TIMEOUT_S)
        self._workdir.cleanup()

    def __enter__(self) -> ServerProcess:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- figures from outside the process ------------------------------------------------------------------------

    def _tree(self) -> list[psutil.Process]:
        assert self.process is not None
        try:
            return [self.process, *self.process.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []  # it exited: `check_alive` says so with its log

    def rss_bytes(self) -> int:
        """Resident memory of the server and its children."""
        total = 0
        for process in self._tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                total += process.memory_info().rss
        return total

    def cpu_seconds(self) -> float:
        """CPU time (user + system, every thread) the server and its children have used so far."""
        total = 0.0
        for process in self._tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                times = process.cpu_times()
                total += times.user + times.system
        return total

    def snapshot(self) -> Snapshot:
        """RSS, open files, threads and asyncio tasks, as they are now.

        Raises:
            ServerStartError: the server has exited.
        """
        assert self.process is not None
        self.check_alive()
        health = self.health()
        return Snapshot(
            rss_mb=self.rss_bytes() / MB,
            fds=self.process.num_fds(),
            threads=self.process.num_threads(),
            tasks=health.get("asyncio_tasks"),
            live_calls=health.get("live_calls"),
            fd_targets=self._fd_targets(),
        )

    def _fd_targets(self) -> tuple[str, ...]:
        """What each open file descriptor points to (a file, ``socket:[inode]``, ``anon_inode:[eventfd]``)."""
        assert self.process is not None
        folder = Path(f"/proc/{self.process.pid}/fd")
        targets = []
        with contextlib.suppress(OSError):
            for entry in folder.iterdir():
                with contextlib.suppress(OSError):
                    targets.append(os.readlink(entry))
        return tuple(sorted(targets))


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The server's resources at one moment."""

    rss_mb: float
    fds: int
    threads: int
    tasks: int | None
    """Tasks on the server's event loop (from /healthz; the health request's own task included)."""
    live_calls: int | None
    fd_targets: tuple[str, ...] = ()
    """What the open files are, to name the ones that outlive a run."""


class ResourceSampler:
    """Samples the server's RSS every 100 ms in a thread (so a busy event loop cannot skip samples); keeps the peak.

    Use as a context manager around the work to measure; afterwards `peak_rss_mb` and `cpu_percent` describe it.
    """

    def __init__(self, server: ServerProcess, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self._server = server
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self.peak_rss_mb = 0.0
        self.samples = 0
        self._cpu0 = self._wall0 = self.cpu_percent = self.wall_s = 0.0
        self._own0 = 0.0
        self.callers_cpu_percent = 0.0
        self._cpu_samples: list[tuple[float, float]] = []
        self.busiest_second_cpu_percent = 0.0

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                self.peak_rss_mb = max(self.peak_rss_mb, self._server.rss_bytes() / MB)
                self._cpu_samples.append((time.monotonic(), self._server.cpu_seconds()))
                self.samples += 1
            self._stop.wait(self._interval_s)

    def _busiest_second_percent(self) -> float:
        """The server's highest CPU use over any 1 s of the run, as a share of all cores: the mean hides bursts
        (simultaneous turns ending together), and a burst near 100% means the cores, not the server, set the pace."""
        best = 0.0
        later = 0
        for time_s, cpu_s in self._cpu_samples:
            while later < len(self._cpu_samples) and self._cpu_samples[later][0] - time_s < 1.0:
                later += 1
            if later == len(self._cpu_samples):
                break
            end_s, end_cpu_s = self._cpu_samples[later]
            best = max(best, (end_cpu_s - cpu_s) / (end_s - time_s))
        return 100 * best / cores()

    def __enter__(self) -> ResourceSampler:
        self._cpu0, self._wall0 = self._server.cpu_seconds(), time.monotonic()
        own = psutil.Process().cpu_times()
        self._own0 = own.user + own.system
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.wall_s = time.monotonic() - self._wall0
        capacity = max(self.wall_s, 1e-9) * cores()
        self.cpu_percent = 100 * (self._server.cpu_seconds() - self._cpu0) / capacity
        own = psutil.Process().cpu_times()
        self.callers_cpu_percent = 100 * (own.user + own.system - self._own0) / capacity
        self.busiest_second_cpu_percent = self._busiest_second_percent()


# --- calls -------------------------------------------------------------------------------------------------------


def prepare_fixture_calls(paths: Sequence[Path]) -> list[PreparedCall]:
    """Load fixture calls and make their caller audio once (Piper), to be replayed as often as needed.

    Raises:
        qa.fixtures.FixtureError: a fixture is invalid (the message names the file and the field).
    """
    voice = CallerVoice()
    return [prepare_call(item, voice) for item in load_fixtures(paths)]


@dataclass(frozen=True, slots=True)
class CallFigures:
    """What one replayed call measured, read from its report."""

    name: str
    ok: bool
    """Completed without protocol violations."""
    latencies_ms: tuple[float, ...]
    """Response latency of each answered turn."""
    unanswered_turns: int
    """Turns that expected an answer and got none within the replay's limit."""
    underruns: int
    underrun_ms: int
    ended: str

    @classmethod
    def of(cls, report: CallReport) -> CallFigures:
        data = report.data
        turns = [turn for turn in data["turns"] if turn["played"] and turn["kind"] in ("say", "audio", "dtmf")]
        latencies = tuple(turn["response_latency_ms"] for turn in turns if turn["response_latency_ms"] is not None)
        unanswered = sum(1 for turn in turns if turn["note"] and "no agent audio" in turn["note"])
        audio = data["agent_audio"]
        return cls(
            name=report.name,
            ok=report.ok,
            latencies_ms=latencies,
            unanswered_turns=unanswered,
            underruns=audio["underruns"],
            underrun_ms=audio["underrun_ms"],
            ended=data["ended"]["by"] or "-",
        )

    @classmethod
    def failed(cls, name: str, why: str) -> CallFigures:
        return cls(name=name, ok=False, latencies_ms=(), unanswered_turns=0, underruns=0, underrun_ms=0, ended=why)


def _quiet(_line: str) -> None:
    """Drops the replay's per-turn progress lines (20 calls would print hundreds)."""


async def run_calls(
    server: ServerProcess,
    calls: Sequence[PreparedCall],
    simultaneous: int,
    report_dir: Path,
    *,
    stagger_s: float = DEFAULT_STAGGER_S,
    call_timeout_s: float = CALL_TIMEOUT_S,
    progress: Progress = say,
    verbose: bool = False,
) -> list[CallFigures]:
    """Replay `calls` against the server, at most `simultaneous` at a time, each in its own report folder.

    The first `simultaneous` calls start `stagger_s` apart; after that a call starts as soon as one ends, so the
    server carries `simultaneous` calls until the last ones finish.

    Returns:
        The figures of every call, in the order given. A call that exceeds `call_timeout_s` is cancelled (its socket
        closed) and counted as failed.
    """
    pending = list(enumerate(calls))
    pending.reverse()
    figures: list[CallFigures | None] = [None] * len(calls)
    done = 0

    async def replay_one(index: int, call: PreparedCall) -> CallFigures:
        folder = report_dir / f"{index + 1:04d}-{call.name}"
        try:
            result = await asyncio.wait_for(
                replay_calls(
                    [call],
                    folder,
                    server_url=server.ws_url,
                    progress=say if verbose else _quiet,
                    credentials=server.credentials,
                ),
                call_timeout_s,
            )
        except TimeoutError:
            return CallFigures.failed(call.name, f"timed out after {call_timeout_s:.0f} s")
        return CallFigures.of(result.calls[0])

    async def line(slot: int) -> None:
        # One simulated phone line: its first call starts `slot` staggers in, the next as soon as one ends.
        nonlocal done
        await asyncio.sleep(slot * stagger_s)
        while pending:
            index, call = pending.pop()
            result = figures[index] = await replay_one(index, call)
            done += 1
            latencies = ", ".join(f"{value:.0f}" for value in result.latencies_ms) or "-"
            progress(
                f"  call {done}/{len(calls)} {result.name}: {'ok' if result.ok else 'FAILED'} ({result.ended}); "
                f"latency ms {latencies}; underruns {result.underruns}"
            )

    await asyncio.gather(*(line(slot) for slot in range(min(simultaneous, len(calls)))))
    return [item for item in figures if item is not None]
