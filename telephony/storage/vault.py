"""`NumberVault`: callers' numbers encrypted at rest, for call-backs only (Fernet: AES-128-CBC with HMAC-SHA256).

A number is kept only for a caller who asked to be called back or left a voicemail; the database holds the token,
the key lives apart from it (``VOICE_AGENT_NUMBER_KEY``, else a 0600 file in the data directory).
"""

from __future__ import annotations

from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from telephony.settings import Settings
from telephony.storage.keyfiles import read_or_create_key

KEY_FILE_NAME = "number-key"
"""The generated key's file inside the data directory (when ``VOICE_AGENT_NUMBER_KEY`` is not set)."""


class VaultError(ValueError):
    """The key is unusable, or a stored number cannot be decrypted with it (another instance's key)."""


class NumberVault:
    """Encrypts and decrypts caller numbers under one key."""

    def __init__(self, key: str) -> None:
        """Raises: VaultError: `key` is not a Fernet key."""
        try:
            self._fernet = Fernet(key.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise VaultError(
                "VOICE_AGENT_NUMBER_KEY must be a Fernet key (urlsafe base64 of 32 bytes); make one with "
                "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
            ) from None

    @classmethod
    def from_data_dir(cls, data_dir: Path, configured: str | None = None) -> NumberVault:
        """The configured key, else the one kept in `data_dir` (made on first use, readable by its owner only)."""
        if configured:
            return cls(configured)
        return cls(read_or_create_key(data_dir / KEY_FILE_NAME, lambda: Fernet.generate_key().decode("ascii")))

    @classmethod
    def from_settings(cls, settings: Settings) -> NumberVault:
        """``VOICE_AGENT_NUMBER_KEY``, else the key kept in the data directory."""
        configured = settings.number_key.get_secret_value() if settings.number_key else None
        return cls.from_data_dir(settings.data_dir, configured)

    def seal(self, number: str) -> bytes:
        """The number, encrypted (a fresh random IV each time: one number never gives the same bytes twice)."""
        return self._fernet.encrypt(number.encode("utf-8"))

    def open(self, sealed: bytes) -> str:
        """The number back.

        Raises:
            VaultError: the token was made with another key, or altered.
        """
        try:
            return self._fernet.decrypt(sealed).decode("utf-8")
        except InvalidToken:
            raise VaultError("the stored number cannot be decrypted with this VOICE_AGENT_NUMBER_KEY") from None
