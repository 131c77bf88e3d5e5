"""The QA replay's HTML report (``report.html``), which opens offline from the report folder.

    ReplayResult -> per call: a timeline picture (inline SVG: caller speech and agent audio as bars on a time
        axis, each response latency, decisions and barge-ins marked; a click plays the recording from there), the
        transcript with each decision's reasons, the expectations, and the stereo recording
    -> qa/templates/report.html.j2 (Jinja2, autoescaped: every text from a call is escaped)

Nothing is fetched from outside the folder: the CSS, the SVG and a few lines of script (a playhead that follows the
audio, seeking on click) are in the file. The recording is the 8 kHz stereo WAV the replay writes (about 32 kB per
second of call): for up to `INLINE_AUDIO_MAX_CALLS` calls inside the file as a base64 data URI (one file to send
around), for more a relative link to the call's WAV beside report.html, so that a large suite's page stays small.
"""

from __future__ import annotations

import base64
import math
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from qa.expect import Status
from qa.report import (
    CallReport,
    ReplayResult,
    expectations_text,
    input_text,
    latency_text,
    median_latency_ms,
    ms_text,
    result_text,
)

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
HTML_NAME = "report.html"
INLINE_AUDIO_MAX_CALLS = 10
"""Up to this many calls the recordings are inside report.html; beyond, it links to the WAV files beside it (each
minute of call is about 2.5 MB of base64: a 100-call suite would make a page of over 100 MB)."""

# The timeline's geometry, in SVG user units (the picture scales to the page width).
WIDTH = 1000
LEFT = 64
RIGHT = 16
PLOT = WIDTH - LEFT - RIGHT
HEIGHT = 150
DECISION_ROWS_Y = (14, 28)
AGENT_Y, CALLER_Y, LANE_H = 38, 70, 20
LATENCY_Y = 104
AXIS_Y = 128
LABEL_MIN_GAP = 150
"""Decision labels closer than this to the previous one go to the other row, so that they do not overlap."""
LABEL_ROOM = 190
"""A decision label nearer the right edge than this is written to the left of its marker."""
_TICK_STEPS_S = (1, 2, 5, 10, 20, 30, 60, 120, 300)
_MAX_TICKS = 16


@dataclass(slots=True)
class Timeline:
    """The shapes of one call's timeline picture; every x is in SVG units, every `title` a tooltip, every `at_ms`
    the time on the recording that a click on the shape plays from."""

    duration_ms: int
    caller_bars: list[dict[str, Any]] = field(default_factory=list)
    agent_bars: list[dict[str, Any]] = field(default_factory=list)
    key_presses: list[dict[str, Any]] = field(default_factory=list)
    latencies: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    barge_ins: list[dict[str, Any]] = field(default_factory=list)
    clears: list[dict[str, Any]] = field(default_factory=list)
    ticks: list[dict[str, Any]] = field(default_factory=list)


def _scale(duration_ms: int) -> float:
    return PLOT / max(duration_ms, 1)


def _tick_step_s(duration_ms: int) -> int:
    return next((step for step in _TICK_STEPS_S if duration_ms / 1000 / step <= _MAX_TICKS), _TICK_STEPS_S[-1])


def _decision_label(decision: dict[str, Any]) -> str:
    label = decision["intent"] or ("greeting" if decision["rule"] == "greeting" else "not understood")
    label += f" · {decision['action']}"
    if decision["department"]:
        label += f" → {decision['department']}"
    return label


def _reply_start_ms(stretches: list[dict[str, int]], after_ms: float) -> float | None:
    """Where the first stretch of agent audio at or after `after_ms` starts."""
    return next((item["start_ms"] for item in stretches if item["start_ms"] >= after_ms), None)


def build_timeline(data: dict[str, Any]) -> Timeline:
    """The shapes of a call's timeline picture, from its report data.

    Args:
        data: one call's report data (`qa.report`), with its ``timeline``.

    Returns:
        Bars, markers and axis ticks, placed on a `WIDTH`-wide picture.
    """
    source = data["timeline"]
    duration = max(source["duration_ms"], 1)
    scale = _scale(duration)

    def x(ms: float) -> float:
        return round(LEFT + min(max(ms, 0), duration) * scale, 1)

    def width(start_ms: float, end_ms: float) -> float:
        return round(max((min(end_ms, duration) - max(start_ms, 0)) * scale, 1.0), 1)

    timeline = Timeline(duration_ms=duration)
    turns = {turn["index"]: turn for turn in data["turns"]}
    for speech in source["caller_speech"]:
        turn = turns[speech["turn"]]
        heard = f", heard as {turn['transcript']!r}" if turn["transcript"] else ""
        timeline.caller_bars.append(
            {
                "x": x(speech["start_ms"]),
                "width": width(speech["start_ms"], speech["end_ms"]),
                "label": f"{speech['turn']}",
                "at_ms": speech["start_ms"],
                "title": f"caller, turn {speech['turn']}: {ms_text(speech['start_ms'])}-{ms_text(speech['end_ms'])}"
                f"{heard}",
            }
        )
    for key in source["key_presses"]:
        timeline.key_presses.append(
            {
                "x": x(key["at_ms"]),
                "at_ms": key["at_ms"],
                "label": key["digit"],
                "title": f"key {key['digit']} at {ms_text(key['at_ms'])}",
            }
        )
    stretches = source["agent_audio"]
    for stretch in stretches:
        timeline.agent_bars.append(
            {
                "x": x(stretch["start_ms"]),
                "width": width(stretch["start_ms"], stretch["end_ms"]),
                "at_ms": stretch["start_ms"],
                "title": f"agent audio played {ms_text(stretch['start_ms'])}-{ms_text(stretch['end_ms'])}",
            }
        )

    placed: list[tuple[float, dict[str, Any]]] = []
    greeting = data["greeting"]["exchange"]
    if greeting is not None and stretches:
        placed.append((stretches[0]["start_ms"], greeting["decision"]))
    for turn in data["turns"]:
        end_ms = turn["voiced_end_ms"] if turn["kind"] != "dtmf" else turn["start_ms"]
        if end_ms is None:
            continue
        latency = turn["response_latency_ms"]
        if latency is not None:
            timeline.latencies.append(
                {
                    "x1": x(end_ms),
                    "x2": x(end_ms + latency),
                    "at_ms": end_ms,
                    "label": ms_text(latency),
                    "title": f"turn {turn['index']}: response latency {ms_text(latency)} (last voiced frame sent -> "
                    "first agent frame received)",
                }
            )
        start = _reply_start_ms(stretches, end_ms)
        if start is None and latency is not None:
            start = end_ms + latency
        for exchange in turn["exchanges"] or ():
            placed.append((start if start is not None else end_ms, exchange["decision"]))
        if turn["barge_in"] is not None:
            onset = turn["voiced_start_ms"] if turn["kind"] != "dtmf" else turn["start_ms"]
            barge_in = turn["barge_in"]
            timeline.barge_ins.append(
                {
                    "x": x(onset),
                    "at_ms": onset,
                    "title": f"turn {turn['index']} barged in over {barge_in['agent_audio_buffered_ms']} ms of agent "
                    f"audio; clear after {ms_text(barge_in['clear_after_ms'])}",
                }
            )
    for clear_ms in data["agent_audio"]["clears_at_ms"]:
        timeline.clears.append({"x": x(clear_ms), "at_ms": clear_ms, "title": f"clear received at {ms_text(clear_ms)}"})

    last_x = {row: -math.inf for row in DECISION_ROWS_Y}
    for at_ms, decision in sorted(placed, key=lambda item: item[0]):
        position = x(at_ms)
        row = DECISION_ROWS_Y[0] if position - last_x[DECISION_ROWS_Y[0]] >= LABEL_MIN_GAP else DECISION_ROWS_Y[1]
        last_x[row] = position
        timeline.decisions.append(
            {
                "x": position,
                "at_ms": at_ms,
                "y": row,
                "anchor": "end" if position > WIDTH - LABEL_ROOM else "start",
                "label": _decision_label(decision),
                "title": f"{_decision_label(decision)} (rule {decision['rule']})",
            }
        )

    step_s = _tick_step_s(duration)
    for second in range(0, duration // 1000 + 1, step_s):
        timeline.ticks.append({"x": x(second * 1000), "label": f"{second} s"})
    return timeline


def _turn_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The transcript: the greeting, then each caller turn with the decisions that answered it."""
    rows = []
    greeting = data["greeting"]["exchange"]
    if greeting is not None:
        rows.append({"who": "greeting", "caller": None, "heard": None, "exchanges": [greeting], "turn": None})
    for turn in data["turns"]:
        rows.append(
            {
                "who": f"turn {turn['index']}",
                "caller": turn["input"],
                "heard": turn["transcript"],
                "exchanges": turn["exchanges"] or [],
                "turn": turn,
            }
        )
    for exchange in data["other_exchanges"] or ():
        rows.append({"who": "server", "caller": None, "heard": None, "exchanges": [exchange], "turn": None})
    return rows


def _audio_source(report: CallReport, html_dir: Path, inline: bool) -> str | None:
    """The recording's ``src``: a data URI, or the WAV's path relative to the report page (None without a WAV)."""
    if not report.wav_path.exists():
        return None
    if inline:
        return "data:audio/wav;base64," + base64.b64encode(report.wav_path.read_bytes()).decode("ascii")
    return Path(os.path.relpath(report.wav_path.resolve(), html_dir.resolve())).as_posix()


def _call_view(report: CallReport, index: int, html_dir: Path, inline_audio: bool) -> dict[str, Any]:
    data = report.data
    return {
        "index": index,
        "name": report.name,
        "description": data["description"],
        "result": result_text(report),
        "passed": report.passed,
        "data": data,
        "timeline": build_timeline(data),
        "rows": _turn_rows(data),
        "checks": report.checks,
        "expectations": expectations_text(data),
        "median_latency": ms_text(median_latency_ms(data)),
        "audio": _audio_source(report, html_dir, inline_audio),
    }


def inline_audio_default(calls: int) -> bool:
    """Whether recordings go inside report.html when the command does not say: up to `INLINE_AUDIO_MAX_CALLS`."""
    return calls <= INLINE_AUDIO_MAX_CALLS


def render_html(result: ReplayResult, inline_audio: bool | None = None) -> str:
    """The run's report as one HTML document, for ``report.html`` in the run's report folder.

    Args:
        result: the run.
        inline_audio: recordings as data URIs inside the page (True) or links to the WAV files beside it (False);
            default: `inline_audio_default`.
    """
    if inline_audio is None:
        inline_audio = inline_audio_default(len(result.calls))
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR), autoescape=True, undefined=StrictUndefined, trim_blocks=True
    )
    environment.globals.update(ms_text=ms_text, input_text=input_text, latency_text=latency_text, Status=Status)
    template = environment.get_template("report.html.j2")
    return template.render(
        calls=[_call_view(report, index, result.report_dir, inline_audio) for index, report in enumerate(result.calls)],
        server=result.calls[0].data["server"] if result.calls else "-",
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        failed=sum(not report.passed for report in result.calls),
        geometry={
            "width": WIDTH,
            "height": HEIGHT,
            "left": LEFT,
            "plot": PLOT,
            "agent_y": AGENT_Y,
            "caller_y": CALLER_Y,
            "lane_h": LANE_H,
            "latency_y": LATENCY_Y,
            "axis_y": AXIS_Y,
        },
    )


def write_html_report(result: ReplayResult, inline_audio: bool | None = None) -> ReplayResult:
    """Write ``report.html`` into the run's report folder.

    Args:
        result: the run.
        inline_audio: as `render_html` takes it.

    Returns:
        The result with `html_path` set.
    """
    path = result.report_dir / HTML_NAME
    path.write_text(render_html(result, inline_audio), encoding="utf-8")
    return ReplayResult(
        calls=result.calls, report_dir=result.report_dir, summary_path=result.summary_path, html_path=path
    )
