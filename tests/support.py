"""Helpers shared by the test tiers."""

from __future__ import annotations

from pathlib import Path

from enclave.config import Settings, load_settings
from enclave.core.principal import Principal, Realm, Role
from enclave.deployment import init_deployment
from enclave.services import Services

PASSWORD = "correct horse battery"


def fast_settings(data_dir: Path) -> Settings:
    """A new deployment with a short failure delay, so the suite stays quick."""
    init_deployment(data_dir, ["mail.test.example"])
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
