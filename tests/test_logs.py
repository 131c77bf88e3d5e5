"""JSON log lines: one object per line, personal data redacted wherever it appears, identifiers kept."""

from __future__ import annotations

import json
import logging

import pytest

from telephony.logs import JsonLineFormatter, configure_logging

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


def test_uvicorn_records_lose_their_terminal_colours():
    # As uvicorn logs: a plain message, and a coloured copy of it for terminals in `color_message`.
    plain = '%s - "%s %s HTTP/%s" %d'
    entry = line(
        plain,
        "127.0.0.1:5000",
        "GET",
        "/healthz",
        "1.1",
        200,
        color_message='%s - "\x1b[1m%s %s HTTP/%s\x1b[0m" \x1b[32m%d\x1b[0m',
        status_code="\x1b[32m200 OK\x1b[0m",
    )
    assert "color_message" not in entry
    assert entry["message"] == '127.0.0.1:5000 - "GET /healthz HTTP/1.1" 200'
    assert entry["status_code"] == "200 OK"
    assert "\x1b" not in json.dumps(entry) and "\\u001b" not in json.dumps(entry)


def test_an_ansi_coloured_message_is_written_plain():
    assert (
        line("\x1b[31mfailed\x1b[0m to start: \x1b[1;33mport taken\x1b[0m")["message"] == "failed to start: port taken"
    )


@pytest.fixture
def restored_logging():
    names = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "alembic")
    saved = {name: (logging.getLogger(name).handlers[:], logging.getLogger(name).level) for name in names}
    saved_propagate = {name: logging.getLogger(name).propagate for name in names}
    yield
    for name, (handlers, level) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = saved_propagate[name]


def test_the_configured_level_applies_to_our_loggers_and_uvicorns(restored_logging, capsys):
    configure_logging("warning")
    assert logging.getLogger().level == logging.WARNING
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        assert logging.getLogger(name).getEffectiveLevel() == logging.WARNING, name
    logging.getLogger("telephony.test").info("not written")
    logging.getLogger("uvicorn.error").info("not written either")
    logging.getLogger("telephony.test").warning("written")
    lines = [json.loads(text) for text in capsys.readouterr().err.splitlines()]
    assert [entry["message"] for entry in lines] == ["written"]


def test_an_unknown_level_name_is_refused(restored_logging):
    with pytest.raises(ValueError, match="unknown log level 'verbose'"):
        configure_logging("verbose")
