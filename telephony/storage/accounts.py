"""`DeskAccounts`: named desk accounts with a role, their passwords hashed with argon2id (argon2-cffi).

Managed with ``voice-agent users add|list|remove|set-password``; the desk's login checks them
(`telephony.web.auth`). Only the hash is stored; a check for an unknown name costs as much as one for a known name,
so the time taken does not tell which names exist.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select

from telephony.roles import Role
from telephony.storage.store import CallStore, _iso
from telephony.storage.tables import DeskUserRow

MAX_NAME_CHARS = 64
NAME_PATTERN = re.compile(rf"^[a-z0-9][a-z0-9._-]{{0,{MAX_NAME_CHARS - 1}}}$")
"""Account names: lower-case letters, digits, dot, dash, underscore; they appear as such in the audit trail."""
MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024
"""Longer passwords are refused without hashing (hashing is deliberately slow)."""


class AccountError(ValueError):
    """An account name, role or password is not acceptable, or the account does not exist; the message says why."""


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    role: Role
    created_at: str
    password_changed_at: datetime


def check_name(name: str) -> str:
    """The name if it is acceptable.

    Raises:
        AccountError: naming the rule.
    """
    if not NAME_PATTERN.match(name):
        raise AccountError(
            f"account name {name[:64]!r}: use 1 to 64 lower-case letters, digits, '.', '-' or '_', starting with a "
            "letter or digit"
        )
    return name


def check_password(password: str) -> str:
    """The password if it is long enough (and not absurdly long).

    Raises:
        AccountError: naming the rule (never the password).
    """
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"the password must be at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise AccountError(f"the password must be at most {MAX_PASSWORD_CHARS} characters")
    return password


class DeskAccounts:
    """The desk accounts in the call-record database."""

    def __init__(self, store: CallStore, hasher: PasswordHasher | None = None) -> None:
        self._store = store
        self._hasher = hasher or PasswordHasher()

    @functools.cached_property
    def _dummy_hash(self) -> str:
        # Verified against when the name is unknown, so that a refusal takes as long either way.
        return self._hasher.hash("not-an-account-password")

    def add(self, name: str, role: Role, password: str) -> Account:
        """Create an account.

        Raises:
            AccountError: a bad name or password, or the name is taken.
        """
        check_name(name)
        digest = self._hasher.hash(check_password(password))
        now = datetime.now(UTC)
        with self._store.transaction() as session:
            if session.get(DeskUserRow, name) is not None:
                raise AccountError(f"there is already an account {name!r}")
            row = DeskUserRow(
                name=name, role=Role(role).value, password_hash=digest, created_at=now, password_changed_at=now
            )
            session.add(row)
            return _account(row)

    def set_password(self, name: str, password: str) -> None:
        """Replace the password; the account's desk sessions end.

        Raises:
            AccountError: no such account, or a bad password.
        """
        digest = self._hasher.hash(check_password(password))
        with self._store.transaction() as session:
            row = session.get(DeskUserRow, name)
            if row is None:
                raise AccountError(f"no account {name[:64]!r}")
            row.password_hash = digest
            row.password_changed_at = datetime.now(UTC)

    def remove(self, name: str) -> bool:
        """Delete an account (its desk sessions end); False when there was none."""
        with self._store.transaction() as session:
            row = session.get(DeskUserRow, name)
            if row is None:
                return False
            session.delete(row)
            return True

    def get(self, name: str) -> Account | None:
        with self._store.transaction() as session:
            row = session.get(DeskUserRow, name)
            return None if row is None else _account(row)

    def all(self) -> list[Account]:
        with self._store.transaction() as session:
            return [_account(row) for row in session.scalars(select(DeskUserRow).order_by(DeskUserRow.name))]

    def verify(self, name: str, password: str) -> Account | None:
        """The account if `password` is its password, else None (blocking and deliberately slow: from a thread)."""
        if len(password) > MAX_PASSWORD_CHARS or len(name) > MAX_NAME_CHARS:
            return None
        with self._store.transaction() as session:
            row = session.get(DeskUserRow, name)
            account, digest = (_account(row), row.password_hash) if row is not None else (None, self._dummy_hash)
        try:
            self._hasher.verify(digest, password)
        except (VerificationError, InvalidHashError):
            return None
        return account


def _account(row: DeskUserRow) -> Account:
    changed = row.password_changed_at
    if changed.tzinfo is None:  # SQLite gives back naive datetimes; they were stored in UTC
        changed = changed.replace(tzinfo=UTC)
    return Account(
        name=row.name, role=Role(row.role), created_at=_iso(row.created_at) or "", password_changed_at=changed
    )
