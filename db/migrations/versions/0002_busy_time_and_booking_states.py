"""busy time and booking states

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

On PostgreSQL, overlapping blocking bookings of one owner are impossible: an exclusion
constraint (extension btree_gist) refuses the second one whatever the application checked.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "busy_intervals",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("calendar_id", sa.Uuid(), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["calendar_id"], ["calendars.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("busy_intervals", schema=None) as batch_op:
        batch_op.create_index("ix_busy_intervals_calendar_start", ["calendar_id", "start_at"], unique=False)

    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("request_fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.add_column(sa.Column("calendar_write", sa.String(length=16), nullable=False, server_default="NONE"))
        batch_op.add_column(sa.Column("rescheduled_from_id", sa.Uuid(), nullable=True))

    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.add_column(sa.Column("busy_synced_at", sa.DateTime(timezone=True), nullable=True))

    op.create_index("ix_bookings_owner_start", "bookings", ["owner_id", "start_at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        op.execute(
            "ALTER TABLE bookings ADD CONSTRAINT bookings_no_overlap EXCLUDE USING gist "
            "(owner_id WITH =, tstzrange(start_at, end_at, '[)') WITH &&) "
            "WHERE (status IN ('CONFIRMED', 'REQUESTED'))"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE bookings DROP CONSTRAINT bookings_no_overlap")
    op.drop_index("ix_bookings_owner_start", "bookings")
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.drop_column("busy_synced_at")

    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_column("rescheduled_from_id")
        batch_op.drop_column("calendar_write")
        batch_op.drop_column("request_fingerprint")

    with op.batch_alter_table("busy_intervals", schema=None) as batch_op:
        batch_op.drop_index("ix_busy_intervals_calendar_start")

    op.drop_table("busy_intervals")
