"""Call records in the database, on SQLite and on a real PostgreSQL server (started by tests/start_postgres.sh).

The same tests run on both: schema migrations, what is stored and read back, updates, retention and deletion.
"""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select, text

from telephony.call_record import CallRecord, call_record
from telephony.calls import CallInfo, CallRegistry, CallState
from telephony.storage.export import EXPORT_FORMAT, export_document
from telephony.storage.instances import SERVER_STOPPED
from telephony.storage.migrations import alembic_config
from telephony.storage.pseudonyms import KEY_FILE_NAME, CallerPseudonyms, normalize_number
from telephony.storage.retention import purge_daily, purge_older_than
from telephony.storage.store import CallStore, StorageError
from telephony.storage.tables import Base, TurnRow
from telephony.storage.writer import RecordWriter
from voice.dialogue import DialogueEngine
from voice.events import Action, Dtmf, Transcript
from voice.handoff import build_handoff
from voice.latency import LatencyBudget
from voice.pipeline import TurnRecord

POSTGRES_URL_VARIABLE = "VOICE_AGENT_TEST_DATABASE_URL"
CALLER = "+31612345678"


def _reset_postgres(url: str) -> None:
    # Each test starts from an empty schema, as a new deployment would.
    store = CallStore(url)
    with store.engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    store.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'calls.sqlite3'}"
    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not url:
        pytest.fail(
            f"{POSTGRES_URL_VARIABLE} is not set: run the suite with `make test`, which starts PostgreSQL "
            "(tests/start_postgres.sh), or point it at an empty PostgreSQL database"
        )
    _reset_postgres(url)
    return url


@pytest.fixture
def store(database_url):
    store = CallStore(database_url)
    store.migrate()
    yield store
    store.close()


def make_call(engine: DialogueEngine, call_sid: str = "CA-store-1", caller: str | None = CALLER) -> CallInfo:
    """A finished call with the real engine's decisions: greeting, a question, a key press, a transfer."""
    info = CallInfo(call_sid=call_sid, stream_sid="MZ-" + call_sid, caller_number=caller)
    state, greeting = engine.start()
    info.records.append(TurnRecord(caller=None, decision=greeting, processing_ms=None, heard=True))
    for turn in (Transcript("I have a question about my bill", 0.83, 14_000, 16_100), Dtmf("0")):
        state, decision = engine.step(state, turn)
        info.records.append(TurnRecord(caller=turn, decision=decision, processing_ms=612.4, heard=True))
    info.records[1].latency = LatencyBudget("complete_request", 480.3, 141.0, 455.25, 1092.6)
    assert decision.action is Action.TRANSFER
    exchanges = [(record.caller, record.decision) for record in info.records]
    info.handoff = build_handoff(engine.catalogue, call_sid, exchanges, decision, caller)
    info.outcome = decision
    info.state = CallState.FINISHED
    info.ended_at = info.started_at + 31.5
    info.transfer_status = "completed"
    return info


def test_migrations_create_the_schema_the_tables_describe(store):
    names = set(inspect(store.engine).get_table_names())
    assert {"calls", "turns", "alembic_version"} <= names
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
    store.migrate()  # a second start-up finds nothing to do
    assert store.count() == 0


def test_a_call_is_stored_and_read_back_exactly(store, engine_en):
    record = call_record(make_call(engine_en))
    store.save(record, caller_key="k" * 64)
    assert store.get(record.call_sid) == record
    assert store.get("CA-unknown") is None
    [summary] = store.summaries()
    assert summary.call_sid == record.call_sid
    assert summary.outcome.action == "transfer" and summary.has_handoff
    assert summary.duration_s == 31.5


def test_a_spoken_turns_latency_budget_is_stored_with_it(store, engine_en):
    store.save(call_record(make_call(engine_en)))

    turns = store.get("CA-store-1").turns
    assert [turn.latency is not None for turn in turns] == [False, True, False]
    latency = turns[1].latency
    assert (latency.silence_detected_ms, latency.end_of_turn_ms, latency.transcript_ready_ms) == (141.0, 480.3, 455.2)
    assert (latency.first_audio_ms, latency.end_of_turn_rule, latency.anchor) == (1092.6, "complete_request", "energy")


def test_what_is_stored_is_the_masked_record(store, engine_en):
    store.save(call_record(make_call(engine_en)))
    with store.engine.connect() as connection:
        callers = connection.execute(text("SELECT caller, handoff FROM calls")).all()
    assert callers[0][0].endswith("78") and "612345" not in callers[0][0]
    assert "612345" not in str(callers[0][1])


def test_saving_again_updates_the_call_and_its_turns(store, engine_en):
    info = make_call(engine_en)
    info.state, info.ended_at, info.outcome, info.handoff = CallState.LIVE, None, None, None
    live_turns = info.records[:2]
    info.records = list(live_turns)
    store.save(call_record(info))
    assert store.get(info.call_sid).state is CallState.LIVE

    # The call goes on: a later turn completes the redaction of an earlier one, and the call ends.
    finished = make_call(engine_en)
    finished.records[1].caller = Transcript("my card is [card number]", 0.8, 14_000, 16_100)
    store.save(call_record(finished))
    stored = store.get(info.call_sid)
    assert stored == call_record(finished)
    assert stored.turns[1].caller.text == "my card is [card number]"

    shorter = call_record(finished).model_copy(update={"turns": call_record(finished).turns[:1]})
    store.save(shorter)
    assert len(store.get(info.call_sid).turns) == 1


def _turn_rows(store: CallStore) -> int:
    with store.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(TurnRow)).scalar_one()


def test_purge_deletes_old_calls_with_their_turns_and_keeps_recent_ones(store, engine_en):
    old = make_call(engine_en, "CA-old")
    old.started_at = time.time() - 40 * 86400
    old.ended_at = old.started_at + 60
    store.save(call_record(old))
    store.save(call_record(make_call(engine_en, "CA-new")))
    assert _turn_rows(store) == 6

    assert purge_older_than(store, 30) == 1
    assert store.get("CA-old") is None
    assert store.get("CA-new") is not None
    assert _turn_rows(store) == 3  # ON DELETE CASCADE on both databases
    assert purge_older_than(store, 30) == 0


def test_a_call_that_never_finished_is_purged_by_its_start(store, engine_en):
    stale = make_call(engine_en, "CA-stale")
    stale.state, stale.ended_at = CallState.LIVE, None
    stale.started_at = time.time() - 31 * 86400
    store.save(call_record(stale))
    assert purge_older_than(store, 30) == 1


def test_one_call_or_one_caller_can_be_deleted(store, engine_en, tmp_path):
    pseudonyms = CallerPseudonyms.from_data_dir(tmp_path)
    for sid, number in (("CA-a", CALLER), ("CA-b", "+31 6 1234 5678"), ("CA-c", "+441632960001")):
        store.save(call_record(make_call(engine_en, sid, number)), pseudonyms.of(number))
    assert store.delete_call("CA-c") is True
    assert store.delete_call("CA-c") is False
    assert store.delete_caller(pseudonyms.of("06 12345678", "NL")) == 2
    assert store.count() == 0
    assert _turn_rows(store) == 0


def test_the_daily_purge_runs_at_once_and_again_after_its_interval(store, engine_en):
    async def scenario() -> None:
        task = asyncio.create_task(purge_daily(store, days=30, interval_s=0.05))
        try:
            old = make_call(engine_en, "CA-aged")
            old.started_at = time.time() - 45 * 86400
            old.ended_at = old.started_at + 1
            await asyncio.sleep(0.1)  # the first purge ran on an empty store
            store.save(call_record(old))
            for _ in range(100):
                if store.get("CA-aged") is None:
                    return
                await asyncio.sleep(0.05)
            pytest.fail("the daily purge never deleted the aged call")
        finally:
            task.cancel()

    asyncio.run(scenario())


def test_the_writer_stores_every_change_and_retries_a_failed_write(store, engine_en, tmp_path):
    async def scenario() -> None:
        registry = CallRegistry()
        # Not started: the test drives the writes with flush(), where the server's background task would.
        writer = RecordWriter(store, registry, CallerPseudonyms.from_data_dir(tmp_path))
        info = make_call(engine_en, "CA-written")
        registry.open(info.call_sid, info.stream_sid, CALLER)
        live = registry.get(info.call_sid)
        live.records.extend(info.records[:2])
        registry.publish(info.call_sid)
        await writer.flush()
        assert store.get("CA-written").state is CallState.LIVE
        assert len(store.get("CA-written").turns) == 2

        # The database goes away for a moment: the change stays pending and is written on the retry.
        real_save = store.save
        calls = []

        def failing_once(record: CallRecord, caller_key: str | None = None, owner_id: str | None = None) -> None:
            calls.append(record.call_sid)
            if len(calls) == 1:
                raise ConnectionError("database restarting")
            real_save(record, caller_key, owner_id)

        store.save = failing_once
        live.records.append(info.records[2])
        registry.finish(info.call_sid, info.records[2].decision)
        assert await writer.flush() is False
        assert writer.failures == 1
        assert await writer.flush() is True
        await writer.stop()
        stored = store.get("CA-written")
        assert stored.state is CallState.FINISHED and len(stored.turns) == 3
        assert stored.outcome.action == "transfer"

    asyncio.run(scenario())


def test_the_started_writer_writes_changes_by_itself(store, engine_en, tmp_path):
    async def scenario() -> None:
        registry = CallRegistry()
        writer = RecordWriter(store, registry, CallerPseudonyms.from_data_dir(tmp_path))
        writer.start()
        registry.open("CA-background", "MZ-background", CALLER)
        for _ in range(200):
            if store.get("CA-background") is not None:
                break
            await asyncio.sleep(0.02)
        registry.finish("CA-background")
        await writer.stop()  # writes what is still pending
        assert store.get("CA-background").state is CallState.FINISHED

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "mysql://user:s3cret-pass@db/calls",
        "postgresql+nosuchdriver://user:s3cret-pass@db/calls",
        "postgres://user:s3cret-pass@db:port/calls",
    ],
)
def test_an_unusable_database_url_is_refused_without_showing_the_password(url):
    with pytest.raises(StorageError) as error:
        CallStore(url)
    assert "s3cret-pass" not in str(error.value)


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+psycopg"])
def test_postgresql_urls_as_providers_write_them_use_psycopg(scheme):
    store = CallStore(f"{scheme}://user:s3cret-pass@db.example:5432/calls")  # nothing is connected yet
    assert store.engine.url.drivername == "postgresql+psycopg"
    assert store.engine.dialect.driver == "psycopg"
    assert store.url == "postgresql+psycopg://user:***@db.example:5432/calls"


def test_pseudonyms_are_stable_across_formats_and_keys_stay_private(tmp_path):
    pseudonyms = CallerPseudonyms.from_data_dir(tmp_path)
    key_file = tmp_path / KEY_FILE_NAME
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert pseudonyms.of(CALLER) == pseudonyms.of("+31 6 1234 5678") == pseudonyms.of("0612345678", "NL")
    assert pseudonyms.of(CALLER) != pseudonyms.of("+31612345679")
    assert CallerPseudonyms.from_data_dir(tmp_path).of(CALLER) == pseudonyms.of(CALLER)  # the same key next start
    assert CallerPseudonyms.from_data_dir(tmp_path, "another-key-0123456789").of(CALLER) != pseudonyms.of(CALLER)
    assert "612345" not in pseudonyms.of(CALLER)
    assert pseudonyms.of(None) is None and pseudonyms.of("anonymous") is None
    assert normalize_number("+31 (0)6 1234 5678") == CALLER


def test_the_export_names_its_retention(engine_en):
    record = call_record(make_call(engine_en))
    now = datetime(2026, 11, 27, tzinfo=UTC)
    document = export_document(record, retention_days=30, now=now)
    assert document["format"] == EXPORT_FORMAT
    assert document["record"] == record.model_dump(mode="json")
    ended = datetime.fromisoformat(record.ended_at)
    kept = datetime.fromisoformat(document["deleted_after"]) - ended
    assert abs(kept - timedelta(days=30)) < timedelta(seconds=1)


@pytest.mark.slow
def test_instances_starting_together_migrate_once(database_url):
    # Several servers sharing one database start at the same moment: none may fail on a half-made schema.
    # Separate processes, as real instances are (Alembic's context is per process).
    migrate = "import sys; from telephony.storage.store import CallStore; CallStore(sys.argv[1]).migrate()"
    starts = [subprocess.Popen([sys.executable, "-c", migrate, database_url]) for _ in range(4)]
    assert [start.wait(timeout=120) for start in starts] == [0, 0, 0, 0]
    store = CallStore(database_url)
    assert store.count() == 0
    with store.engine.connect() as connection:
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head]
    store.close()


def test_records_left_live_by_a_dead_instance_are_finished_and_a_live_instances_are_not(store, engine_en):
    now = datetime.now(UTC)
    store.heartbeat("alive", now)
    store.heartbeat("dead", now - timedelta(seconds=60))
    for call_sid, owner in (("CA-alive", "alive"), ("CA-dead", "dead"), ("CA-nobody", None)):
        info = make_call(engine_en, call_sid)
        info.state, info.ended_at, info.outcome = CallState.LIVE, None, None
        store.save(call_record(info), owner_id=owner)
    done = call_record(make_call(engine_en, "CA-done"))
    store.save(done, owner_id="dead")

    finished = recover_orphaned_at(store, now)
    assert sorted(finished) == ["CA-dead", "CA-nobody"]
    for call_sid in finished:
        record = store.get(call_sid)
        assert record.state is CallState.FINISHED and record.failure == SERVER_STOPPED and record.ended_at
    assert store.get("CA-alive").state is CallState.LIVE and store.get("CA-alive").failure is None
    assert store.get("CA-done") == done
    assert recover_orphaned_at(store, now) == []  # the dead instance is forgotten, its calls done


def recover_orphaned_at(store: CallStore, now: datetime) -> list[str]:
    return store.finish_orphaned(now - timedelta(seconds=30), SERVER_STOPPED, now)


def test_the_data_folder_database_and_key_are_private(tmp_path, monkeypatch):
    from telephony.settings import load_settings

    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    monkeypatch.setenv("VOICE_AGENT_DATA_DIR", str(data_dir))
    previous = os.umask(0o022)
    try:
        settings = load_settings()
        store = CallStore.from_settings(settings)
        store.migrate()
        store.close()
        CallerPseudonyms.from_settings(settings)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((data_dir / "calls.sqlite3").stat().st_mode) == 0o600
    assert stat.S_IMODE((data_dir / KEY_FILE_NAME).stat().st_mode) == 0o600
