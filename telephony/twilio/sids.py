"""Twilio's identifiers as Twilio forms them: two letters and 32 lowercase or uppercase hex digits.

Checked wherever one arrives from outside (a webhook's form, a media stream's ``start``) before it names a record, a
log line or a URL: anything else (empty, huge, a card number) is refused rather than stored as a key.
"""

from __future__ import annotations

import re

_HEX32 = "[0-9a-fA-F]{32}"
_CALL_SID = re.compile(f"CA{_HEX32}")
_STREAM_SID = re.compile(f"MZ{_HEX32}")


def is_call_sid(value: str) -> bool:
    """Whether `value` is a call SID (``CA`` and 32 hex digits)."""
    return _CALL_SID.fullmatch(value) is not None


def is_stream_sid(value: str) -> bool:
    """Whether `value` is a media stream SID (``MZ`` and 32 hex digits)."""
    return _STREAM_SID.fullmatch(value) is not None
