"""`voice-agent replay --server URL --token T` against a real server on a real socket.

The app (the session's models, an agent token) is served on 127.0.0.1 by `LoopbackServer`; the replay reads each
call's transcripts and decisions from its call API and checks the same expectations as in-process: the call's
results match the session's in-process replay of the same fixture (`suite_replay`). A wrong token is one clear line
before anything is played; without a token the report says that transcripts need --token.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from qa.command import TOKEN_ENV, replay_command
from qa.expect import CALL_API_DATA, Status
from qa.loopback_server import LoopbackServer
from qa.replay import run_replay
from qa.report import SERVER_DATA_MISSING, ReplayResult

from .helpers import make_app

AGENT_TOKEN = "replay-agent-token-0123456789"
CALLS = Path(__file__).resolve().parent.parent / "audio_fixtures" / "calls"

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


@pytest.fixture
def server(voice_services, tmp_path, monkeypatch):
    for name in ("VOICE_AGENT_AGENT_TOKEN", "VOICE_AGENT_ADMIN_TOKEN", TOKEN_ENV):
        monkeypatch.delenv(name, raising=False)
    app = make_app(
        voice_services, agent_token=AGENT_TOKEN, database_url=f"sqlite:///{tmp_path / 'server-calls.sqlite3'}"
    )
    with LoopbackServer(app) as running:
        yield running


def _statuses(data: dict) -> dict[str, str]:
    return {check["field"]: check["status"] for check in data["expectations"]["checks"]}


def test_with_a_token_the_report_has_the_servers_transcripts_and_decisions(
    server, suite_replay: ReplayResult, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv(TOKEN_ENV, AGENT_TOKEN)  # the token from the environment, as CI would give it
    junit = tmp_path / "replay.xml"
    code = replay_command(
        [CALLS / "billing_then_agent.json"], tmp_path / "report", server_url=server.ws_url, junit_path=junit
    )
    assert code == 0, capsys.readouterr()
    [call] = ElementTree.parse(junit).getroot().iter("testcase")
    assert call.get("name") == "billing_then_agent" and call.findall("failure") == []
    assert "decision: transfer (human_request" in call.find("system-out").text

    data = json.loads((tmp_path / "report" / "billing_then_agent.json").read_text(encoding="utf-8"))
    assert data["server_data"] == CALL_API_DATA
    bill, agent = data["turns"]
    assert bill["transcript"] and "bill" in bill["transcript"].lower()
    assert bill["exchanges"][0]["decision"]["intent"] == "billing_question"
    decision = agent["exchanges"][-1]["decision"]
    assert decision["action"] == "transfer" and decision["department"] == "billing" and decision["reasons"]
    assert data["greeting"]["exchange"]["decision"]["rule"] == "greeting"
    assert data["ended"]["outcome"] == {"action": "transfer", "department": "billing"}
    assert data["expectations"]["unchecked"] == 0 and data["expectations"]["failed"] == 0

    # The same call in-process gives the same expectation results, field by field.
    in_process = next(report.data for report in suite_replay.calls if report.name == "billing_then_agent")
    assert _statuses(data) == _statuses(in_process)
    assert set(_statuses(data).values()) == {Status.PASSED.value}
    assert "turn 2 expect.rule" in _statuses(data)


def test_a_wrong_token_is_one_clear_line_and_no_token_says_what_is_missing(server, tmp_path, capsys):
    code = replay_command(
        [CALLS / "press_zero.json"], tmp_path / "refused", server_url=server.ws_url, token="not-the-token-at-all"
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "voice-agent replay: the call API at http://127.0.0.1:" in err and "refused the token (401)" in err
    assert "Traceback" not in err
    assert not (tmp_path / "refused" / "press_zero.json").exists()  # refused before anything was played

    result = run_replay([CALLS / "press_zero.json"], tmp_path / "no-token", server_url=server.ws_url)
    data = result.calls[0].data
    assert data["server_data"] == SERVER_DATA_MISSING and "--token" in SERVER_DATA_MISSING
    assert data["turns"][1]["exchanges"] is None
    statuses = _statuses(data)
    assert statuses["turn 2 expect.rule"] == Status.UNCHECKED.value
    assert statuses["expect.outcome"] == Status.PASSED.value  # read from how the stream ended
    assert f"Note: {SERVER_DATA_MISSING}." in result.summary_path.read_text(encoding="utf-8")
