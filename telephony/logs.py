"""Logging for the server: one JSON object per line on stderr, with the call SID when there is one.

Every line is redacted (`voice.redaction.finder`) before it is written: the message, the exception and each text field,
except the identifiers that make lines findable (call and stream SIDs, paths). Nothing we log should hold personal
data in the first place; this catches what slips through (an exception quoting a transcript, say).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time

from voice.redaction import redact

# Attributes every LogRecord has; anything else was passed with `extra=` and is worth keeping.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}
# `extra` fields that identify rather than describe: kept as they are, so that a call's lines can be found.
IDENTIFIERS = frozenset({"call", "stream", "path"})
# uvicorn's terminal copy of its message, with colour codes: the plain message is already in the line.
_TERMINAL_ONLY = frozenset({"color_message"})
# ANSI escape sequences (colours, cursor moves): noise in a JSON line, whoever put them in the message.
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
"""VOICE_AGENT_LOG_LEVEL's values and the levels they stand for."""


# Twilio SIDs (two letters and 32 hex digits) and IPv4 addresses with a port: operational, not personal, and the
# redaction would read their digits as a number; left as they are wherever they occur in a line.
_NOT_PERSONAL = re.compile(r"\b(?:[A-Z]{2}[0-9a-fA-F]{32}|\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?)\b")


class JsonLineFormatter(logging.Formatter):
    """Formats a record as one redacted JSON line: time, level, logger, message and the `extra` fields."""

    def __init__(self, language: str = "en") -> None:
        super().__init__()
        self._language = language

    def _clean(self, text: str) -> str:
        text = _ANSI_ESCAPE.sub("", text)
        parts, position = [], 0
        for match in _NOT_PERSONAL.finditer(text):
            parts += [redact(text[position : match.start()], self._language).text, match.group()]
            position = match.end()
        parts.append(redact(text[position:], self._language).text)
        return "".join(parts)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": self._clean(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key in _STANDARD or key in _TERMINAL_ONLY:
                continue
            if not isinstance(value, (int, float, bool, type(None))) and key not in IDENTIFIERS:
                value = self._clean(str(value))
            entry[key] = value
        if record.exc_info:
            entry["exception"] = self._clean(self.formatException(record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: int | str = logging.INFO, language: str = "en") -> None:
    """Send every log record of the process (ours, uvicorn's) to stderr as redacted JSON lines.

    Args:
        level: the lowest level written: a `logging` level or a name from `LOG_LEVELS` (VOICE_AGENT_LOG_LEVEL).
        language: the calls' language, for the redaction's number words ("en" or "nl").

    Raises:
        ValueError: `level` is a name that is not in `LOG_LEVELS`.
    """
    if isinstance(level, str):
        if level not in LOG_LEVELS:
            raise ValueError(f"unknown log level {level!r}; expected one of {', '.join(LOG_LEVELS)}")
        level = LOG_LEVELS[level]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLineFormatter(language))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Alembic narrates every start-up migration check at INFO ("setup plugin ..."); only its warnings matter here.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
        # uvicorn sets its own loggers' levels when it starts; the level is set here too for a server run otherwise.
        logging.getLogger(name).setLevel(level)
