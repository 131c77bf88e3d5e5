"""`voice-agent replay`: the command's work, with what it prints and the exit code it returns."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from qa.console import SuiteProgress, print_summary
from qa.fixtures import FixtureError, load_fixtures
from qa.junit import write_junit
from qa.replay import run_replay
from qa.server import ReplayError

if TYPE_CHECKING:
    from voice.pipeline import VoiceServices

TOKEN_ENV = "VOICE_AGENT_REPLAY_TOKEN"
"""Where `--token` is read from when it is not given (keeps the token out of the process list and shell history)."""


def replay_command(
    paths: Sequence[Path],
    report_dir: Path,
    server_url: str | None = None,
    parallel: int = 1,
    services: VoiceServices | Sequence[VoiceServices] | None = None,
    token: str | None = None,
    junit_path: Path | None = None,
    inline_audio: bool | None = None,
) -> int:
    """`voice-agent replay`: replay fixture calls (or folders of them) with a progress bar on stderr, print the
    summary table and every failed expectation on stdout, and write the report.

    Args:
        services: for the in-process servers, models already loaded in this process, one set per language (tests
            share theirs).
        token: with `server_url`, an agent or admin token of its call API, for the transcripts and decisions;
            default: `TOKEN_ENV` from the environment.
        junit_path: also write JUnit XML of the run there, for CI systems.
        inline_audio: recordings inside report.html or linked beside it; default: inline for up to 10 calls.

    Returns:
        The exit code: 0 every call completed without protocol violations and met its expectations, 1 otherwise
        (or the server could not start), 2 a fixture is invalid.
    """
    try:
        # Validated before the bar appears, so that a bad fixture is one clear line (and read again: it is cheap).
        total = len(load_fixtures(paths))
        with SuiteProgress(total) as progress:
            result = run_replay(
                paths,
                report_dir=report_dir,
                server_url=server_url,
                token=token or os.environ.get(TOKEN_ENV) or None,
                parallel=parallel,
                inline_audio=inline_audio,
                services=services,
                progress=progress.line,
                on_call_done=progress.call_done,
            )
    except FixtureError as error:
        print(f"voice-agent replay: {error}", file=sys.stderr)
        return 2
    except ReplayError as error:
        print(f"voice-agent replay: {error}", file=sys.stderr)
        return 1
    print_summary(result)
    print(f"report: {result.html_path} (and {result.summary_path.name}, one JSON and WAV per call)", file=sys.stderr)
    if junit_path is not None:
        write_junit(result, junit_path)
        print(f"JUnit XML: {junit_path}", file=sys.stderr)
    return result.exit_code
