"""covered windows: the range of each calendar's busy time that was fetched, and failed fetches

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing calendars start with nothing covered: their range is fetched again before it is offered.
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.add_column(sa.Column("covered_from", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("covered_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("busy_failed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.drop_column("busy_failed_at")
        batch_op.drop_column("covered_until")
        batch_op.drop_column("covered_from")
