"""Alembic's environment: migrations run on the connection handed over by `upgrade_to_head`, or on the URL in
``VOICE_AGENT_DATABASE_URL`` (default: the embedded SQLite file) when Alembic's own command line runs them."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from telephony.storage.tables import Base


def _migrate(connection: Connection) -> None:
    # Batch mode lets SQLite alter tables (it rebuilds them); PostgreSQL alters in place.
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    from telephony.settings import load_settings
    from telephony.storage.store import CallStore

    engine = CallStore.from_settings(load_settings()).engine
    with engine.connect() as connection:
        _migrate(connection)
        connection.commit()


run_migrations_online()
