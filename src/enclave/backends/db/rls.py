"""PostgreSQL row-level security for tenant tables, used by the migrations that create them.

A row is visible or writable only when its tenant_id equals the transaction's
``enclave.tenant_id`` setting, which ``Tx.scoped`` sets. FORCE applies the policies to the
tables' owner too; only a superuser bypasses them, so deployments must not connect as one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

CONDITION = "tenant_id = current_setting('enclave.tenant_id', true)"


def enable(op: Any, *tables: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in tables:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} USING ({CONDITION}) WITH CHECK ({CONDITION})"
        )


def each_tenant(op: Any, statements: Callable[[], None]) -> None:
    """Run a migration's data statements so they see every tenant's rows: on PostgreSQL once
    per tenant with its setting (the policies hide rows from a statement without one)."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        statements()
        return
    for (tenant_id,) in bind.execute(sa.text("SELECT id FROM tenants")).all():
        bind.execute(sa.text("SELECT set_config('enclave.tenant_id', :t, true)"), {"t": tenant_id})
        statements()
    bind.execute(sa.text("SELECT set_config('enclave.tenant_id', '', true)"))


def disable(op: Any, *tables: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in tables:
        op.execute(f"DROP POLICY tenant_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
