"""Durable call records: SQLAlchemy tables, the store, schema migrations (Alembic), the writer and retention.

SQLite under the data directory by default; PostgreSQL when ``VOICE_AGENT_DATABASE_URL`` points at one. Only the
masked `telephony.call_record.CallRecord` is stored: never raw audio, never an unmasked number.
"""
