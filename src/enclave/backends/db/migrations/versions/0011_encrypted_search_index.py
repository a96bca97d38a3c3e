"""the encrypted search index, its job queue; the plaintext FTS5 index goes

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

from enclave.backends.db import rls
from enclave.backends.db.schema import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TABLES = ("search_keys", "search_entries", "search_postings", "search_jobs")


def _tenant(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenants.id"], name=f"fk_{table}_tenant_id_tenants", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "search_keys",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("kek_version", sa.Integer(), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        _tenant("search_keys"),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_search_keys")),
    )
    op.create_table(
        "search_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=False),
        sa.Column("container_id", sa.String(length=36), nullable=True),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("tokens", sa.LargeBinary(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        _tenant("search_entries"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_entries")),
        sa.UniqueConstraint("tenant_id", "kind", "object_id", name="uq_search_entries_object"),
    )
    op.create_index(
        "ix_search_entries_incomplete", "search_entries", ["tenant_id", "kind", "complete"]
    )
    op.create_table(
        "search_postings",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("token", sa.LargeBinary(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("weight", sa.Integer(), nullable=False),
        _tenant("search_postings"),
        sa.PrimaryKeyConstraint("tenant_id", "token", "entry_id", name=op.f("pk_search_postings")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "search_jobs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=False),
        sa.Column("deep", sa.Boolean(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("not_before", UTCDateTime(), nullable=True),
        _tenant("search_jobs"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_jobs")),
        sa.UniqueConstraint("tenant_id", "kind", "object_id", name="uq_search_jobs_object"),
    )
    rls.enable(op, *TABLES)
    op.create_index("ix_messages_mailbox_blob", "messages", ["mailbox_id", "blob"])
    if op.get_bind().dialect.name == "sqlite":
        # The plaintext FTS5 index (created outside the migrations, on first use) goes; its
        # trigger and shadow tables go with it. VACUUM is left to the operator (docs).
        op.execute("DROP TABLE IF EXISTS doc_search_rows")
        op.execute("DROP TABLE IF EXISTS doc_search")
    # Everything already stored is indexed again, in the background, by the new index.
    rls.each_tenant(op, _queue_everything)


def _queue_everything() -> None:
    op.execute(
        "INSERT INTO search_jobs (tenant_id, kind, object_id, deep, seq, attempts) "
        "SELECT tenant_id, 'doc', id, false, 0, 0 FROM doc_nodes "
        "WHERE NOT folder AND deleted_at IS NULL"
    )
    op.execute(
        "INSERT INTO search_jobs (tenant_id, kind, object_id, deep, seq, attempts) "
        "SELECT DISTINCT tenant_id, 'mail', blob, false, 0, 0 FROM messages"
    )


def downgrade() -> None:
    op.drop_index("ix_messages_mailbox_blob", table_name="messages")
    rls.disable(op, *TABLES)
    for table in reversed(TABLES):
        op.drop_table(table)
