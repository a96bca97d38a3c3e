"""Several messages filed in one transaction (IMAP MULTIAPPEND), and reading a message by
mailbox name and UID (IMAP CATENATE URLs), on real SQLite and the local blob store."""

from __future__ import annotations

from pathlib import Path

import pytest

from enclave.backends.db.platform import Scoped, Tx, transaction
from enclave.backends.db.scoped import TenantScope
from enclave.config import Settings
from enclave.core.content import ObjectSealer, StoredObject
from enclave.core.errors import NotFound, QuotaExceeded
from enclave.core.mail.store import NewMessage
from enclave.core.principal import Principal, Realm, Role
from enclave.services import Services


def note(n: int, size: int = 0) -> bytes:
    return b"Subject: note %d\r\n\r\n" % n + b"x" * size + b"\r\n"


def blob_files(settings: Settings, tenant_id: str) -> list[Path]:
    root = settings.path(settings.blobs.path) / tenant_id
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def test_append_many_files_every_message_with_consecutive_uids(
    services: Services, two_tenants: dict[str, Principal]
) -> None:
    bob = two_tenants["bob"]
    boxes = services.mailboxes
    messages = [NewMessage(note(1), ("\\Seen",)), NewMessage(note(2)), NewMessage(note(1))]
    validity, uids = await boxes.append_many(bob, "INBOX", messages)
    inbox = await boxes.get(bob, "INBOX")
    assert (validity, uids, inbox.uidnext) == (inbox.uidvalidity, [1, 2, 3], 4)
    rows = await boxes.rows(bob, inbox.id, uids)
    assert [sorted(r.flags) for r in rows] == [["\\Seen"], [], []]
    assert len({r.modseq for r in rows}) == 1  # one change
    assert rows[0].blob == rows[2].blob  # the same content twice: one object, two references
    scope = TenantScope(bob.tenant_id or "")
    async with transaction(services.db) as tx:
        row = await (await tx.scoped(scope)).blobs.get(rows[0].blob)
    assert row is not None and row["refcount"] == 2
    assert [await boxes.content(bob, r) for r in rows] == [note(1), note(2), note(1)]


async def test_append_many_over_quota_stores_nothing(
    services: Services, console: Principal, settings: Settings, two_tenants: dict[str, Principal]
) -> None:
    """Each message fits alone, the two do not: neither is stored, no UID is used, and no
    file is left behind (the quota is checked once, for the sum, in the one transaction)."""
    user = await services.users.add(console, "tiny@acme.example", quota_bytes=1000)
    tiny = Principal(
        realm=Realm.TENANT, id=user.id, name=user.email, tenant_id=user.tenant_id,
        roles=frozenset({Role.USER}),
    )  # fmt: skip
    before = blob_files(settings, user.tenant_id)
    with pytest.raises(QuotaExceeded):
        await services.mailboxes.append_many(
            tiny, "INBOX", [NewMessage(note(1, 600)), NewMessage(note(2, 600))]
        )
    inbox = await services.mailboxes.get(tiny, "INBOX")
    assert inbox.uidnext == 1
    assert await services.mailboxes.quota(tiny) == (0, 1000)
    assert blob_files(settings, user.tenant_id) == before
    _, uids = await services.mailboxes.append_many(tiny, "INBOX", [NewMessage(note(1, 600))])
    assert uids == [1]


async def test_put_many_failing_attach_leaves_no_rows_and_no_files(
    services: Services, settings: Settings, two_tenants: dict[str, Principal]
) -> None:
    scope = TenantScope(two_tenants["bob"].tenant_id or "")
    kept = await services.content.put(scope, b"already stored")
    before = blob_files(settings, scope.tenant_id)

    async def refuse(
        tx: Tx, scoped: Scoped, objects: list[tuple[StoredObject, ObjectSealer]]
    ) -> list[int]:
        assert len(objects) == 3
        raise QuotaExceeded("no room")

    with pytest.raises(QuotaExceeded):
        await services.content.put_many(scope, [b"new one", b"already stored", b"new two"], refuse)
    assert blob_files(settings, scope.tenant_id) == before
    async with transaction(services.db) as tx:
        rows = await (await tx.scoped(scope)).blobs.all()
    assert [(r["name"], r["refcount"]) for r in rows] == [(kept.name, 1)]


async def test_message_by_name_and_uid_is_the_users_own(
    services: Services, two_tenants: dict[str, Principal]
) -> None:
    bob, alice, gina = two_tenants["bob"], two_tenants["alice"], two_tenants["gina"]
    boxes = services.mailboxes
    validity, [uid] = await boxes.append_many(bob, "INBOX", [NewMessage(note(7))])
    assert await boxes.message(bob, "INBOX", uid) == note(7)
    assert await boxes.message(bob, "inbox", uid, validity) == note(7)
    with pytest.raises(NotFound):
        await boxes.message(bob, "INBOX", uid, validity + 1)
    with pytest.raises(NotFound):
        await boxes.message(bob, "INBOX", uid + 1)
    with pytest.raises(NotFound):
        await boxes.message(bob, "Nowhere", uid)
    for other in (alice, gina):  # the same name and UID are another user's: never bob's
        with pytest.raises(NotFound):
            await boxes.message(other, "INBOX", uid)
