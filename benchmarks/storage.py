"""What keeping call records costs: write, read, list and purge times on SQLite and (when given) PostgreSQL.

    python benchmarks/storage.py [--calls 500] [--turns 12] [--postgres URL]

Each call record is a realistic one (greeting, caller turns with decisions and reasons, a handoff), made with the
real dialogue engine. Writes are whole-record upserts as `telephony.storage.writer` does them after each decision:
a call of N turns is written N times while it runs, growing by one turn each time. Figures only; nothing asserts.
`--postgres` takes a URL of a database the benchmark may empty (tests/start_postgres.sh prints one).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from qa.stats import median, percentile
from telephony.call_record import CallRecord, call_record
from telephony.calls import CallInfo, CallState
from telephony.settings import DEFAULT_PROMPTS_DIR
from telephony.storage.retention import purge_older_than
from telephony.storage.store import CallStore
from voice.dialogue import DialogueEngine
from voice.events import Dtmf, Transcript
from voice.handoff import build_handoff
from voice.pipeline import TurnRecord

CALLER_LINES = (
    "I have a question about my bill",
    "why was I charged twice",
    "what are your opening hours",
    "can I change my address",
    "my internet is not working",
    "I want to cancel my contract",
)


def growing_records(engine: DialogueEngine, call_sid: str, turns: int) -> list[CallRecord]:
    """The record of one call after each of its turns, as the writer would see it."""
    # An hour ago, so that the purge at the end finds every call older than its cutoff.
    info = CallInfo(call_sid=call_sid, stream_sid="MZ" + call_sid[2:], caller_number="+31612345678")
    info.started_at = time.time() - 3600
    state, greeting = engine.start()
    info.records.append(TurnRecord(caller=None, decision=greeting, heard=True))
    snapshots = [call_record(info)]
    # Questions, then key 0: the engine transfers (with a handoff) on the last turn.
    caller_turns: list[Transcript | Dtmf] = [
        Transcript(CALLER_LINES[index % len(CALLER_LINES)], 0.8, 1000 * index, 1000 * index + 900)
        for index in range(turns - 2)
    ]
    for said in [*caller_turns, Dtmf("0")]:
        state, decision = engine.step(state, said)
        info.records.append(TurnRecord(caller=said, decision=decision, processing_ms=640.0, heard=True))
        snapshots.append(call_record(info))
    exchanges = [(record.caller, record.decision) for record in info.records]
    info.handoff = build_handoff(engine.catalogue, call_sid, exchanges, info.records[-1].decision, info.caller_number)
    info.state, info.ended_at = CallState.FINISHED, info.started_at + 60
    snapshots.append(call_record(info))
    return snapshots


def _ms(samples: list[float]) -> str:
    return f"median {median(samples) * 1000:7.2f} ms   p95 {percentile(samples, 0.95) * 1000:7.2f} ms"


def measure(name: str, store: CallStore, engine: DialogueEngine, calls: int, turns: int) -> None:
    store.migrate()
    writes, reads = [], []
    for number in range(calls):
        call_sid = f"CA{number:032x}"
        for record in growing_records(engine, call_sid, turns):
            started = time.perf_counter()
            store.save(record, caller_key="0" * 64)
            writes.append(time.perf_counter() - started)
        started = time.perf_counter()
        store.get(call_sid)
        reads.append(time.perf_counter() - started)
        if number % 50 == 0:
            print(f"  {name}: {number}/{calls} calls", file=sys.stderr)
    started = time.perf_counter()
    listed = store.summaries(500)
    listing = time.perf_counter() - started
    started = time.perf_counter()
    deleted = purge_older_than(store, days=1 / 24 / 2)  # 30 minutes: every call
    purge = time.perf_counter() - started
    print(f"{name:10s} write (upsert of a growing call) {_ms(writes)}   ({len(writes)} writes)")
    print(f"{name:10s} read one call                    {_ms(reads)}")
    print(f"{name:10s} list {len(listed)} calls                  {listing * 1000:7.2f} ms")
    print(f"{name:10s} purge {deleted} calls                 {purge * 1000:7.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--turns", type=int, default=12, help="turns per call, greeting included")
    parser.add_argument("--postgres", metavar="URL", help="also measure this PostgreSQL database (it is emptied)")
    args = parser.parse_args()
    engine = DialogueEngine.from_prompts(DEFAULT_PROMPTS_DIR, "en")
    print(f"{args.calls} calls of {args.turns} turns; each call written {args.turns + 1} times")
    with tempfile.TemporaryDirectory() as folder:
        store = CallStore(f"sqlite:///{Path(folder) / 'calls.sqlite3'}")
        measure("sqlite", store, engine, args.calls, args.turns)
        store.close()
    if args.postgres:
        store = CallStore(args.postgres)
        with store.engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        measure("postgresql", store, engine, args.calls, args.turns)
        store.close()


if __name__ == "__main__":
    main()
