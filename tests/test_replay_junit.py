"""`voice-agent replay --junit FILE`: JUnit XML for CI systems, read back with the standard library's ElementTree.

Made from hand-made call reports (one that passed, one that failed an expectation and broke the protocol, one that
did not complete), so each element can be checked against what the report says; the replay itself writes it in
test_replay_server.py.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path

from qa.expect import IN_PROCESS_DATA, Check, Status
from qa.junit import write_junit
from qa.report import CallReport, ReplayResult

DECISION = {
    "intent": "billing_question",
    "confidence": 0.91,
    "action": "reply",
    "reply": "I can help with your bill.",
    "rule": "intent",
    "department": None,
    "transfer_reason": None,
    "reasons": ["matched 'bill'"],
}


def _call(name: str, *, violations: list[str] = (), completed: bool = True, checks: tuple[Check, ...] = ()):
    data = {
        "name": name,
        "call_sid": "CA" + "1" * 32,
        "server_data": IN_PROCESS_DATA,
        "duration_ms": 12_340,
        "completed": completed,
        "ended": {"by": "stop_sent" if completed else "error", "detail": "the connection broke", "close_code": None},
        "greeting": {"exchange": {"decision": DECISION | {"intent": None, "rule": "greeting", "reply": "Hello."}}},
        "turns": [
            {
                "index": 1,
                "input": {"say": "A question about my bill & <stuff>."},
                "played": True,
                "transcript": "a question about my bill & <stuff>",
                "exchanges": [{"decision": DECISION}],
            },
            {"index": 2, "input": {"hangup": True}, "played": False, "transcript": None, "exchanges": []},
        ],
        "protocol": {"violations": len(violations), "examples": list(violations), "server_reported_errors": 0},
    }
    ok = completed and not violations
    return CallReport(name, ok, data, Path(f"{name}.json"), Path(f"{name}.wav"), checks)


def test_one_testcase_per_call_and_a_failure_per_problem(tmp_path):
    wrong = Check("turn 1 expect.intent", Status.FAILED, "'payment'", "'billing_question'")
    held = Check("expect.no_talking_over", Status.PASSED, "no talking over", "none")
    calls = (
        _call("all_good", checks=(held,)),
        _call("two_problems", violations=["40 ms: media for stream 'MZother'"], checks=(wrong, held)),
        _call("broke_off", completed=False),
    )
    path = tmp_path / "ci" / "replay.xml"
    write_junit(ReplayResult(calls=calls, report_dir=tmp_path, summary_path=tmp_path / "summary.md"), path)

    suite = ElementTree.parse(path).getroot()
    assert suite.tag == "testsuite" and suite.get("name") == "voice-agent replay"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "2", "0")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert list(cases) == ["all_good", "two_problems", "broke_off"]
    assert cases["all_good"].get("time") == "12.340" and cases["all_good"].get("classname") == "replay"
    assert cases["all_good"].findall("failure") == []

    failures = cases["two_problems"].findall("failure")
    assert [(failure.get("type"), failure.get("message")) for failure in failures] == [
        ("expectation", "turn 1 expect.intent: expected 'payment'; got 'billing_question'"),
        ("protocol", "protocol violation at 40 ms: media for stream 'MZother'"),
    ]
    [incomplete] = cases["broke_off"].findall("failure")
    assert incomplete.get("type") == "incomplete" and "the connection broke" in incomplete.get("message")

    # The transcript, turns counted from 1, with what was heard and each decision with its reasons (escaped and
    # read back whole).
    out = cases["all_good"].find("system-out").text
    assert "turn 1: say: A question about my bill & <stuff>." in out
    assert "heard: a question about my bill & <stuff>" in out
    assert "decision: reply (intent, billing_question 0.91): I can help with your bill." in out
    assert "reason: matched 'bill'" in out
    assert "turn 2: hang up (not played)" in out
