"""The QA replay suite: every fixture call in audio_fixtures/calls meets its expectations, and a wrong expectation
fails the command with exit code 1 and a message that says what was expected and what happened.

The suite is the session's replay (`suite_replay` in conftest.py); the wrong expectation is one short extra call
(a key press a second into the greeting) through `voice-agent replay`'s own function with the session's models.
The checks themselves are tested on small hand-made reports at the end.
"""

from __future__ import annotations

import json
import statistics

import pytest

from qa.command import replay_command
from qa.expect import CallExpect, Status, TurnExpect, check_call, talking_over
from qa.report import ReplayResult
from voice.pipeline import EARLY_REPLY_CONFIRMED

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

COVERED = {
    # what the suite must cover -> (call, turn number from 1, the rule that shows it)
    "a transfer by key 0": ("press_zero", 2, "dtmf_zero"),
    "a request for a person": ("billing_then_agent", 2, "human_request"),
    "a sensitive case": ("stolen_phone", 1, "sensitive"),
    "a goodbye": ("goodbye", 2, "intent"),
    "the honest answer to 'are you a robot'": ("are_you_a_robot", 2, "ai_question"),
    "a turn not understood": ("are_you_a_robot", 1, "not_understood"),
    # The same promises in Dutch, against a Dutch server (callers: espeak-ng Dutch, audio_fixtures/make_dutch_calls.py)
    "in Dutch, a transfer by key 0": ("nl_toets_nul", 2, "dtmf_zero"),
    "in Dutch, a request for a person": ("nl_rekening_dan_medewerker", 2, "human_request"),
    "in Dutch, a sensitive case": ("nl_gestolen_telefoon", 1, "sensitive"),
    "in Dutch, the honest answer to 'ben jij een robot'": ("nl_ben_jij_een_robot", 1, "ai_question"),
}


def test_every_fixture_call_meets_its_expectations(suite_replay: ReplayResult):
    failures = [f"{call.name}: {check.message}" for call in suite_replay.calls for check in call.failed_checks]
    assert failures == []
    assert suite_replay.exit_code == 0
    for call in suite_replay.calls:
        counts = call.data["expectations"]
        assert counts["failed"] == 0 and counts["unchecked"] == 0, call.name
        # Every call checks the two promises and states its outcome.
        fields = {check.field for check in call.checks}
        assert {"expect.ai_disclosure", "expect.no_talking_over", "expect.outcome"} <= fields, call.name


def test_the_suite_covers_the_cases_qa_asked_for(suite_replay: ReplayResult):
    calls = {call.name: call.data for call in suite_replay.calls}
    for case, (name, number, rule) in COVERED.items():
        turn = calls[name]["turns"][number - 1]
        assert turn["index"] == number, case
        assert turn["input"]["expect"] is not None, case
        assert turn["exchanges"][-1]["decision"]["rule"] == rule, case
    assert calls["goodbye"]["ended"]["outcome"]["action"] == "end"
    # Barge-ins are in the suite too, and the no-talking-over check passed through them.
    assert calls["barge_in"]["turns"][1]["barge_in"] is not None


def test_the_dutch_calls_are_answered_in_dutch(suite_replay: ReplayResult):
    dutch = [call for call in suite_replay.calls if call.name.startswith("nl_")]
    assert len(dutch) >= 5
    for call in dutch:
        greeting = call.data["greeting"]["exchange"]["decision"]["reply"]
        assert greeting.startswith("Hallo, dit is de geautomatiseerde AI-assistent"), call.name
    robot = next(call.data for call in dutch if call.name == "nl_ben_jij_een_robot")
    assert "AI" in robot["turns"][0]["exchanges"][-1]["decision"]["reply"]


def test_every_spoken_answer_carries_the_servers_latency_budget_in_order(suite_replay: ReplayResult):
    differences = []
    for call in suite_replay.calls:
        for turn in call.data["turns"]:
            spoken = [item for item in turn["exchanges"] or () if item["caller"] and "text" in item["caller"]]
            for exchange in spoken:
                latency = exchange["latency"]
                where = f"{call.name} turn {turn['index']}"
                assert latency is not None, where
                assert latency["end_of_turn_rule"] and latency["anchor"] in ("energy", "vad"), where
                stages = [latency["silence_detected_ms"], latency["end_of_turn_ms"], latency["first_audio_ms"]]
                if latency["end_of_turn_rule"] != "max_turn":
                    assert None not in stages[:2] and 0 <= stages[0] <= stages[1], where
                if latency["first_audio_ms"] is None:
                    assert exchange["interrupted"], where  # only a reply the caller spoke over sends nothing
                    continue
                if EARLY_REPLY_CONFIRMED in exchange["decision"]["reasons"]:
                    # Started from a partial transcript before the end of the turn and the final transcript.
                    assert stages[0] <= stages[2], where
                    continue
                assert stages[1] <= stages[2] and latency["transcript_ready_ms"] <= stages[2], where
            answered = [item["latency"]["first_audio_ms"] for item in spoken if item["latency"]["first_audio_ms"]]
            if len(spoken) == 1 and answered and turn["response_latency_ms"] is not None:
                differences.append(answered[0] - turn["response_latency_ms"])
    # The server's figure (last voiced frame arrived -> first audio sent) is the replay's (last voiced frame sent ->
    # first agent frame received), less the socket in between: they agree.
    assert len(differences) >= 5
    assert abs(statistics.median(differences)) <= 50.0, differences


def test_a_wrong_expectation_fails_with_what_was_expected_and_what_happened(voice_services, tmp_path, capsys):
    fixture = {
        "name": "wrong_expectation",
        "description": "Presses 0 during the greeting but claims the call goes to billing and ends.",
        "wait_for_greeting": False,
        "turns": [{"pause_ms": 1000}, {"dtmf": "0", "expect": {"action": "transfer", "department": "billing"}}],
        "expect": {"outcome": "end"},
    }
    path = tmp_path / "wrong.json"
    path.write_text(json.dumps(fixture), encoding="utf-8")

    code = replay_command([path], tmp_path / "report", services=voice_services)

    out = capsys.readouterr().out
    assert code == 1
    assert (
        "FAILED wrong_expectation: turn 2 expect.department: expected 'billing'; got 'customer_service' "
        "(intent 'speak_to_person', action 'transfer', rule 'dtmf_zero', department 'customer_service')" in out
    )
    assert "FAILED wrong_expectation: expect.outcome: expected 'end'; got 'transfer' to 'customer_service'" in out
    assert "turn 2 expect.action" not in out  # that one held
    assert "wrong_expectation" in out and "failed expectations" in out  # the summary table's row
    report = json.loads((tmp_path / "report" / "wrong_expectation.json").read_text(encoding="utf-8"))
    assert report["expectations"]["failed"] == 2 and report["ok"]
    # The caller cut the greeting off after a second: the disclosure was still the first thing said.
    disclosure = next(item for item in report["expectations"]["checks"] if item["field"] == "expect.ai_disclosure")
    assert disclosure["status"] == "passed" and "cut off by the caller" in disclosure["actual"]
    summary = (tmp_path / "report" / "summary.md").read_text(encoding="utf-8")
    assert "| wrong_expectation | failed expectations |" in summary
    assert "FAILED turn 2 expect.department: expected 'billing'" in summary


def test_a_folder_without_fixtures_is_an_invalid_suite(tmp_path, capsys):
    assert replay_command([tmp_path], tmp_path / "report") == 2
    assert f"{tmp_path}: no fixture calls (*.json) in this folder" in capsys.readouterr().err


# --- the checks, on hand-made reports ------------------------------------------------------------------------------

GREETING = "Hello, you are talking to Brightline's automated AI assistant, and I can help. Say agent for a person."


def _decision(**changes: object) -> dict:
    decision = {"intent": None, "confidence": 1.0, "action": "reply", "reply": GREETING, "rule": "greeting"}
    decision |= {"department": None, "transfer_reason": None, "reasons": []}
    return decision | changes


def _report(greeting: str = GREETING, marks: list | None = None, agent_audio: list | None = None) -> dict:
    turn = {
        "index": 1,
        "kind": "say",
        "played": True,
        "start_ms": 15000,
        "voiced_start_ms": 15100,
        "voiced_end_ms": 16500,
        "transcript": "I have a question about my bill",
        "exchanges": [{"decision": _decision(intent="billing_question", rule="intent", reply="Your bill.")}],
        "barge_in": None,
        "note": None,
    }
    return {
        "server_data": "in-process app",
        "ended": {"by": "stop_sent", "outcome": None},
        "after_stream": {"verb": "Dial"},
        "greeting": {"exchange": {"decision": _decision(reply=greeting)}},
        "turns": [turn],
        "timeline": {
            "caller_speech": [{"turn": 1, "start_ms": 15100, "end_ms": 16500}],
            "agent_audio": agent_audio or [{"start_ms": 0, "end_ms": 14000}, {"start_ms": 17400, "end_ms": 20000}],
            "marks": marks if marks is not None else [{"name": "1.0.1", "at_ms": 9000, "reached": True}],
        },
    }


def _check(report: dict, field: str, turn: TurnExpect | None = None, call: CallExpect | None = None):
    checks = check_call(report, [turn], call or CallExpect(), "en")
    return next(check for check in checks if check.field == field)


def test_a_turn_expectation_names_the_field_the_expected_and_the_decision():
    check = _check(_report(), "turn 1 expect.intent", turn=TurnExpect(intent="payment"))
    assert check.status is Status.FAILED
    assert check.message == (
        "turn 1 expect.intent: expected 'payment'; got 'billing_question' (intent 'billing_question', action "
        "'reply', rule 'intent'; heard as 'I have a question about my bill')"
    )
    assert _check(_report(), "turn 1 expect.action", turn=TurnExpect(action="reply")).status is Status.PASSED
    # null means "not understood": an understood turn fails it.
    assert _check(_report(), "turn 1 expect.intent", turn=TurnExpect(intent=None)).status is Status.FAILED


def test_a_turn_the_server_never_answered_fails_every_expectation():
    report = _report()
    report["turns"][0]["exchanges"] = []
    check = _check(report, "turn 1 expect.action", turn=TurnExpect(action="reply"))
    assert check.status is Status.FAILED and "the server answered nothing" in check.actual


def test_the_outcome_is_none_when_the_call_stayed_with_the_agent():
    assert _check(_report(), "expect.outcome", call=CallExpect(outcome="none")).status is Status.PASSED
    check = _check(_report(), "expect.outcome", call=CallExpect(outcome="transfer"))
    assert check.message == "expect.outcome: expected 'transfer'; got 'none' (ended stop_sent)"


def test_a_greeting_without_the_disclosure_in_its_first_sentence_fails():
    report = _report(greeting="Hello and welcome to Brightline. I am an automated AI assistant.")
    check = _check(report, "expect.ai_disclosure")
    assert check.status is Status.FAILED
    assert check.actual == "the first sentence 'Hello and welcome to Brightline.'"


def test_a_disclosure_cleared_while_the_caller_was_silent_fails():
    report = _report(marks=[{"name": "1.0.1", "at_ms": 3000, "reached": False}])
    check = _check(report, "expect.ai_disclosure")
    assert check.status is Status.FAILED and "cleared at 3.00 s while the caller was silent" in check.actual
    # Cut off by the caller's own barge-in, it still counts: it was the first thing said.
    report["turns"][0] |= {"start_ms": 2500, "barge_in": {"agent_audio_buffered_ms": 9000, "clear_after_ms": 300}}
    assert _check(report, "expect.ai_disclosure").status is Status.PASSED


def test_agent_audio_starting_while_the_caller_speaks_is_talking_over():
    speech = [{"turn": 2, "start_ms": 10000, "end_ms": 12000}]
    assert talking_over(speech, [{"start_ms": 11000, "end_ms": 13000}]) == [
        "agent audio started at 11.00 s while the caller spoke (turn 2, 10.00-12.00 s)"
    ]
    # A barge-in: the agent was already speaking when the caller started; that audio is not new.
    assert talking_over(speech, [{"start_ms": 8000, "end_ms": 10400}]) == []
    # An answer after the caller's last voiced frame, and audio the server sent before it could hear the caller.
    assert talking_over(speech, [{"start_ms": 12000, "end_ms": 14000}, {"start_ms": 10020, "end_ms": 10100}]) == []
    report = _report(agent_audio=[{"start_ms": 0, "end_ms": 14000}, {"start_ms": 16000, "end_ms": 18000}])
    check = _check(report, "expect.no_talking_over")
    assert check.status is Status.FAILED and "agent audio started at 16.00 s" in check.actual


def test_checks_switched_off_are_not_made():
    checks = check_call(_report(greeting="Hi."), [None], CallExpect(ai_disclosure=False, no_talking_over=False), "en")
    assert checks == []


def test_against_a_running_server_decisions_are_unchecked_not_failed():
    report = _report()
    report["server_data"] = "not available"
    report["greeting"]["exchange"] = None
    report["turns"][0]["exchanges"] = None
    report["ended"] = {"by": "server_closed", "outcome": None}
    checks = check_call(report, [TurnExpect(intent="payment")], CallExpect(outcome="transfer"), "en")
    statuses = {check.field: check.status for check in checks}
    assert statuses == {
        "turn 1 expect.intent": Status.UNCHECKED,
        "expect.outcome": Status.PASSED,  # the server closed the stream and after-stream dials
        "expect.ai_disclosure": Status.UNCHECKED,
        "expect.no_talking_over": Status.PASSED,
    }


def test_the_timeline_of_each_call_is_in_its_report(suite_replay: ReplayResult):
    for call in suite_replay.calls:
        timeline = call.data["timeline"]
        assert timeline["agent_audio"], call.name
        assert all(
            item["start_ms"] < item["end_ms"] <= timeline["duration_ms"] + 20 for item in timeline["agent_audio"]
        )
        assert timeline["marks"], call.name
    barge_in = next(call.data for call in suite_replay.calls if call.name == "barge_in")
    assert not barge_in["timeline"]["marks"][0]["reached"]  # the greeting's first sentence was cleared
