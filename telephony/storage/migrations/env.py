"""Alembic's environment: migrations run on the engine handed over by `upgrade_to_head`, or on the URL in
``VOICE_AGENT_DATABASE_URL`` (default: the embedded SQLite file) when Alembic's own command line runs them."""

from __future__ import annotations

from alembic import context

from telephony.storage.tables import Base


def _engine():
    engine = context.config.attributes.get("engine")
    if engine is not None:
        return engine
    from telephony.settings import load_settings
    from telephony.storage.store import CallStore, default_database_url

    settings = load_settings()
    return CallStore(settings.database_url or default_database_url(settings.data_dir)).engine


def run_migrations_online() -> None:
    with _engine().connect() as connection:
        # Batch mode lets SQLite alter tables (it rebuilds them); PostgreSQL alters in place.
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
