"""push for every provider: long sync states, calendars refusing push, lookups by subscription and
event, bookings whose event a sync has seen

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.alter_column(
            "sync_token",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=2000),
            type_=sa.Text(),
            existing_nullable=True,
        )
        batch_op.add_column(sa.Column("push_refused_until", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_push_channels_resource_id", "push_channels", ["resource_id"])
    op.create_index("ix_bookings_calendar_event", "bookings", ["calendar_event_calendar_id", "calendar_event_id"])
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("calendar_event_seen_at", sa.DateTime(timezone=True), nullable=True))
    # Events written before this version were synced since: they count as seen.
    op.execute("UPDATE bookings SET calendar_event_seen_at = created_at WHERE calendar_event_id IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_column("calendar_event_seen_at")
    op.drop_index("ix_bookings_calendar_event", table_name="bookings")
    op.drop_index("ix_push_channels_resource_id", table_name="push_channels")
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.drop_column("push_refused_until")
        batch_op.alter_column(
            "sync_token",
            existing_type=sa.Text(),
            type_=sqlmodel.sql.sqltypes.AutoString(length=2000),
            existing_nullable=True,
        )
