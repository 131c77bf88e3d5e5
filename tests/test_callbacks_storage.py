"""Call-back requests, desk accounts and the audit trail in the database, on SQLite and on PostgreSQL.

The caller's number is stored only encrypted, and only until the request is done, the retention period ends or the
caller is forgotten; no table, and no byte of the SQLite file, ever holds it in clear.
"""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import inspect, text

from telephony.roles import Role
from telephony.storage.accounts import AccountError, DeskAccounts
from telephony.storage.audit import AuditAction, AuditOutcome, AuditTrail
from telephony.storage.callbacks import CallbackQueue
from telephony.storage.pseudonyms import CallerPseudonyms
from telephony.storage.retention import purge_older_than
from telephony.storage.store import CallStore
from telephony.storage.vault import KEY_FILE_NAME, NumberVault, VaultError

from .helpers import sqlite_rows
from .test_storage import CALLER, database_url, make_call, store  # noqa: F401 (fixtures)

# Any six consecutive digits of the caller's number, anywhere, would be the number in clear.
CALLER_DIGITS = CALLER.lstrip("+")
PIECES = {CALLER_DIGITS[i : i + 6] for i in range(len(CALLER_DIGITS) - 5)}
# Cheap parameters: these tests check what is stored, not how slow a guess is.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def stored_rows(store: CallStore) -> list[str]:  # noqa: F811
    """Every row of every table, one text each (bytes as they are stored)."""
    with store.engine.connect() as connection:
        tables = inspect(connection).get_table_names()
        return [repr(tuple(row)) for table in tables for row in connection.execute(text(f"SELECT * FROM {table}"))]


def clear_number_in(texts: list[str]) -> list[str]:
    return [item for item in texts if any(piece in item for piece in PIECES)]


@pytest.fixture
def vault(tmp_path: Path) -> NumberVault:
    return NumberVault.from_data_dir(tmp_path / "keys")


@pytest.fixture
def queue(store, vault) -> CallbackQueue:  # noqa: F811
    return CallbackQueue(store, vault)


def _request(queue: CallbackQueue, call_sid: str, number: str | None = CALLER, **fields) -> None:
    key = CallerPseudonyms(b"k" * 32).of(number)
    queue.request(call_sid, number, caller_key=key, intent="billing_question", department="billing", **fields)


def test_the_number_is_stored_encrypted_and_revealed_only_through_the_vault(store, queue, database_url):  # noqa: F811
    _request(queue, "CA-cb-1", reason="the caller asked for a person")
    [request] = queue.requests()
    assert request.caller == "*********78" and request.has_number and not request.has_voicemail
    assert request.department == "billing" and request.reason == "the caller asked for a person"
    assert queue.number("CA-cb-1") == CALLER

    rows = stored_rows(store)
    assert any("*********78" in row for row in rows)  # not vacuous: the request's row is in the scan
    assert clear_number_in(rows) == []
    if database_url.startswith("sqlite"):
        database = Path(store.engine.url.database)
        store.close()  # everything written to the file itself
        files = [path for path in database.parent.iterdir() if path.name.startswith(database.name)]
        raw = b"".join(path.read_bytes() for path in files)
        assert b"*********78" in raw
        assert [piece for piece in PIECES if piece.encode() in raw] == []
        assert clear_number_in(sqlite_rows(database)) == []


def test_a_voicemail_completes_the_request_and_done_deletes_the_number(queue):
    _request(queue, "CA-cb-vm")
    _request(queue, "CA-cb-vm", number=None, recording_sid="RE" + "0" * 32)  # the webhook without From
    [request] = queue.requests()
    assert request.has_voicemail and request.has_number and request.caller == "*********78"
    assert queue.recording_sid("CA-cb-vm") == "RE" + "0" * 32

    assert queue.done("CA-cb-vm", by="alice") is True
    assert queue.requests() == []
    [done] = queue.requests(include_done=True)
    assert done.done_by == "alice" and done.done_at is not None and not done.has_number
    assert queue.number("CA-cb-vm") is None
    assert queue.done("CA-nobody", by="alice") is False


def test_the_number_is_gone_after_the_retention_period(store, queue, engine_en):  # noqa: F811
    from telephony.call_record import call_record

    old = make_call(engine_en, "CA-cb-old")
    old.started_at -= 40 * 86400
    old.ended_at = old.started_at + 60
    store.save(call_record(old))
    _request(queue, "CA-cb-old", now=datetime.now(UTC) - timedelta(days=40))
    _request(queue, "CA-cb-new")
    assert purge_older_than(store, 30) == 1
    assert [request.call_sid for request in queue.requests(include_done=True)] == ["CA-cb-new"]
    assert queue.number("CA-cb-old") is None
    assert len([row for row in stored_rows(store) if "CA-cb-old" in row]) == 0


def test_the_number_is_gone_after_forget_caller_and_delete_call(store, queue):  # noqa: F811
    pseudonyms = CallerPseudonyms(b"k" * 32)
    _request(queue, "CA-cb-a")
    _request(queue, "CA-cb-b", number="+441632960001")
    _request(queue, "CA-cb-c", number="+441632960001")
    assert store.delete_caller(pseudonyms.of("06 12345678", "NL")) == 0  # no call records, but the request goes
    assert queue.number("CA-cb-a") is None
    assert [request.call_sid for request in queue.requests()] == ["CA-cb-b", "CA-cb-c"]
    assert store.delete_call("CA-cb-b") is True
    assert [request.call_sid for request in queue.requests()] == ["CA-cb-c"]


def test_another_key_cannot_open_a_number_and_the_generated_key_is_private(tmp_path, queue):
    _request(queue, "CA-cb-key")
    key_file = tmp_path / "keys" / KEY_FILE_NAME
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert (
        NumberVault.from_data_dir(tmp_path / "keys").open(NumberVault.from_data_dir(tmp_path / "keys").seal("x")) == "x"
    )
    other = NumberVault.from_data_dir(tmp_path / "other")
    with pytest.raises(VaultError, match="cannot be decrypted with this"):
        other.open(NumberVault.from_data_dir(tmp_path / "keys").seal(CALLER))
    with pytest.raises(VaultError, match="VOICE_AGENT_NUMBER_KEY must be a Fernet key"):
        NumberVault("not-a-key")


def test_the_audit_trail_keeps_events_in_order_and_its_own_retention(store):  # noqa: F811
    trail = AuditTrail(store)
    long_ago = datetime.now(UTC) - timedelta(days=400)
    trail.record("alice", AuditAction.LOGIN, "alice", at=long_ago, address="127.0.0.1")
    trail.record("alice", AuditAction.REVEAL_NUMBER, "CA-1")
    trail.record("token:admin", AuditAction.EXPORT, "CA-1")
    trail.record("mallory", AuditAction.LOGIN, "mallory", outcome=AuditOutcome.REFUSED, detail={"why": "password"})
    events = trail.events()
    assert [(event.actor, event.action) for event in events] == [
        ("alice", "login"),
        ("alice", "reveal_number"),
        ("token:admin", "export"),
        ("mallory", "login"),
    ]
    assert events[0].address == "127.0.0.1" and events[-1].outcome == "refused"
    recent = trail.events(since=datetime.now(UTC) - timedelta(days=1))
    assert [event.action for event in recent] == ["reveal_number", "export", "login"]
    assert trail.purge(datetime.now(UTC) - timedelta(days=365)) == 1
    assert len(trail.events()) == 3


def test_accounts_hash_their_passwords_and_check_them(store):  # noqa: F811
    accounts = DeskAccounts(store, FAST_HASHER)
    accounts.add("alice", Role.AGENT, "correct horse battery")
    accounts.add("bob.admin", Role.ADMIN, "another long password")
    assert [(account.name, account.role) for account in accounts.all()] == [
        ("alice", Role.AGENT),
        ("bob.admin", Role.ADMIN),
    ]
    assert "correct horse" not in " ".join(stored_rows(store))
    assert any("$argon2id$" in row for row in stored_rows(store))
    assert accounts.verify("alice", "correct horse battery").role is Role.AGENT
    assert accounts.verify("alice", "wrong password here") is None
    assert accounts.verify("nobody", "correct horse battery") is None

    before = accounts.get("alice").password_changed_at
    accounts.set_password("alice", "a brand new password")
    assert accounts.verify("alice", "correct horse battery") is None
    assert accounts.verify("alice", "a brand new password") is not None
    assert accounts.get("alice").password_changed_at > before
    assert accounts.remove("alice") is True and accounts.remove("alice") is False
    assert accounts.verify("alice", "a brand new password") is None

    for bad in (
        lambda: accounts.add("bob.admin", Role.AGENT, "long enough password"),
        lambda: accounts.add("Bad Name", Role.AGENT, "long enough password"),
        lambda: accounts.add("carol", Role.AGENT, "short"),
        lambda: accounts.set_password("nobody", "long enough password"),
    ):
        with pytest.raises(AccountError):
            bad()


def test_the_daily_purge_deletes_old_audit_events_and_records_what_it_deleted(store, queue, engine_en):  # noqa: F811
    import asyncio

    from telephony.call_record import call_record
    from telephony.storage.retention import RETENTION_ACTOR, purge_daily

    trail = AuditTrail(store)
    trail.record("alice", AuditAction.REVEAL_NUMBER, "CA-old", at=datetime.now(UTC) - timedelta(days=400))
    trail.record("alice", AuditAction.REVEAL_NUMBER, "CA-recent")
    old = make_call(engine_en, "CA-aged")
    old.started_at -= 45 * 86400
    old.ended_at = old.started_at + 1
    store.save(call_record(old))
    _request(queue, "CA-aged", now=datetime.now(UTC) - timedelta(days=45))

    async def one_round() -> None:
        task = asyncio.create_task(purge_daily(store, 30, interval_s=3600, audit=trail, audit_days=365))
        for _ in range(200):
            if store.get("CA-aged") is None and len(trail.events()) == 2:
                break
            await asyncio.sleep(0.05)
        task.cancel()

    asyncio.run(one_round())
    assert queue.requests(include_done=True) == []
    assert [(e.actor, e.action, e.target, e.detail) for e in trail.events()] == [
        ("alice", "reveal_number", "CA-recent", None),
        (RETENTION_ACTOR, "purge", None, {"deleted_calls": 1, "older_than_days": 30}),
    ]
