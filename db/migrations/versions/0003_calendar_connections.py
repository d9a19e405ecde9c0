"""calendar connections: OAuth attempts, written events, the one-connection rule

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "connection_attempts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("verifier", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("connection_attempts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_connection_attempts_user_id"), ["user_id"], unique=False)

    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("calendar_event_id", sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=True)
        )
        batch_op.add_column(sa.Column("calendar_event_calendar_id", sa.Uuid(), nullable=True))
        batch_op.add_column(
            sa.Column("calendar_write_error", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True)
        )
        batch_op.create_foreign_key(
            "fk_bookings_calendar_event_calendar_id",
            "calendars",
            ["calendar_event_calendar_id"],
            ["id"],
            ondelete="SET NULL",
        )

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("single_connection_since", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("calendar_connections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sync_lease_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("auth_failures", sa.Integer(), nullable=False, server_default="0"))

    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.add_column(sa.Column("inactive_notified_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.drop_column("inactive_notified_at")
    with op.batch_alter_table("calendar_connections", schema=None) as batch_op:
        batch_op.drop_column("auth_failures")
        batch_op.drop_column("checked_at")
        batch_op.drop_column("sync_lease_until")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("single_connection_since")
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_constraint("fk_bookings_calendar_event_calendar_id", type_="foreignkey")
        batch_op.drop_column("calendar_write_error")
        batch_op.drop_column("calendar_event_calendar_id")
        batch_op.drop_column("calendar_event_id")
    with op.batch_alter_table("connection_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_connection_attempts_user_id"))
    op.drop_table("connection_attempts")
