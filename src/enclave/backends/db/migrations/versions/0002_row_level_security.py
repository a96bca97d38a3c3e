"""Row-level security on tenant tables (PostgreSQL only): the second, independent wall.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from enclave.backends.db import rls

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = ("users", "groups", "group_members", "app_passwords", "recovery_codes", "blobs")


def upgrade() -> None:
    rls.enable(op, *TABLES)


def downgrade() -> None:
    rls.disable(op, *TABLES)
