"""Alembic migrations of the call-record schema, run from code (no alembic.ini needed to serve).

New migration after changing `telephony.storage.tables` (from the repository root)::

    alembic -c telephony/storage/alembic.ini revision --autogenerate -m "what changed"
"""

from __future__ import annotations

import contextlib
import fcntl
import threading
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, text

MIGRATIONS_DIR = Path(__file__).resolve().parent
MIGRATION_LOCK_KEY = 0x766F6963  # "voic": a PostgreSQL advisory lock id of our own
# Alembic's `context` is one module-wide object: two migrations in one process must not overlap.
_IN_PROCESS = threading.Lock()


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for this package; with a connection, migrations run on it."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@contextlib.contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    # Processes sharing one SQLite file (a second server on the same machine) take turns through a lock file.
    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    with open(database + ".migrate-lock", "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def upgrade_to_head(engine: Engine) -> None:
    """Apply every migration the database has not had yet.

    Servers starting together take turns (a PostgreSQL advisory lock, or a lock file beside an SQLite database):
    the first migrates, the others find nothing left to do, instead of racing to create the same tables.
    """
    with _IN_PROCESS, engine.connect() as connection:
        if connection.dialect.name != "postgresql":
            with _sqlite_file_lock(engine):
                command.upgrade(alembic_config(connection), "head")
                connection.commit()
            return
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        connection.commit()
        try:
            command.upgrade(alembic_config(connection), "head")
            connection.commit()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()
