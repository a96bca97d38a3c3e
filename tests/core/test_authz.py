"""Authorisation in core services: cross-tenant, roles, operators without tenant rights."""

from __future__ import annotations

import pytest

from enclave.backends.db.scoped import ScopedRepo, TenantScope, UsersRepo
from enclave.core.errors import Forbidden
from enclave.core.principal import Principal, Realm, Role
from enclave.services import Services


async def test_admin_of_one_tenant_cannot_touch_another(
    services: Services, two_tenants: dict[str, Principal]
) -> None:
    gina = two_tenants["gina"]
    with pytest.raises(Forbidden):
        await services.users.list_users(gina, "acme")
    with pytest.raises(Forbidden):
        await services.users.add(gina, "evil@acme.example", password="long enough pw")
    with pytest.raises(Forbidden):
        await services.users.set_status(gina, "bob@acme.example", "disabled")
    with pytest.raises(Forbidden):
        await services.users.add_app_password(gina, "bob@acme.example", "steal")
    with pytest.raises(Forbidden):
        await services.audit_access.entries(gina, "acme")
    with pytest.raises(Forbidden):
        await services.tenants.rotate_key(gina, "acme")


async def test_roles_within_a_tenant(services: Services, two_tenants: dict[str, Principal]) -> None:
    bob, carol, alice = two_tenants["bob"], two_tenants["carol"], two_tenants["alice"]
    with pytest.raises(Forbidden):
        await services.users.list_users(bob, "acme")
    with pytest.raises(Forbidden):
        await services.audit_access.entries(bob, "acme")
    with pytest.raises(Forbidden):  # the auditor reads the log and nothing else
        await services.users.list_users(carol, "acme")
    assert await services.audit_access.entries(carol, "acme")
    assert await services.audit_access.entries(alice, "acme")
    with pytest.raises(Forbidden):  # tenant users are not platform staff
        await services.tenants.list_tenants(alice)
    with pytest.raises(Forbidden):  # nobody reads another user's app passwords
        await services.users.list_app_passwords(bob, "alice@acme.example")


async def test_denials_are_audited_in_the_tenant_log(
    services: Services, console: Principal, two_tenants: dict[str, Principal]
) -> None:
    with pytest.raises(Forbidden):
        await services.users.list_users(two_tenants["gina"], "acme")
    rows = await services.audit_access.entries(console, "acme", 0, 1000)
    denied = [r for r in rows if r["outcome"] == "denied"]
    assert denied and denied[-1]["actor"] == "gina@globex.example"


async def test_operator_has_no_tenant_rights(
    services: Services, console: Principal, two_tenants: dict[str, Principal]
) -> None:
    op, _ = await services.operators.add(console, "op1", "Op One", "operator password")
    operator = Principal(realm=Realm.OPERATOR, id=op.id, name=op.username)
    with pytest.raises(Forbidden):
        await services.users.list_users(operator, "acme")
    with pytest.raises(Forbidden):
        await services.audit_access.entries(operator, "acme")
    with pytest.raises(Forbidden):
        await services.users.get(operator, "bob@acme.example")


def test_scoped_repositories_need_a_scope() -> None:
    assert issubclass(UsersRepo, ScopedRepo)
    with pytest.raises(TypeError):
        UsersRepo(object())  # type: ignore[call-arg]


async def test_scoped_query_never_returns_other_tenants_rows(
    services: Services, two_tenants: dict[str, Principal]
) -> None:
    from enclave.backends.db.platform import transaction

    acme = TenantScope(two_tenants["alice"].tenant_id or "")
    async with transaction(services.db) as tx:
        scoped = await tx.scoped(acme)
        assert await scoped.users.by_email("gina@globex.example") is None
        assert await scoped.users.by_id(two_tenants["gina"].id) is None
        assert {u["email"].split("@")[1] for u in await scoped.users.all()} == {"acme.example"}


async def test_restricted_session_is_refused_admin_work(
    services: Services, two_tenants: dict[str, Principal]
) -> None:
    alice = two_tenants["alice"]
    restricted = Principal(
        realm=alice.realm, id=alice.id, name=alice.name, tenant_id=alice.tenant_id,
        roles=frozenset({Role.ADMIN}), restricted=True,
    )  # fmt: skip
    with pytest.raises(Forbidden):
        await services.users.list_users(restricted, "acme")


async def test_postgresql_row_level_security_is_a_second_wall(
    services: Services, two_tenants: dict[str, Principal]
) -> None:
    """Even a query that forgets the tenant filter sees only the scoped tenant's rows."""
    if services.db.is_sqlite:
        pytest.skip("row-level security is a PostgreSQL feature")
    from sqlalchemy import text

    from enclave.backends.db.platform import transaction

    acme = TenantScope(two_tenants["alice"].tenant_id or "")
    async with transaction(services.db) as tx:
        unscoped = await tx.conn.execute(text("SELECT email FROM users"))
        assert unscoped.all() == []  # no tenant set: nothing visible
        await tx.scoped(acme)
        raw = await tx.conn.execute(text("SELECT email FROM users ORDER BY email"))
        assert [r[0] for r in raw] == [
            "alice@acme.example", "bob@acme.example", "carol@acme.example",
        ]  # fmt: skip
    async with transaction(services.db, write=True) as tx:
        await tx.scoped(acme)
        with pytest.raises(Exception, match="row-level security"):
            await tx.conn.execute(
                text(
                    "INSERT INTO groups (id, tenant_id, name, created_at) "
                    "VALUES ('g1', :other, 'x', now())"
                ),
                {"other": two_tenants["gina"].tenant_id},
            )
