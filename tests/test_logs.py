"""JSON log lines: one object per line, personal data redacted wherever it appears, identifiers kept."""

from __future__ import annotations

import json
import logging

from telephony.logs import JsonLineFormatter

CALL_SID = "CA0123456789abcdef0123456789abcdef"


def line(message: str, *args: object, exc_info=None, **extra: object) -> dict:
    record = logging.LogRecord("voice.test", logging.ERROR, __file__, 1, message, args, exc_info)
    for key, value in extra.items():
        setattr(record, key, value)
    return json.loads(JsonLineFormatter("en").format(record))


def test_a_line_is_one_json_object_with_the_extra_fields():
    entry = line("handing over", call=CALL_SID, action="transfer", deleted_calls=3, ok=True)
    assert entry["message"] == "handing over"
    assert entry["level"] == "error" and entry["logger"] == "voice.test" and entry["time"].endswith("Z")
    assert entry["call"] == CALL_SID and entry["action"] == "transfer"
    assert entry["deleted_calls"] == 3 and entry["ok"] is True  # numbers stay numbers


def test_personal_data_is_redacted_in_the_message_the_fields_and_the_exception():
    said = "my card is 4111 1111 1111 1111 and my iban NL91ABNA0417164300, mail jan@example.com"
    try:
        raise ValueError(said)
    except ValueError as error:
        entry = line("pipeline failure: %r", error, exc_info=(type(error), error, error.__traceback__), text=said)
    for field in ("message", "text", "exception"):
        assert "4111" not in entry[field] and "0417164300" not in entry[field] and "jan@" not in entry[field], field
    assert "[card number]" in entry["message"] and "[IBAN]" in entry["text"] and "[e-mail" in entry["exception"]


def test_call_sids_and_addresses_are_not_mistaken_for_numbers():
    access = f'127.0.0.1:54321 - "GET /api/calls/{CALL_SID} HTTP/1.1" 200'
    assert line(access)["message"] == access
    assert line("from 10.20.30.40:443")["message"] == "from 10.20.30.40:443"
    assert line("spoke to %s", CALL_SID, call=CALL_SID, path="/twilio/whisper")["message"] == f"spoke to {CALL_SID}"
