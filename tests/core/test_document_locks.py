"""Locks (WebDAV LOCK, check-out): only the holder writes; expiry; breaking is audited."""

from __future__ import annotations

from datetime import timedelta

import pytest

from enclave.core import clock
from enclave.core.documents.locks import Lock, blocking, conflicts
from enclave.core.errors import Forbidden, Locked
from enclave.core.principal import Principal, Realm
from enclave.services import Services


def lock(path: str, depth: str = "0", exclusive: bool = True, who: str = "u1") -> Lock:
    return Lock(f"t-{path}-{who}", "lib", path, depth, exclusive, "", who, who, 60, clock.now())


def test_conflict_and_blocking_rules() -> None:
    folder = lock("a", "infinity")
    assert conflicts([folder], ["a", "b"], "0", exclusive=False) == [folder]
    assert conflicts([lock("a/b", exclusive=False)], ["a", "b"], "0", exclusive=False) == []
    assert conflicts([lock("a/b/c")], ["a"], "infinity", exclusive=True) != []
    assert conflicts([lock("a/b/c")], ["a"], "0", exclusive=True) == []
    me = Principal(Realm.TENANT, "u1", "me", "t")
    other = Principal(Realm.TENANT, "u2", "other", "t")
    assert blocking([folder], me, ["a", "x"], None) == []  # the owner, acting as itself
    assert blocking([folder], me, ["a", "x"], []) == [folder]  # a DAV client must send it
    assert blocking([folder], me, ["a", "x"], [folder.token]) == []
    assert blocking([folder], other, ["a", "x"], [folder.token]) == [folder]  # not theirs
    assert blocking([lock("a")], other, ["a", "new"], None, member_of_parent=True) != []
    assert blocking([lock("a/b")], other, ["a"], None, subtree=True) != []
    assert blocking([lock("a/b")], other, ["a"], None) == []


async def test_only_the_holder_writes_until_unlock_or_expiry(
    services: Services, two_tenants: dict[str, Principal], monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = two_tenants["alice"], two_tenants["bob"]
    docs, locks, libs = services.documents, services.locks, services.libraries
    tenant = alice.tenant_id or ""
    lib = (await libs.create(alice, tenant, "Drafts")).id
    await libs.grant(alice, tenant, lib, "", "user", "bob@acme.example", "write")
    await docs.write(alice, lib, "spec.txt", b"v1")
    held = await locks.lock(bob, lib, "spec.txt", owner="<href>bob</href>", seconds=600)
    assert held.exclusive and held.timeout == 600 and held.principal_name == "bob@acme.example"
    with pytest.raises(Locked):
        await docs.write(alice, lib, "spec.txt", b"alice's edit")
    with pytest.raises(Locked):
        await locks.lock(alice, lib, "spec.txt")
    with pytest.raises(Locked):
        await docs.delete(alice, lib, "spec.txt")
    await docs.write(bob, lib, "spec.txt", b"bob's edit")  # the holder, through the API
    with pytest.raises(Locked):  # a DAV client without the token
        await docs.write(bob, lib, "spec.txt", b"x", tokens=[])
    await docs.write(bob, lib, "spec.txt", b"v3", tokens=[held.token])
    assert [lk.token for lk in await locks.active(alice, lib, "spec.txt")] == [held.token]
    with pytest.raises(Forbidden):  # bob (write) cannot break alice's lock; alice (manage) his
        await locks.unlock(bob, lib, (await locks.lock(alice, lib, "other.txt")).token)
    await locks.unlock(alice, lib, held.token)
    events = await services.audit_access.entries(alice, "acme", 0, 1000)
    assert any(e["action"] == "document.lock.break" for e in events)
    await docs.write(alice, lib, "spec.txt", b"free again")
    # A depth-infinity lock on a folder covers new members too, and it expires.
    await docs.make_folder(alice, lib, "Box")
    await locks.lock(bob, lib, "Box", depth="infinity", seconds=60)
    with pytest.raises(Locked):
        await docs.write(alice, lib, "Box/new.txt", b"n")
    later = clock.now() + timedelta(seconds=120)
    monkeypatch.setattr(clock, "now", lambda: later)
    await docs.write(alice, lib, "Box/new.txt", b"n")


async def test_delete_and_move_release_locks_and_lock_null_names(
    services: Services, two_tenants: dict[str, Principal]
) -> None:
    bob, docs, locks = two_tenants["bob"], services.documents, services.locks
    lib = (await services.libraries.personal(bob)).id
    await locks.lock(bob, lib, "not-yet.txt")  # RFC 4918 lets a lock name a future resource
    await docs.write(bob, lib, "not-yet.txt", b"now it exists")
    await docs.delete(bob, lib, "not-yet.txt")
    assert await locks.active(bob, lib, "") == []
