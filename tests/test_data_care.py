"""Data care end to end: records survive a restart, admins purge and export (agents may not), the command line
does the same, and a call in which the caller reads out a card number and an IBAN leaves neither in any log line,
database row or API response."""

from __future__ import annotations

import io
import json
import logging
import re
import time
from pathlib import Path

import pytest

from qa.replay import REPLAY_DATABASE_FILE, run_replay
from telephony.cli import main as cli_main
from telephony.logs import JsonLineFormatter
from telephony.storage.store import DEFAULT_DATABASE_FILE

from .helpers import app_client, call_sid, post_webhook, sqlite_rows
from .test_api import ADMIN_TOKEN, AGENT_TOKEN, CALLER, bearer, press_zero_call

REPO = Path(__file__).resolve().parent.parent
PRIVACY_CALL = REPO / "audio_fixtures" / "privacy" / "card_and_iban.json"
# What the caller of PRIVACY_CALL reads out: a test card number (Luhn-valid) and a made-up IBAN (valid checksum).
PLANTED = {"card": "4111111111111111", "iban": "NL91ABNA0417164300"}
WINDOW = 8
"""Any 8 consecutive characters of a planted number, found anywhere (separators ignored), count as a leak."""

_NUMBER_WORDS = {
    "zero": "0",
    "oh": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}


def _squeezed(text: str) -> str:
    """Text as one run of letters and digits, number words as digits: "four 111, 1111" -> "41111111"."""
    words = re.split(r"[^0-9A-Za-z]+", text)
    return "".join(_NUMBER_WORDS.get(word.lower(), word) for word in words).upper()


def leaks(text: str) -> list[str]:
    """The planted numbers of which some 8-character window occurs in `text`."""
    squeezed = _squeezed(text)
    return [
        kind
        for kind, value in PLANTED.items()
        if any(value[i : i + WINDOW] in squeezed for i in range(len(value) - WINDOW + 1))
    ]


def test_the_leak_check_finds_numbers_in_any_form():
    assert leaks("card four one one one, 1111 1111-1111 1111") == ["card"]
    assert leaks("iban n l 91 abna 0417 1643 00") == ["iban"]
    assert leaks("my card is [card number], iban [IBAN]") == []


def tokened_client(voice_services, **settings):
    return app_client(voice_services, agent_token=AGENT_TOKEN, admin_token=ADMIN_TOKEN, **settings)


def test_call_records_survive_a_restart_of_the_server(voice_services):
    with tokened_client(voice_services) as client:
        press_zero_call(client, call_sid("durable"))
        before = client.get(f"/api/calls/{call_sid('durable')}", headers=bearer(AGENT_TOKEN)).json()
    # A new process: nothing in memory, everything from the database.
    with tokened_client(voice_services) as client:
        after = client.get(f"/api/calls/{call_sid('durable')}", headers=bearer(AGENT_TOKEN))
        assert after.status_code == 200
        assert after.json() == before
        [summary] = client.get("/api/calls", headers=bearer(AGENT_TOKEN)).json()
        assert summary["call_sid"] == call_sid("durable") and summary["state"] == "finished"


def test_the_webhooks_after_the_stream_may_land_on_another_instance(voice_services):
    # Two instances behind one load balancer share the database (and the caller key, in the same data folder).
    with tokened_client(voice_services) as first, tokened_client(voice_services) as second:
        press_zero_call(first, call_sid("elsewhere"))
        form = {"CallSid": call_sid("elsewhere")}
        after = post_webhook(second, "/twilio/after-stream", form)
        assert (
            after.status_code == 200 and "<Dial" in after.text and f"whisper?call={call_sid('elsewhere')}" in after.text
        )
        whisper = post_webhook(
            second, f"/twilio/whisper?call={call_sid('elsewhere')}", {"CallSid": call_sid("agent-leg")}
        )
        assert "They pressed 0 to speak to a person." in whisper.text
        assert post_webhook(second, "/twilio/dial-status", {**form, "DialCallStatus": "no-answer"}).status_code == 200
        assert post_webhook(second, "/twilio/dial-choice", {**form, "Digits": "1"}).status_code == 200
        record = first.get(f"/api/calls/{call_sid('elsewhere')}", headers=bearer(AGENT_TOKEN)).json()
        assert record["transfer_status"] == "no-answer" and record["callback_requested"] is True
        # Each step reported to the other instance is in the stored record, in order.
        steps = [step["state"] for step in record["transfer_timeline"]]
        assert steps == ["ringing", "answered", "not_answered", "callback_requested"]


def test_only_an_admin_may_export_delete_or_purge(voice_services):
    with tokened_client(voice_services) as client:
        press_zero_call(client, call_sid("admin"))
        agent, admin = bearer(AGENT_TOKEN), bearer(ADMIN_TOKEN)
        assert client.get(f"/api/calls/{call_sid('admin')}/export", headers=agent).status_code == 403
        assert client.delete(f"/api/calls/{call_sid('admin')}", headers=agent).status_code == 403
        assert client.post("/api/purge", headers=agent).status_code == 403
        assert client.post("/api/callers/forget", headers=agent, json={"number": CALLER}).status_code == 403

        export = client.get(f"/api/calls/{call_sid('admin')}/export", headers=admin)
        assert export.status_code == 200 and export.headers["Cache-Control"] == "no-store"
        document = export.json()
        assert document["retention_days"] == 30
        assert document["record"]["call_sid"] == call_sid("admin")
        assert document["record"]["turns"][1]["decision"]["rule"] == "dtmf_zero"

        assert client.post("/api/purge", headers=admin, json={"older_than_days": 1}).json() == {"deleted": 0}
        assert client.delete(f"/api/calls/{call_sid('admin')}", headers=admin).json() == {"deleted": 1}
        assert client.get(f"/api/calls/{call_sid('admin')}", headers=agent).status_code == 404
        assert client.delete(f"/api/calls/{call_sid('admin')}", headers=admin).status_code == 404


def test_an_admin_can_forget_one_caller(voice_services):
    with tokened_client(voice_services) as client:
        press_zero_call(client, call_sid("forget-1"))
        press_zero_call(client, call_sid("forget-2"))
        admin = bearer(ADMIN_TOKEN)
        assert client.post("/api/callers/forget", headers=admin, json={"number": "+441632960001"}).json() == {
            "deleted": 0
        }
        response = client.post("/api/callers/forget", headers=admin, json={"number": CALLER})
        assert response.json() == {"deleted": 2}
        assert client.get("/api/calls", headers=admin).json() == []
        assert client.post("/api/callers/forget", headers=admin, json={"number": "none"}).status_code == 422


def test_the_command_line_exports_and_purges(voice_services, tmp_path, capsys):
    with tokened_client(voice_services) as client:
        press_zero_call(client, call_sid("cli-1"))
        press_zero_call(client, call_sid("cli-2"))

    assert cli_main(["export", call_sid("cli-1")]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["record"]["call_sid"] == call_sid("cli-1")
    assert document["record"]["caller"] == "*********06"
    output = tmp_path / "audit.json"
    assert cli_main(["export", call_sid("cli-1"), "--output", str(output)]) == 0
    assert json.loads(output.read_text())["record"] == document["record"]
    assert cli_main(["export", call_sid("nobody")]) == 1
    assert f"no call '{call_sid('nobody')}'" in capsys.readouterr().err

    assert cli_main(["purge"]) == 0  # nothing is older than 30 days
    assert "deleted 0 calls that ended more than 30 days ago" in capsys.readouterr().err
    assert cli_main(["purge", "--call", call_sid("cli-2"), call_sid("nobody")]) == 0
    assert "deleted 1 of 2 named calls" in capsys.readouterr().err
    time.sleep(0.01)
    assert cli_main(["purge", "--older-than", "0.0000001"]) == 0
    assert "deleted 1 calls" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["purge", "--older-than", "-3"])


def test_the_command_line_names_an_unusable_database(monkeypatch, capsys):
    monkeypatch.setenv("VOICE_AGENT_DATABASE_URL", "postgresql+psycopg://someone:hunter2-secret@127.0.0.1:9/none")
    assert cli_main(["export", call_sid("x")]) == 2
    error = capsys.readouterr().err
    assert "cannot open the call-record database" in error and "hunter2-secret" not in error


# --- the scan -------------------------------------------------------------------------------------------------


@pytest.fixture
def log_lines():
    """Every log line the process writes during the test, as the server writes them (redacted JSON)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLineFormatter("en"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_a_card_number_and_an_iban_read_out_on_a_call_are_found_nowhere(voice_services, tmp_path, _data_dir, log_lines):
    result = run_replay([PRIVACY_CALL], tmp_path / "report", services=voice_services, progress=lambda line: None)
    [call] = result.calls
    assert call.data["completed"], call.data
    sid = call.data["call_sid"]

    # The in-process replay keeps its records in the report folder; a second app reads them from there.
    database = tmp_path / "report" / REPLAY_DATABASE_FILE
    assert not (_data_dir / DEFAULT_DATABASE_FILE).exists()  # QA's calls stay out of the real callers' records
    rows = sqlite_rows(database)
    with tokened_client(voice_services, database_url=f"sqlite:///{database}") as client:
        admin = bearer(ADMIN_TOKEN)
        responses = [
            client.get("/api/calls", headers=admin).text,
            client.get(f"/api/calls/{sid}", headers=admin).text,
            client.get(f"/api/calls/{sid}/export", headers=admin).text,
        ]
        record = client.get(f"/api/calls/{sid}", headers=admin).json()
        # This app did not run the call: the whisper comes from the stored handoff.
        responses.append(post_webhook(client, f"/twilio/whisper?call={sid}", {"CallSid": call_sid("agent-leg")}).text)
        assert record["handoff"]["summary"] in responses[-1]

    # Not vacuous: the caller's turns reached the record, and the numbers in them were redacted, not lost.
    said = " ".join(turn["caller"]["text"] for turn in record["turns"] if turn["caller"] and turn["caller"]["text"])
    assert "card number" in said.lower(), said
    assert re.search(r"\[(IBAN|number|phone number|card number)\]", said.split("card number", 1)[1]), said
    assert len(rows) >= 4 and log_lines.getvalue().count("\n") >= 5

    places = {"log": log_lines.getvalue().splitlines(), "database": rows, "api": responses}
    found = {place: [line for line in lines if leaks(line)] for place, lines in places.items()}
    assert found == {"log": [], "database": [], "api": []}
