"""The database tables: one row per call, one per turn (with its decision). Alembic migrations follow these."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, MetaData, String, Text
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
