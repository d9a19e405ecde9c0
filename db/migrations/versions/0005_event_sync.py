"""event sync: a calendar's sync token, and busy rows found by their event

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sync_token", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True))
    op.create_index("ix_busy_intervals_calendar_event", "busy_intervals", ["calendar_id", "external_id"])


def downgrade() -> None:
    op.drop_index("ix_busy_intervals_calendar_event", table_name="busy_intervals")
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.drop_column("sync_token")
