"""job domains: the domain a domain.* or vm.provision job makes or acts on, for ownership

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 13:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The kinds whose ``name`` parameter is a domain (orchestrator.access.domain_owners).
_NAMED_DOMAIN_KINDS = (
    "domain.define",
    "domain.destroy",
    "domain.reboot",
    "domain.resume",
    "domain.shutdown",
    "domain.start",
    "domain.suspend",
    "domain.undefine",
    "vm.provision",
)


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("domain", sa.String(length=255), nullable=True))
        batch.create_index("ix_jobs_hypervisor_domain", ["hypervisor", "domain"])
    # Jobs from before keep their domains: their makers stay their owners. Read in Python, as
    # SQLite and PostgreSQL spell JSON access differently.
    jobs = sa.table(
        "jobs",
        sa.column("id", sa.String),
        sa.column("kind", sa.String),
        sa.column("params", sa.JSON),
        sa.column("domain", sa.String),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(jobs.c.id, jobs.c.params).where(jobs.c.kind.in_(_NAMED_DOMAIN_KINDS))
    ).all()
    named = []
    for job_id, params in rows:
        name = params.get("name") if isinstance(params, dict) else None
        # A count request's parent names a pattern, not a domain; its children name theirs.
        if isinstance(name, str) and len(name) <= 255 and params.get("count") is None:
            named.append({"b_id": job_id, "b_domain": name})
    if named:
        connection.execute(
            jobs.update()
            .where(jobs.c.id == sa.bindparam("b_id"))
            .values(domain=sa.bindparam("b_domain")),
            named,
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_hypervisor_domain")
        batch.drop_column("domain")
