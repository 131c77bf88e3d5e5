"""transfer timeline

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 15:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("calls", sa.Column("transfer_timeline", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("calls", "transfer_timeline")
