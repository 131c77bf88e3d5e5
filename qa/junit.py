"""JUnit XML of a replay run, for CI systems (`voice-agent replay --junit FILE`).

    <testsuite name="voice-agent replay" tests=calls failures=failed calls>
      <testcase classname="replay" name=call time=seconds>
        <failure type="expectation|protocol|incomplete" message=...>  one per problem (`qa.report.call_problems`)
        <system-out>  the call's transcript: each turn, what the server heard, each decision

Written with the standard library's ElementTree (which escapes every text from a call).
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

from qa.report import CallReport, ReplayResult, call_problems, decision_text, input_text

SUITE_NAME = "voice-agent replay"
CLASS_NAME = "replay"


def transcript_text(data: dict[str, Any]) -> str:
    """A call's transcript in plain lines: the greeting, then per turn the caller's input, what the server heard
    and the decisions that answered it."""
    lines = [f"call {data['name']} ({data['call_sid']}), {data['server_data']}"]
    greeting = data["greeting"]["exchange"]
    if greeting is not None:
        lines.append(f"greeting: {decision_text(greeting['decision'])}: {greeting['decision']['reply']}")
    for turn in data["turns"]:
        lines.append(f"turn {turn['index']}: {input_text(turn['input'])}" + ("" if turn["played"] else " (not played)"))
        if turn["transcript"]:
            lines.append(f"  heard: {turn['transcript']}")
        for exchange in turn["exchanges"] or ():
            decision = exchange["decision"]
            lines.append(f"  decision: {decision_text(decision)}: {decision['reply']}")
            lines += [f"    reason: {reason}" for reason in decision["reasons"]]
    return "\n".join(lines) + "\n"


def _testcase(suite: ElementTree.Element, report: CallReport) -> None:
    data = report.data
    case = ElementTree.SubElement(
        suite, "testcase", classname=CLASS_NAME, name=report.name, time=f"{data['duration_ms'] / 1000:.3f}"
    )
    for problem in call_problems(report):
        failure = ElementTree.SubElement(case, "failure", type=problem.kind, message=problem.message)
        failure.text = problem.message
    ElementTree.SubElement(case, "system-out").text = transcript_text(data)


def junit_xml(result: ReplayResult) -> ElementTree.ElementTree:
    """The run as a JUnit document: one testsuite, one testcase per call, a failure per problem of the call."""
    suite = ElementTree.Element(
        "testsuite",
        name=SUITE_NAME,
        tests=str(len(result.calls)),
        failures=str(sum(bool(call_problems(report)) for report in result.calls)),
        errors="0",
        skipped="0",
        time=f"{sum(report.data['duration_ms'] for report in result.calls) / 1000:.3f}",
    )
    for report in result.calls:
        _testcase(suite, report)
    ElementTree.indent(suite)
    return ElementTree.ElementTree(suite)


def write_junit(result: ReplayResult, path: Path) -> None:
    """Write the run's JUnit XML to `path` (UTF-8, with an XML declaration); its folder is created if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    junit_xml(result).write(path, encoding="utf-8", xml_declaration=True)
