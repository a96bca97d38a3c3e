"""Helpers shared by the test tiers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from enclave.config import Settings, load_settings
from enclave.core.principal import Principal, Realm, Role
from enclave.deployment import init_deployment
from enclave.services import Services

PG_ENV = "ENCLAVE_TEST_DATABASE_URL"


@asynccontextmanager
async def fresh_postgres_database(admin_url: str) -> AsyncIterator[str]:
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    import asyncpg

    name = f"enclave_t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
        try:
            yield admin_url.rsplit("/", 1)[0] + "/" + name
        finally:
            await _drop(admin, name)
    finally:
        await admin.close()


async def _drop(admin: Any, name: str) -> None:
    """Drop a test database. An autovacuum worker may still be in it for a moment, and a
    non-superuser cannot terminate that, so wait and retry; a leftover is harmless."""
    import asyncpg

    for _ in range(20):
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {name}")
            return
        except asyncpg.ObjectInUseError:
            await asyncio.sleep(0.25)


PASSWORD = "correct horse battery"


def fast_settings(data_dir: Path) -> Settings:
    """A new deployment with a short failure delay, so the suite stays quick."""
    init_deployment(data_dir, ["mail.test.example"], create_schema=False)
    settings = load_settings(data_dir, environ={})
    auth = settings.auth.model_copy(update={"failure_delay_ms": 50})
    return settings.model_copy(update={"auth": auth})


async def make_tenant(svc: Services, console: Principal, name: str, domain: str) -> str:
    tenant = await svc.tenants.create(console, name, [domain])
    return tenant.id


async def make_user(
    svc: Services, console: Principal, email: str, role: Role = Role.USER
) -> Principal:
    user = await svc.users.add(console, email, password=PASSWORD, role=role)
    return Principal(
        realm=Realm.TENANT,
        id=user.id,
        name=user.email,
        tenant_id=user.tenant_id,
        roles=frozenset({role}),
    )
