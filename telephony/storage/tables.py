"""The database tables: one row per call, one per turn (with its decision), call-back requests, desk accounts and
the audit trail. Alembic migrations follow these."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, LargeBinary, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names, so that migrations name the same thing on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class CallRow(Base):
    """One call: metadata, outcome and handoff. Every text in it is masked."""

    __tablename__ = "calls"

    call_sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    caller: Mapped[str] = mapped_column(String(32))
    """The caller's number with all but the last two digits masked."""
    caller_key: Mapped[str | None] = mapped_column(String(64), index=True)
    """A keyed hash of the caller's full number: finds one caller's calls (to delete them) without storing it."""
    intent: Mapped[str | None] = mapped_column(String(64))
    outcome_action: Mapped[str | None] = mapped_column(String(16))
    outcome_department: Mapped[str | None] = mapped_column(String(64))
    handoff: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    protocol_errors: Mapped[int] = mapped_column(Integer, default=0)
    failure: Mapped[str | None] = mapped_column(Text)
    transfer_status: Mapped[str | None] = mapped_column(String(32))
    callback_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    message_recording_sid: Mapped[str | None] = mapped_column(String(64))
    owner_id: Mapped[str | None] = mapped_column(String(64), index=True)
    """The server instance that runs the call while it is live (`InstanceRow`); its records are finished when that
    instance stops sending heartbeats."""
    transfer_timeline: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    """The transfer's steps (`telephony.call_record.TransferEventView`), oldest first."""

    turns: Mapped[list[TurnRow]] = relationship(
        back_populates="call", cascade="all, delete-orphan", order_by="TurnRow.position", passive_deletes=True
    )


class TurnRow(Base):
    """One exchange: the caller's turn (masked) and the engine's decision with its reasons and latency."""

    __tablename__ = "turns"

    call_sid: Mapped[str] = mapped_column(ForeignKey("calls.call_sid", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    caller_kind: Mapped[str | None] = mapped_column(String(8))
    """``speech``, ``dtmf`` or None (the greeting, a failure)."""
    caller_text: Mapped[str | None] = mapped_column(Text)
    caller_confidence: Mapped[float | None] = mapped_column(Float)
    caller_start_ms: Mapped[int | None] = mapped_column(Integer)
    caller_end_ms: Mapped[int | None] = mapped_column(Integer)
    caller_digit: Mapped[str | None] = mapped_column(String(1))
    intent: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float] = mapped_column(Float)
    action: Mapped[str] = mapped_column(String(16))
    rule: Mapped[str] = mapped_column(String(64))
    reply: Mapped[str] = mapped_column(Text)
    reasons: Mapped[list[str]] = mapped_column(JSON)
    department: Mapped[str | None] = mapped_column(String(64))
    transfer_reason: Mapped[str | None] = mapped_column(Text)
    processing_ms: Mapped[float | None] = mapped_column(Float)
    heard: Mapped[bool] = mapped_column(Boolean, default=False)
    interrupted: Mapped[bool] = mapped_column(Boolean, default=False)
    latency: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """A spoken turn's latency budget (`telephony.call_record.LatencyView`); None for other turns."""

    call: Mapped[CallRow] = relationship(back_populates="turns")


class CallbackRow(Base):
    """A caller who asked for a call-back or left a voicemail: the one place their number is kept, encrypted.

    One per call. The number goes when the request is done, when it is older than the retention period, or when the
    caller is forgotten; the masked number, topic and reason are copied from the call so the queue reads on its own.
    """

    __tablename__ = "callbacks"

    call_sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    caller: Mapped[str] = mapped_column(String(32))
    """The caller's number with all but the last two digits masked."""
    caller_key: Mapped[str | None] = mapped_column(String(64), index=True)
    """The keyed hash of the number (`telephony.storage.pseudonyms`), so forgetting a caller finds the request."""
    number_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    """The caller's number, encrypted (`telephony.storage.vault`); None once done, or when it was withheld."""
    intent: Mapped[str | None] = mapped_column(String(64))
    department: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    """Why the call was to go to a person (masked, from the handoff)."""
    recording_sid: Mapped[str | None] = mapped_column(String(64))
    """The voicemail, kept at Twilio under this recording SID; None for a plain call-back."""
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    done_by: Mapped[str | None] = mapped_column(String(80))


class DeskUserRow(Base):
    """A named desk account: who may log in to the desk, with which role; only a password hash is kept."""

    __tablename__ = "desk_users"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    """argon2id, with its parameters and salt (argon2-cffi's encoded form)."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    password_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    """Sessions started before this are no longer accepted."""


class AuditRow(Base):
    """One action on callers' data or on access: who, when, what. Never a caller's number or a password."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(80))
    """An account name, ``token:<role>`` for a machine token, ``cli:<os user>``, or ``retention``."""
    action: Mapped[str] = mapped_column(String(32), index=True)
    target: Mapped[str | None] = mapped_column(String(128))
    """The call SID or account name acted on, when there is one."""
    outcome: Mapped[str] = mapped_column(String(16))
    """``ok``, ``refused`` (a failed login, a throttled one) or ``not_found``."""
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    address: Mapped[str | None] = mapped_column(String(64))
    """The client's address, for web requests."""


class InstanceRow(Base):
    """One running server process that writes call records: its heartbeat tells the others it is alive."""

    __tablename__ = "instances"

    owner_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
