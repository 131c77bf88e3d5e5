"""What `voice-agent replay` shows in the terminal: a progress bar on stderr and a summary table on stdout.

SuiteProgress: a rich progress bar (calls done of calls, elapsed time) with the replay's event lines above it
summary_table: one row per call (turns, expectations, median latency, violations), then every failed
    expectation in words
"""

from __future__ import annotations

import sys
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from qa.report import (
    CallReport,
    ReplayResult,
    call_problems,
    expectations_text,
    median_latency_ms,
    ms_text,
    result_text,
)


class SuiteProgress:
    """A progress bar over the calls of one replay run, on stderr; event lines scroll above it."""

    def __init__(self, total_calls: int, stream: TextIO | None = None) -> None:
        """Prepare the bar; it is shown between `__enter__` and `__exit__`."""
        self._console = Console(file=stream or sys.stderr, highlight=False)
        self._progress = Progress(
            TextColumn("replay"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("calls"),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=self._console,
            transient=False,
        )
        self._task = self._progress.add_task("", total=total_calls)

    def line(self, text: str) -> None:
        """One event line (a `qa.replay.Progress`), printed above the bar."""
        self._console.print(text, markup=False, soft_wrap=True)

    def call_done(self, report: CallReport) -> None:
        """Advance the bar by one call; the bar's text names the last call and its verdict."""
        self._progress.update(self._task, advance=1, description=f"{report.name}: {result_text(report)}")

    def __enter__(self) -> SuiteProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()


def summary_table(result: ReplayResult) -> Table:
    """The run's summary: per call, its result, turns played, expectations, median latency and violations."""
    table = Table(title=f"Replay: {len(result.calls)} calls", title_justify="left")
    table.add_column("call")
    table.add_column("result")
    table.add_column("turns", justify="right")
    table.add_column("expectations")
    table.add_column("median latency", justify="right")
    table.add_column("violations", justify="right")
    for report in result.calls:
        data = report.data
        played = sum(1 for turn in data["turns"] if turn["played"])
        verdict = result_text(report)
        table.add_row(
            report.name,
            f"[green]{verdict}[/]" if report.passed else f"[bold red]{verdict}[/]",
            f"{played}/{len(data['turns'])}",
            expectations_text(data),
            ms_text(median_latency_ms(data)),
            str(data["protocol"]["violations"]),
        )
    return table


def failure_lines(result: ReplayResult) -> list[str]:
    """Every failed expectation and protocol problem, one line each: what was expected and what happened."""
    return [f"{report.name}: {problem.message}" for report in result.calls for problem in call_problems(report)]


def print_summary(result: ReplayResult, stream: TextIO | None = None) -> None:
    """Print the summary table, then the failures (if any), to `stream` (default stdout)."""
    console = Console(file=stream or sys.stdout, highlight=False, width=140)
    console.print(summary_table(result))
    for line in failure_lines(result):
        console.print(f"FAILED {line}", markup=False, soft_wrap=True)
