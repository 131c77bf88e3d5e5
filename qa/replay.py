"""QA replay: fixture calls played to the server exactly as Twilio Media Streams would, with a report.

    fixture JSON -> caller audio ("say": the bundled Piper voice; "audio": a WAV file) -> 20 ms mu-law frames
    -> WS /twilio/media in real time: connected, start, a media frame every 20 ms (silence between turns), dtmf, stop
    <- media, mark, clear: each one checked, then queued in a simulated Twilio playback buffer that plays 20 ms per
       tick and echoes each mark when playback reaches it (and every pending mark at once on a clear)

Per caller turn it measures the response latency (last voiced caller frame sent -> first agent frame received) and
the barge-in reaction (first voiced caller frame sent over buffered agent audio -> clear received), and records both
directions on one 8 kHz timeline: what the caller sent and what the caller really heard (the frames dequeued from
the playback buffer, so a cleared reply is cut where Twilio would cut it). The report folder gets a JSON file and a
stereo WAV (left caller, right agent) per call, and a summary.md.

By default the server runs in this process (the app of `telephony.app`, served by uvicorn on 127.0.0.1 in a
background thread), so the transcripts and decisions can be read from the app after each call. With a `--server`
URL the replay talks to a running server and, given an agent or admin token, reads them from its call API
(`GET /api/calls/{call_sid}`, `qa.call_api`); without a token they are reported as null. Either way the report gets
the same call record (`telephony.call_record.CallRecord`).

This module runs the calls; the pieces are:

    qa.fixtures   the fixture format, its validation and the caller audio
    qa.twilio_emulator   Twilio's side of the wire: inbound messages, checks, the playback buffer
    qa.server     the in-process server and the after-stream request
    qa.call_api   a running server's call API (transcripts and decisions with --server --token)
    qa.call_log        what one call recorded, on both sides
    qa.expect     the fixtures' expectations and their checks
    qa.report     the JSON, WAV and summary.md files
    qa.html_report       the self-contained HTML report
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import math
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from qa.call_api import CallApiError, check_token, fetch_view
from qa.call_log import CallLog, EndedBy, MarkLog, ServerView, TurnLog
from qa.fixtures import (
    DEFAULT_GAP_MS,
    SILENCE_FRAME,
    CallerVoice,
    DtmfTurn,
    FixtureError,
    HangupTurn,
    LoadedFixture,
    PauseTurn,
    PreparedCall,
    check_catalogue_names,
    load_fixtures,
    prepare_call,
)
from qa.html_report import write_html_report
from qa.report import SERVER_DATA_MISSING, CallReport, ReplayResult, ms_text, write_call_report, write_summary
from qa.server import CLOSE_TIMEOUT_S, InProcessServer, fetch_after_stream, http_base_of
from qa.twilio_emulator import (
    AgentClear,
    AgentMark,
    AgentMedia,
    PlaybackBuffer,
    ServerProtocolError,
    TwilioSide,
    check_server_message,
)
from qa.twilio_signing import NotAdmittedError, TwilioCredentials, admit_call
from telephony.twilio.framing import FRAME_BYTES, FRAME_MS

if TYPE_CHECKING:
    from voice.pipeline import VoiceServices

REPLY_TIMEOUT_S = 15.0
"""Longest wait for the agent to start answering a turn; the server gives up on ASR after 10 s and transfers."""
END_GRACE_S = 2.0
"""The caller stays on the line (silent) this long after the last turn before the replay sends `stop`."""
MAX_VIOLATION_EXAMPLES = 20
"""Protocol violations kept verbatim per call; all of them are counted."""

_FRAME_S = FRAME_MS / 1000
# How often the script looks at the playback state while it waits; half a tick, so no tick goes unseen.
_POLL_S = _FRAME_S / 2


Progress = Callable[[str], None]
"""Receives one line of progress per event (greeting played, turn answered, call ended)."""


def progress_to_stderr(line: str) -> None:
    """The default `Progress`: one line on stderr, flushed at once."""
    print(line, file=sys.stderr, flush=True)


# --- one call -------------------------------------------------------------------------------------------------------


class _CallRunner:
    """Plays one prepared call over one WebSocket: a clock task, a receiver task and the script."""

    def __init__(
        self, call: PreparedCall, ws_url: str, http_base: str, credentials: TwilioCredentials, progress: Progress
    ) -> None:
        self._call = call
        self._url = ws_url
        self._http_base = http_base
        self._credentials = credentials
        self._progress = progress
        self._twilio = TwilioSide.random()
        self.log = CallLog(call=call, twilio=self._twilio, turns=[TurnLog(turn) for turn in call.turns])
        self._playback = PlaybackBuffer()
        # Caller frames waiting for their tick, with their voiced flag and turn; key presses go out on the next tick.
        self._frames: deque[tuple[bytes, bool, TurnLog]] = deque()
        self._keys: deque[TurnLog] = deque()
        self._send_lock = asyncio.Lock()
        self._closed = asyncio.Event()
        self._ticking = True
        self._tick = 0
        self._t0 = 0.0
        self._barge_in: TurnLog | None = None
        self._ws: ClientConnection | None = None

    def _now_s(self) -> float:
        return time.perf_counter() - self._t0

    def _say(self, text: str) -> None:
        self._progress(f"[{self._call.name}] {self._now_s():6.2f} s  {text}")

    async def _send(self, text: str) -> None:
        assert self._ws is not None
        async with self._send_lock:
            await self._ws.send(text)

    async def run(self) -> CallLog:
        """Replay the call to its end and return what happened."""
        try:
            # As Twilio does: the incoming-call webhook first (it gives the stream its secret), then a signed upgrade.
            await admit_call(self._http_base, self._twilio, self._credentials)
            # No compression and no pings: Twilio uses neither, and the server should see what Twilio sends.
            self._ws = await connect(
                self._url,
                additional_headers=self._credentials.headers(self._url),
                compression=None,
                ping_interval=None,
                open_timeout=10,
                max_size=2**20,
            )
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI, NotAdmittedError, httpx.HTTPError) as error:
            self.log.ended_by = EndedBy.ERROR
            self.log.detail = f"cannot connect to {self._url}: {error}"
            self._progress(f"[{self._call.name}] {self.log.detail}")
            return self.log
        ws = self._ws
        self.log.started_at = datetime.now(UTC).isoformat(timespec="seconds")
        try:
            await ws.send(self._twilio.connected())
            await ws.send(self._twilio.start())
        except ConnectionClosed as error:
            self.log.ended_by = EndedBy.ERROR
            self.log.detail = f"the server closed the socket before the stream started ({error})"
            return self.log
        self._t0 = time.perf_counter()
        receiver = asyncio.create_task(self._receive(ws), name=f"replay-receive-{self._call.name}")
        clock = asyncio.create_task(self._run_clock(), name=f"replay-clock-{self._call.name}")
        try:
            hang_up = await self._run_script()
            await self._finish(clock, hang_up)
        finally:
            self._ticking = False
            await _cancel(clock)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(receiver), CLOSE_TIMEOUT_S)
            await _cancel(receiver)
            await ws.close()
        self._summarise()
        return self.log

    async def _finish(self, clock: asyncio.Task[None], hang_up: bool) -> None:
        if not hang_up:
            # A caller stays on the line a moment after the last words; a server that hands the call over after its
            # last reply closes the stream itself in that time, and the report should say so.
            await self._wait_until(self._closed.is_set, END_GRACE_S)
        if self._closed.is_set():
            return
        # Twilio sends nothing after the stream ends: stop the clock first.
        self._ticking = False
        await _cancel(clock)
        assert self._ws is not None
        try:
            if hang_up:
                self.log.ended_by = EndedBy.HUNG_UP
                self._say("caller hangs up (socket closed without stop)")
                await self._ws.close()
            else:
                self.log.ended_by = EndedBy.STOP_SENT
                self._say("script done: stop sent")
                await self._send(self._twilio.stop())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closed.wait(), CLOSE_TIMEOUT_S)
        except ConnectionClosed:
            pass

    # --- the three tasks ----------------------------------------------------------------------------------------

    async def _run_clock(self) -> None:
        """Every 20 ms, drift-corrected: play 20 ms of agent audio, then send 20 ms of caller audio."""
        try:
            while self._ticking and not self._closed.is_set():
                delay = self._t0 + self._tick * _FRAME_S - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                await self._on_tick()
                self._tick += 1
        except ConnectionClosed:
            pass  # the receiver records how and why

    async def _on_tick(self) -> None:
        now_s = self._now_s()
        position_ms = self._tick * FRAME_MS
        played = self._playback.tick()
        self.log.agent_track += played.frame or SILENCE_FRAME
        if played.frame is not None:
            stretches = self.log.agent_audio_ms
            if stretches and stretches[-1][1] == position_ms:
                stretches[-1][1] = position_ms + FRAME_MS
            else:
                stretches.append([position_ms, position_ms + FRAME_MS])
        await self._echo_marks(played.marks, reached=True)

        while self._keys:
            turn = self._keys.popleft()
            self._playback.caller_spoke()
            self._caller_onset(turn, now_s)
            turn.start_ms = turn.end_ms = turn.voiced_start_ms = turn.voiced_end_ms = position_ms
            turn.last_sent_s = now_s
            await self._send(self._twilio.dtmf(turn.turn.spec.dtmf))

        frame, voiced, turn = self._frames.popleft() if self._frames else (SILENCE_FRAME, False, None)
        if turn is not None:
            if turn.start_ms is None:
                turn.start_ms = position_ms
            turn.end_ms = position_ms + FRAME_MS
            if voiced:
                self._playback.caller_spoke()
                if turn.voiced_start_ms is None:
                    turn.voiced_start_ms = position_ms
                    self._caller_onset(turn, now_s)
                turn.voiced_end_ms = position_ms + FRAME_MS
                turn.last_sent_s = now_s
        await self._send(self._twilio.media(frame, position_ms))
        self.log.caller_track += frame

    async def _echo_marks(self, names: Sequence[str], reached: bool) -> None:
        """Echo marks to the server, as Twilio does when playback reaches them or they are cleared."""
        for name in names:
            await self._send(self._twilio.mark(name))
            self.log.marks_echoed += 1
            self.log.marks.append(MarkLog(name, self._tick * FRAME_MS, reached))

    def _caller_onset(self, turn: TurnLog, now_s: float) -> None:
        """The caller starts speaking (or presses a key): over buffered agent audio, that is a barge-in."""
        turn.first_sent_s = now_s
        if self._playback.buffered_frames:
            turn.barge_in_buffered_ms = self._playback.buffered_frames * FRAME_MS
            self._barge_in = turn

    async def _receive(self, ws: ClientConnection) -> None:
        try:
            async for message in ws:
                await self._on_message(message)
        except ConnectionClosed:
            pass
        finally:
            received = ws.protocol.close_rcvd
            self.log.close_code = received.code if received is not None else None
            if self.log.ended_by is None:
                # Neither `stop` nor a hang-up from our side: the server ended the stream (or the line broke).
                if received is None:
                    self.log.ended_by = EndedBy.ERROR
                    self.log.detail = "the connection broke without a close frame"
                    self._say("connection lost")
                else:
                    self.log.ended_by = EndedBy.SERVER_CLOSED
                    self._say(f"server closed the stream (code {received.code})")
            self._closed.set()

    async def _on_message(self, message: str | bytes) -> None:
        now_s = self._now_s()
        try:
            event = check_server_message(message, self._twilio.stream_sid)
        except ServerProtocolError as violation:
            self.log.violations += 1
            if len(self.log.violation_examples) < MAX_VIOLATION_EXAMPLES:
                self.log.violation_examples.append(f"{now_s * 1000:.0f} ms: {violation}")
            self._say(f"PROTOCOL VIOLATION: {violation}")
            return
        match event:
            case AgentMedia(frame=frame):
                self._playback.add_media(frame)
                self.log.agent_media_s.append(now_s)
                self.log.frames_received += 1
            case AgentMark(name=name):
                self._playback.add_mark(name)
            case AgentClear():
                self.log.clears_ms.append(now_s * 1000)
                if self._barge_in is not None and self._barge_in.first_sent_s is not None:
                    self._barge_in.barge_in_clear_ms = (now_s - self._barge_in.first_sent_s) * 1000
                    self._barge_in = None
                await self._echo_marks(self._playback.clear(), reached=False)

    async def _run_script(self) -> bool:
        """Play the turns in order. Returns True when the last turn hangs up."""
        if self._call.source.fixture.wait_for_greeting:
            note = await self._wait_for_reply(since_s=0.0, gap_ms=DEFAULT_GAP_MS)
            self._say(f"greeting played{f' ({note})' if note else ''}")
        for turn in self.log.turns:
            spec = turn.turn.spec
            if self._closed.is_set():
                turn.note = "not played: the stream had ended"
                continue
            if isinstance(spec, HangupTurn):
                turn.played = True
                return True
            turn.played = True
            if isinstance(spec, DtmfTurn):
                self._keys.append(turn)
            else:
                self._frames.extend(
                    zip(turn.turn.frames, turn.turn.voiced, [turn] * len(turn.turn.frames), strict=True)
                )
            await self._wait_until(lambda: not self._frames and not self._keys, timeout_s=None)
            if spec.wait == "reply" and not self._closed.is_set():
                # A pause answers nothing: wait only for the agent to be quiet. Otherwise wait for the answer to
                # start after the turn's last voiced frame (or its end, when nothing in it was voiced).
                since_s = None if isinstance(spec, PauseTurn) else (turn.last_sent_s or self._now_s())
                turn.note = await self._wait_for_reply(since_s, spec.gap_ms)
            self._say(self._turn_line(turn))
        return False

    # --- waiting --------------------------------------------------------------------------------------------------

    async def _wait_until(self, condition: Callable[[], bool], timeout_s: float | None) -> bool:
        """Poll `condition` until it holds (True), the stream ends or the timeout passes (False)."""
        deadline = None if timeout_s is None else time.perf_counter() + timeout_s
        while not condition():
            if self._closed.is_set() or (deadline is not None and time.perf_counter() >= deadline):
                return False
            await asyncio.sleep(_POLL_S)
        return True

    async def _wait_for_reply(self, since_s: float | None, gap_ms: int) -> str | None:
        """Wait until the agent's answer has started (after `since_s`), been played in full and `gap_ms` passed.

        Returns:
            None, or a note when no answer came within `REPLY_TIMEOUT_S`.
        """
        media = self.log.agent_media_s
        if since_s is not None:
            started = await self._wait_until(lambda: bool(media) and media[-1] > since_s, REPLY_TIMEOUT_S)
            if not started and not self._closed.is_set():
                return f"no agent audio within {REPLY_TIMEOUT_S:.0f} s"
        # An answer may come as several sentences: it is over when playback has stayed idle (every frame played,
        # every mark echoed) for the whole gap.
        quiet_since: float | None = None
        while not self._closed.is_set():
            now = time.perf_counter()
            if not self._playback.idle:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = now
            elif now - quiet_since >= gap_ms / 1000:
                return None
            await asyncio.sleep(_POLL_S)
        return None

    # --- results ----------------------------------------------------------------------------------------------

    def _turn_line(self, turn: TurnLog) -> str:
        line = f"turn {turn.turn.index} {turn.turn.describe()}"
        if turn.barge_in_buffered_ms is not None:
            line += f"; barged in over {turn.barge_in_buffered_ms} ms of agent audio"
            line += f", clear after {ms_text(turn.barge_in_clear_ms)}"
        reply_ms = self._latency_ms(turn)
        if reply_ms is not None:
            line += f"; agent answered after {reply_ms:.0f} ms"
        if turn.note:
            line += f"; {turn.note}"
        return line

    def _latency_ms(self, turn: TurnLog) -> float | None:
        """First agent frame received after the turn's last voiced frame, before the next turn's first one."""
        if turn.last_sent_s is None or isinstance(turn.turn.spec, PauseTurn | HangupTurn):
            return None
        later = [other.first_sent_s for other in self.log.turns if other.turn.index > turn.turn.index]
        bound = next((value for value in later if value is not None), math.inf)
        media = self.log.agent_media_s
        position = bisect.bisect_right(media, turn.last_sent_s)
        if position < len(media) and media[position] < bound:
            return (media[position] - turn.last_sent_s) * 1000
        return None

    def _summarise(self) -> None:
        log = self.log
        log.duration_ms = len(log.caller_track) // FRAME_BYTES * FRAME_MS
        log.greeting_first_audio_ms = log.agent_media_s[0] * 1000 if log.agent_media_s else None
        log.frames_played = self._playback.frames_played
        log.frames_cleared = self._playback.frames_cleared
        log.underruns = self._playback.underruns
        log.underrun_ms = self._playback.underrun_ms
        log.longest_underrun_ms = self._playback.longest_underrun_ms
        for turn in log.turns:
            turn.response_latency_ms = self._latency_ms(turn)


async def _cancel(task: asyncio.Task[Any]) -> None:
    if not task.done():
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


# --- running --------------------------------------------------------------------------------------------------------


async def replay_calls(
    calls: Sequence[PreparedCall],
    report_dir: Path,
    *,
    server_url: str | None = None,
    token: str | None = None,
    in_process: InProcessServer | None = None,
    parallel: int = 1,
    progress: Progress = progress_to_stderr,
    on_call_done: Callable[[CallReport], None] | None = None,
    inline_audio: bool | None = None,
    credentials: TwilioCredentials | None = None,
) -> ReplayResult:
    """Replay prepared calls against a server and write the report.

    Args:
        calls: the calls, with their caller audio made.
        report_dir: the folder for the report (created if needed).
        server_url: the media-stream URL of a running server; or None with `in_process`.
        token: with `server_url`, an agent or admin token of the server's call API, to read each call's
            transcripts and decisions; without one they are reported as missing.
        in_process: a started `InProcessServer`, whose app also tells the transcripts and decisions.
        parallel: how many calls to replay at once (1, the default, keeps one call's latencies free of the
            others' work; more is faster, and the latencies then include the calls' competition for the CPU).
        progress: gets one line per event.
        on_call_done: called with each call's report as soon as it is written.
        inline_audio: recordings inside report.html (True) or linked beside it (False); default: inline for up to
            `qa.html_report.INLINE_AUDIO_MAX_CALLS` calls.
        credentials: with `server_url`, what to sign Twilio's requests with; default: TWILIO_AUTH_TOKEN and
            VOICE_AGENT_PUBLIC_URL from the environment, as the server reads them.

    Returns:
        The reports of the calls, in the order given.

    Raises:
        qa.server.ReplayError: the call API refuses `token` (checked before any call is played) or is unreachable.
    """
    if in_process is not None:
        ws_url, http_base, server_name = in_process.ws_url, in_process.http_base, "in-process server"
        auth = in_process.settings.twilio_auth_token
        credentials = TwilioCredentials(auth.get_secret_value() if auth else None, in_process.settings.public_url)
    elif server_url is not None:
        import os

        ws_url, http_base, server_name = server_url, http_base_of(server_url), server_url
        if credentials is None:
            credentials = TwilioCredentials(
                os.environ.get("TWILIO_AUTH_TOKEN") or None, os.environ.get("VOICE_AGENT_PUBLIC_URL") or None
            )
    else:
        raise ValueError("give server_url or in_process")
    if parallel < 1:
        raise ValueError(f"parallel must be at least 1, got {parallel}")
    api_token = token if in_process is None else None
    if api_token:
        await check_token(http_base, api_token)
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    slots = asyncio.Semaphore(parallel)

    async def one(call: PreparedCall) -> CallReport:
        missing = SERVER_DATA_MISSING
        view: ServerView | None = None
        async with slots:
            log = await _CallRunner(call, ws_url, http_base, credentials, progress).run()
            if in_process is not None:
                view = await in_process.view(log.twilio.call_sid)
            elif api_token:
                try:
                    view = await fetch_view(http_base, log.twilio.call_sid, api_token)
                except CallApiError as error:
                    missing = f"transcripts and decisions are not available: {error}"
                    progress(f"[{call.name}] {missing}")
            after_stream = await fetch_after_stream(http_base, log.twilio, credentials)
        report = write_call_report(report_dir, log, server_name, view, after_stream, missing)
        if on_call_done is not None:
            on_call_done(report)
        return report

    reports = list(await asyncio.gather(*(one(call) for call in calls)))
    result = write_summary(report_dir, reports, server_name)
    return write_html_report(result, inline_audio)


def run_replay(
    paths: Sequence[Path],
    report_dir: Path = Path("replay-report"),
    *,
    server_url: str | None = None,
    token: str | None = None,
    parallel: int = 1,
    services: VoiceServices | Sequence[VoiceServices] | None = None,
    progress: Progress = progress_to_stderr,
    on_call_done: Callable[[CallReport], None] | None = None,
    inline_audio: bool | None = None,
) -> ReplayResult:
    """Load, prepare and replay fixture calls, in-process unless `server_url` is given; write the report.

    In-process, the calls of each language are served by a server of that language, one language after the other
    (a running server speaks one language, so `server_url` takes calls of one language only).

    Args:
        paths: fixture call files, or folders of them (a suite: every ``*.json`` inside, in name order).
        report_dir: the folder for the report.
        server_url: ``ws://host:port/twilio/media`` of a running server, or None to run the app in this process.
        token: with `server_url`, an agent or admin token of its call API (transcripts and decisions); ignored
            in-process, where the app is read directly.
        parallel: how many calls to replay at once.
        services: for the in-process servers, models already loaded in this process (one set per language, each
            used for the calls of its catalogue's language); default: load them.
        progress: gets one line per event.
        on_call_done: called with each call's report as soon as it is written.
        inline_audio: as `replay_calls` takes it.

    Returns:
        The reports; `ReplayResult.exit_code` is the command's exit code.

    Raises:
        qa.fixtures.FixtureError: a fixture is invalid, or calls of several languages are given with `server_url`
            (raised before anything is played).
        ValueError: `server_url` is not a ws:// or wss:// URL.
        voice.models.ModelNotFound, qa.server.ReplayError: the in-process server cannot start, or the running
            server's call API refuses `token`.
    """
    loaded = load_fixtures(paths)
    languages = list(dict.fromkeys(item.fixture.language for item in loaded))
    if server_url is not None:
        http_base_of(server_url)
        if len(languages) > 1:
            raise FixtureError(
                f"the calls are in {' and '.join(languages)}, and a running server speaks one language: replay each "
                "language's calls separately, or in-process (without --server), which serves each in its language"
            )
    else:
        for language in languages:
            _check_against_catalogue([item for item in loaded if item.fixture.language == language], language)
    voice = CallerVoice()
    calls = [prepare_call(item, voice) for item in loaded]
    progress(f"{len(calls)} calls prepared; replaying against {server_url or 'an in-process server'}")
    options = {"parallel": parallel, "progress": progress, "on_call_done": on_call_done, "inline_audio": inline_audio}
    if server_url is not None:
        return asyncio.run(replay_calls(calls, report_dir, server_url=server_url, token=token, **options))
    # The replayed calls' records go into the report folder, never among the real callers' records.
    report_dir.mkdir(parents=True, exist_ok=True)
    database_url = f"sqlite:///{(report_dir / REPLAY_DATABASE_FILE).resolve()}"
    loaded_services = _by_language(services)
    results = []
    # One server per language, one after the other: a server speaks the language of its catalogue.
    for language in languages:
        group = [call for call in calls if call.source.fixture.language == language]
        shared = loaded_services.get(language)
        # Every replayed call is admitted through /twilio/voice: the server must take `parallel` at once.
        with InProcessServer(language, shared, database_url, min_calls=parallel) as server:
            if server.voice_note:
                progress(server.voice_note)
            results.append(asyncio.run(replay_calls(group, report_dir, in_process=server, **options)))
    if len(results) == 1:
        return results[0]
    order = {call.name: index for index, call in enumerate(calls)}
    reports = sorted((report for result in results for report in result.calls), key=lambda report: order[report.name])
    return write_html_report(write_summary(report_dir, reports, "in-process server"), inline_audio)


def _by_language(services: VoiceServices | Sequence[VoiceServices] | None) -> dict[str, VoiceServices]:
    if services is None:
        return {}
    shared = [services] if not isinstance(services, Sequence) else list(services)
    return {item.engine.catalogue.language: item for item in shared}


REPLAY_DATABASE_FILE = "calls.sqlite3"
"""The in-process server's call records, in the report folder."""


def _check_against_catalogue(loaded: Sequence[LoadedFixture], language: str) -> None:
    """The in-process server's catalogue must know every intent and department the expectations name."""
    from telephony.settings import load_settings
    from voice.prompts import load_catalogue

    settings = load_settings(language=language)
    catalogue = load_catalogue(settings.prompts_dir, settings.language)
    check_catalogue_names(loaded, catalogue.intents, catalogue.departments)
