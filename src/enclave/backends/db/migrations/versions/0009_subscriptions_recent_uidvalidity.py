"""subscriptions as names, \\Recent, increasing UIDVALIDITY

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

from enclave.backends.db import rls

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mail_subscriptions",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=400), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_mail_subscriptions_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_mail_subscriptions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "name", name=op.f("pk_mail_subscriptions")),
    )
    rls.enable(op, "mail_subscriptions")
    # Existing mailboxes: what was subscribed stays so; nothing already there is \Recent; the
    # UIDVALIDITY counter starts above every value a user's mailboxes have had.
    rls.each_tenant(op, lambda: op.execute(
        "INSERT INTO mail_subscriptions (tenant_id, user_id, name) "
        "SELECT tenant_id, user_id, name FROM mailboxes WHERE subscribed"
    ))  # fmt: skip
    with op.batch_alter_table("mailboxes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("recent_uid", sa.BigInteger(), server_default="1", nullable=False)
        )
        batch_op.drop_column("subscribed")
    rls.each_tenant(op, lambda: op.execute("UPDATE mailboxes SET recent_uid = uidnext"))
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_uidvalidity", sa.BigInteger(), server_default="0", nullable=False)
        )
    rls.each_tenant(op, lambda: op.execute(
        "UPDATE users SET last_uidvalidity = COALESCE("
        "(SELECT MAX(uidvalidity) FROM mailboxes WHERE mailboxes.user_id = users.id), 0)"
    ))  # fmt: skip


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("last_uidvalidity")
    with op.batch_alter_table("mailboxes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("subscribed", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
        batch_op.drop_column("recent_uid")
    rls.disable(op, "mail_subscriptions")
    op.drop_table("mail_subscriptions")
