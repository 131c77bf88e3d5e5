"""call records

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-27 06:41:38.290964
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("caller", sa.String(length=32), nullable=False),
        sa.Column("caller_key", sa.String(length=64), nullable=True),
        sa.Column("intent", sa.String(length=64), nullable=True),
        sa.Column("outcome_action", sa.String(length=16), nullable=True),
        sa.Column("outcome_department", sa.String(length=64), nullable=True),
        sa.Column("handoff", sa.JSON(), nullable=True),
        sa.Column("protocol_errors", sa.Integer(), nullable=False),
        sa.Column("failure", sa.Text(), nullable=True),
        sa.Column("transfer_status", sa.String(length=32), nullable=True),
        sa.Column("callback_requested", sa.Boolean(), nullable=False),
        sa.Column("message_recording_sid", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("call_sid", name=op.f("pk_calls")),
    )
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_calls_caller_key"), ["caller_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_calls_started_at"), ["started_at"], unique=False)

    op.create_table(
        "turns",
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("caller_kind", sa.String(length=8), nullable=True),
        sa.Column("caller_text", sa.Text(), nullable=True),
        sa.Column("caller_confidence", sa.Float(), nullable=True),
        sa.Column("caller_start_ms", sa.Integer(), nullable=True),
        sa.Column("caller_end_ms", sa.Integer(), nullable=True),
        sa.Column("caller_digit", sa.String(length=1), nullable=True),
        sa.Column("intent", sa.String(length=64), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("reply", sa.Text(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("department", sa.String(length=64), nullable=True),
        sa.Column("transfer_reason", sa.Text(), nullable=True),
        sa.Column("processing_ms", sa.Float(), nullable=True),
        sa.Column("heard", sa.Boolean(), nullable=False),
        sa.Column("interrupted", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_sid"], ["calls.call_sid"], name=op.f("fk_turns_call_sid_calls"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("call_sid", "position", name=op.f("pk_turns")),
    )


def downgrade() -> None:
    op.drop_table("turns")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calls_started_at"))
        batch_op.drop_index(batch_op.f("ix_calls_caller_key"))

    op.drop_table("calls")
