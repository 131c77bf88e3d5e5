"""Alembic migrations of the call-record schema, run from code (no alembic.ini needed to serve).

New migration after changing `telephony.storage.tables` (from the repository root)::

    alembic -c telephony/storage/alembic.ini revision --autogenerate -m "what changed"
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent


def alembic_config(engine: Engine | None = None) -> Config:
    """Alembic's configuration for this package; with an engine, migrations run on it."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if engine is not None:
        config.attributes["engine"] = engine
    return config


def upgrade_to_head(engine: Engine) -> None:
    """Apply every migration the database has not had yet."""
    command.upgrade(alembic_config(engine), "head")
