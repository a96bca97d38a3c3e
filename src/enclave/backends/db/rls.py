"""PostgreSQL row-level security for tenant tables, used by the migrations that create them.

A row is visible or writable only when its tenant_id equals the transaction's
``enclave.tenant_id`` setting, which ``Tx.scoped`` sets. FORCE applies the policies to the
tables' owner too; only a superuser bypasses them, so deployments must not connect as one.
"""

from __future__ import annotations

from typing import Any

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


def disable(op: Any, *tables: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in tables:
        op.execute(f"DROP POLICY tenant_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
