"""Encrypted tenant content: canary, segregation, dedupe, rotation, shredding, collection."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from enclave.backends.db.platform import transaction
from enclave.backends.db.scoped import TenantScope
from enclave.config import Settings
from enclave.core.errors import IntegrityError, NotFound
from enclave.core.principal import Principal
from enclave.services import Services

CANARY = b"CANARY-7f3a9c-enclave-plaintext-must-never-hit-disk"


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


async def scope_of(svc: Services, name: str) -> TenantScope:
    return TenantScope((await svc.tenants.get(name)).id)


async def test_canary_never_reaches_disk_in_plaintext(
    services: Services, settings: Settings, two_tenants: dict[str, Principal]
) -> None:
    scope = await scope_of(services, "acme")
    body = b"Subject: hello\r\n\r\n" + CANARY * 3000  # several segments
    stored = await services.content.put(scope, body)
    assert await services.content.read(scope, stored.name) == body
    # The WAL is part of "the disk": do not checkpoint it away before looking.
    leaks = [p for p in files_under(settings.data_dir) if CANARY in p.read_bytes()]
    assert leaks == []
    assert CANARY.hex().encode() not in b"".join(
        p.read_bytes() for p in files_under(settings.data_dir)
    )


async def test_names_reveal_nothing_and_content_is_deduplicated(
    services: Services, two_tenants: dict[str, Principal]
) -> None:
    acme, globex = await scope_of(services, "acme"), await scope_of(services, "globex")
    a1 = await services.content.put(acme, b"same body")
    a2 = await services.content.put(acme, b"same body")
    g1 = await services.content.put(globex, b"same body")
    assert a1.name == a2.name  # stored once per tenant
    assert a1.name != g1.name  # keyed per tenant: no cross-tenant equality leak
    import hashlib

    assert a1.name != hashlib.sha256(b"same body").hexdigest()
    async with transaction(services.db) as tx:
        row = await (await tx.scoped(acme)).blobs.get(a1.name)
    assert row is not None and row["refcount"] == 2


async def test_other_tenant_cannot_read_by_name(
    services: Services, two_tenants: dict[str, Principal]
) -> None:
    acme, globex = await scope_of(services, "acme"), await scope_of(services, "globex")
    stored = await services.content.put(acme, b"acme only")
    with pytest.raises(NotFound):
        await services.content.read(globex, stored.name)


async def test_ciphertext_moved_to_another_tenant_fails_to_decrypt(
    services: Services, settings: Settings, two_tenants: dict[str, Principal]
) -> None:
    acme, globex = await scope_of(services, "acme"), await scope_of(services, "globex")
    a = await services.content.put(acme, b"acme secret " * 10)
    g = await services.content.put(globex, b"globex data " * 10)
    blobs = settings.path(settings.blobs.path)
    [a_file] = list((blobs / acme.tenant_id).rglob(f"{a.name}.*"))
    [g_file] = list((blobs / globex.tenant_id).rglob(f"{g.name}.*"))
    g_file.write_bytes(a_file.read_bytes())  # an attacker with disk access swaps files
    with pytest.raises(IntegrityError):
        await services.content.read(globex, g.name)


async def test_streamed_put_and_read(services: Services, two_tenants: dict[str, Principal]) -> None:
    scope = await scope_of(services, "acme")
    chunk = os.urandom(100_000)

    async def source():  # type: ignore[no-untyped-def]
        for _ in range(30):
            yield chunk

    stored = await services.content.put(scope, source())
    assert stored.size == 3_000_000
    total, pieces = 0, 0
    async for piece in services.content.stream(scope, stored.name):
        assert len(piece) <= 1024 * 1024
        total += len(piece)
        pieces += 1
    assert total == 3_000_000 and pieces > 1


async def test_blocking_read_in_a_thread_matches_and_detects_tampering(
    services: Services, settings: Settings, two_tenants: dict[str, Principal]
) -> None:
    """``Content.blocking`` (a WSGI thread's download) gives the same bytes as the loop's
    read, and a flipped byte in the file fails it as it fails the loop's."""
    scope = await scope_of(services, "acme")
    body = os.urandom(700_000)
    stored = await services.content.put(scope, body)

    async def opened():  # type: ignore[no-untyped-def]
        async with transaction(services.db) as tx:
            return await services.content.opened(tx, scope, stored.name)

    content = await opened()
    assert b"".join(await asyncio.to_thread(lambda: list(content.blocking()))) == body
    [path] = list((settings.path(settings.blobs.path) / scope.tenant_id).rglob(f"{stored.name}.*"))
    damaged = bytearray(path.read_bytes())
    damaged[400_000] ^= 1
    path.write_bytes(bytes(damaged))
    content = await opened()
    with pytest.raises(IntegrityError):
        await asyncio.to_thread(lambda: list(content.blocking()))


async def test_rotation_rewraps_keys_without_reencrypting(
    services: Services,
    settings: Settings,
    console: Principal,
    two_tenants: dict[str, Principal],
) -> None:
    scope = await scope_of(services, "acme")
    stored = await services.content.put(scope, b"survives rotation")
    blob_dir = settings.path(settings.blobs.path) / scope.tenant_id
    before = {p.name: p.read_bytes() for p in files_under(blob_dir)}
    assert await services.tenants.rotate_key(console, "acme") == 2
    assert {p.name: p.read_bytes() for p in files_under(blob_dir)} == before
    assert await services.content.read(scope, stored.name) == b"survives rotation"
    async with transaction(services.db) as tx:
        versions = await tx.tenant_keys.versions(scope.tenant_id)
    assert [(v["version"], v["state"], v["wrapped_key"] is None) for v in versions] == [
        (1, "retired", True),
        (2, "active", False),
    ]


async def test_delete_tenant_shreds_keys_and_data(
    services: Services,
    settings: Settings,
    console: Principal,
    two_tenants: dict[str, Principal],
) -> None:
    scope = await scope_of(services, "acme")
    await services.content.put(scope, b"to be destroyed")
    await services.tenants.delete(console, "acme")
    assert not (settings.path(settings.blobs.path) / scope.tenant_id).exists()
    async with transaction(services.db) as tx:
        assert await tx.tenant_keys.versions(scope.tenant_id) == []
        assert await tx.tenants.by_id(scope.tenant_id) is None
        assert await tx.domains.tenant_of("acme.example") is None
    with pytest.raises(NotFound):
        await services.tenants.get("acme")
    # globex is untouched
    assert len(await services.users.list_users(console, "globex")) == 1


async def test_destroyed_key_makes_content_unreadable(
    services: Services, two_tenants: dict[str, Principal]
) -> None:
    scope = await scope_of(services, "acme")
    stored = await services.content.put(scope, b"crypto-shredded")
    async with transaction(services.db, write=True) as tx:
        await services.keys.shred(tx, scope.tenant_id)
    with pytest.raises(IntegrityError):
        await services.content.read(scope, stored.name)


async def test_garbage_collection(
    services: Services, settings: Settings, two_tenants: dict[str, Principal]
) -> None:
    scope = await scope_of(services, "acme")
    keep = await services.content.put(scope, b"keep me")
    drop = await services.content.put(scope, b"drop me")
    await services.content.release(scope, drop.name)
    blob_dir = settings.path(settings.blobs.path) / scope.tenant_id
    orphan = blob_dir / "ab" / "ab-orphan-from-a-crash"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"x")
    assert await services.content.collect_garbage(grace_seconds=3600) == 1  # orphan too young
    assert orphan.exists()
    with pytest.raises(NotFound):
        await services.content.read(scope, drop.name)
    assert await services.content.collect_garbage(grace_seconds=0) == 1
    assert not orphan.exists()
    assert await services.content.read(scope, keep.name) == b"keep me"
