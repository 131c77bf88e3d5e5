"""Caller pseudonyms: a keyed hash of the caller's number, so one caller's calls can be found and deleted (a
data-subject request) although the number itself is never stored.

HMAC-SHA256 with a secret key: without the key the hash cannot be reversed by trying every phone number.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

import phonenumbers

from telephony.settings import Settings
from telephony.storage.private_files import private_dir, private_file

KEY_FILE_NAME = "caller-key"
"""The generated key's file inside the data directory (when ``VOICE_AGENT_CALLER_KEY`` is not set)."""


def normalize_number(number: str, region: str | None = None) -> str:
    """The number in E.164 (+31612345678) when it parses, else its digits (with a leading + kept).

    Twilio sends E.164; a person deleting a caller's data may type "06 12345678" with a region (e.g. "NL").

    Raises:
        ValueError: there is no digit in `number`.
    """
    try:
        parsed = phonenumbers.parse(number, region)
        if phonenumbers.is_possible_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        pass
    digits = "".join(ch for ch in number if ch.isdigit())
    if not digits:
        raise ValueError(f"not a phone number: {number!r}")
    return ("+" if number.strip().startswith("+") else "") + digits


class CallerPseudonyms:
    """Maps caller numbers to stable pseudonyms under one secret key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the caller key must be at least 16 bytes")
        self._key = key

    @classmethod
    def from_data_dir(cls, data_dir: Path, configured: str | None = None) -> CallerPseudonyms:
        """The configured key, else the one kept in `data_dir` (made on first use, readable by its owner only)."""
        if configured:
            return cls(configured.encode("utf-8"))
        path = data_dir / KEY_FILE_NAME
        private_dir(data_dir)
        if not path.exists():
            # O_EXCL: two processes starting together must not each write a different key.
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(descriptor, "w", encoding="ascii") as file:
                    file.write(secrets.token_hex(32))
        private_file(path)  # a key file made before, or copied in, with wider permissions is tightened
        return cls(path.read_text(encoding="ascii").strip().encode("ascii"))

    @classmethod
    def from_settings(cls, settings: Settings) -> CallerPseudonyms:
        """``VOICE_AGENT_CALLER_KEY``, else the key kept in the data directory."""
        configured = settings.caller_key.get_secret_value() if settings.caller_key else None
        return cls.from_data_dir(settings.data_dir, configured)

    def of(self, number: str | None, region: str | None = None) -> str | None:
        """The pseudonym of `number` (hex), or None for an unknown or withheld number."""
        if not number:
            return None
        try:
            normalized = normalize_number(number, region)
        except ValueError:
            return None
        return hmac.new(self._key, normalized.encode("utf-8"), hashlib.sha256).hexdigest()
