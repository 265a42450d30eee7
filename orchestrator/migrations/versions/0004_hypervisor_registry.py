"""the hypervisor registry: declared or seen hypervisors, their state, labels and capacity

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 09:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hypervisors",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("libvirt_uri", sa.String(length=1024), nullable=True),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("admin_state", sa.String(length=16), nullable=False),
        sa.Column("alive", sa.Boolean(), nullable=False),
        sa.Column("declared", sa.Boolean(), nullable=False),
        sa.Column("capacity", sa.JSON(), nullable=True),
        sa.Column("allocated", sa.JSON(), nullable=True),
        sa.Column("cpu_modes", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("hypervisors")
