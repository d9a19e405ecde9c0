"""event sync: a calendar's sync token, busy rows found by their event, push channels

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
    op.create_table(
        "push_channels",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("calendar_id", sa.Uuid(), nullable=False),
        sa.Column("resource_id", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("token_digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["calendar_id"], ["calendars.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_push_channels_calendar_id", "push_channels", ["calendar_id"])


def downgrade() -> None:
    op.drop_index("ix_push_channels_calendar_id", table_name="push_channels")
    op.drop_table("push_channels")
    op.drop_index("ix_busy_intervals_calendar_event", table_name="busy_intervals")
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.drop_column("sync_token")
