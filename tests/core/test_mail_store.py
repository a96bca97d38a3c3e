"""The mail store on real SQLite: routing, delivery, dedupe, quota, sealed metadata."""

from __future__ import annotations

from pathlib import Path

import pytest

from enclave.config import Settings
from enclave.core.errors import Conflict, Forbidden, QuotaExceeded
from enclave.core.principal import Principal
from enclave.services import Services

MESSAGE = (
    b"From: Sender <sender@remote.example>\r\nTo: team@acme.example\r\n"
    b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nMessage-ID: <m1@remote.example>\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
    b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello team\r\n"
    b"--XX\r\nContent-Type: application/pdf; name=a.pdf\r\n"
    b"Content-Disposition: attachment; filename=a.pdf\r\nContent-Transfer-Encoding: base64\r\n"
    b"\r\nJVBERi0xLjQK\r\n--XX--\r\n"
)


async def test_routing_users_aliases_groups(
    services: Services, console: Principal, two_tenants: dict[str, Principal]
) -> None:
    router = services.mail_router
    alice, bob = two_tenants["alice"], two_tenants["bob"]
    assert (await router.resolve("Alice@ACME.example")).user_ids == (alice.id,)
    assert await router.resolve("nobody@acme.example") is None
    assert await router.resolve("alice@elsewhere.example") is None
    assert await router.resolve("not an address") is None
    await router.add_alias(console, "sales@acme.example", "bob@acme.example")
    assert (await router.resolve("sales@acme.example")).user_ids == (bob.id,)
    with pytest.raises(Conflict):
        await router.add_alias(console, "alice@acme.example", "bob@acme.example")
    with pytest.raises(Forbidden):  # another tenant's admin
        await router.add_alias(two_tenants["gina"], "x@acme.example", "bob@acme.example")
    await services.users.add_group(console, "acme", "team", "team@acme.example")
    for member in ("alice@acme.example", "bob@acme.example"):
        await services.users.add_member(console, "acme", "team", member)
    assert set((await router.resolve("team@acme.example")).user_ids) == {alice.id, bob.id}
    await services.users.set_status(console, "bob@acme.example", "disabled")
    assert (await router.resolve("team@acme.example")).user_ids == (alice.id,)
    assert await router.resolve("sales@acme.example") is None
    await services.tenants.set_status(console, "acme", "suspended")
    assert await router.resolve("alice@acme.example") is None


async def test_delivery_stores_once_and_files_each_copy(
    services: Services, settings: Settings, two_tenants: dict[str, Principal]
) -> None:
    alice, bob = two_tenants["alice"], two_tenants["bob"]
    tenant = alice.tenant_id or ""
    done = await services.mail_store.deliver(tenant, [alice.id, bob.id, alice.id], MESSAGE)
    assert [(d.mailbox, d.uid) for d in done] == [("INBOX", 1), ("INBOX", 1)]
    await services.mail_store.deliver(tenant, [alice.id], MESSAGE)
    inbox = await services.mail_store.messages(tenant, alice.id, "INBOX")
    assert [m.uid for m in inbox] == [1, 2]
    assert inbox[0].modseq < inbox[1].modseq
    assert inbox[0].blob == inbox[1].blob  # the same bytes, stored once per tenant
    files = [p for p in (settings.path(settings.blobs.path) / tenant).rglob("*") if p.is_file()]
    assert len(files) == 1
    assert await services.mail_store.raw(tenant, inbox[0]) == MESSAGE
    meta = await services.mail_store.meta(tenant, inbox[1])
    assert meta["envelope"]["subject"] == "=?utf-8?q?Gr=C3=BC=C3=9Fe?="
    assert meta["envelope"]["message-id"] == "<m1@remote.example>"
    parts = meta["structure"]["parts"]
    assert [(p["type"], p["subtype"]) for p in parts] == [("text", "plain"), ("application", "pdf")]
    assert parts[1]["filename"] == "a.pdf" and parts[1]["encoding"] == "base64"
    names = {m.name for m in await _mailboxes(services, tenant, alice.id)}
    assert names == {"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"}


async def test_metadata_never_reaches_disk_in_plaintext(
    services: Services, settings: Settings, two_tenants: dict[str, Principal]
) -> None:
    alice = two_tenants["alice"]
    canary = b"CANARY-SUBJECT-91d2"
    raw = b"Subject: " + canary + b"\r\nFrom: x@y.example\r\n\r\n" + canary + b" body\r\n"
    await services.mail_store.deliver(alice.tenant_id or "", [alice.id], raw)
    for path in Path(settings.data_dir).rglob("*"):
        if path.is_file():
            assert canary not in path.read_bytes(), path


async def test_quota_is_all_or_nothing(
    services: Services, console: Principal, two_tenants: dict[str, Principal]
) -> None:
    small = await services.users.add(console, "small@acme.example", quota_bytes=2000)
    alice = two_tenants["alice"]
    tenant = alice.tenant_id or ""
    await services.mail_store.deliver(tenant, [small.id], b"Subject: a\r\n\r\n" + b"x" * 900)
    assert await services.mail_store.room_for(tenant, small.id, 500)
    assert not await services.mail_store.room_for(tenant, small.id, 1500)
    with pytest.raises(QuotaExceeded):
        await services.mail_store.deliver(
            tenant, [alice.id, small.id], b"Subject: b\r\n\r\n" + b"y" * 1500
        )
    assert await services.mail_store.messages(tenant, alice.id, "INBOX") == []
    assert len(await services.mail_store.messages(tenant, small.id, "INBOX")) == 1


async def test_message_meta_survives_key_rotation(
    services: Services, console: Principal, two_tenants: dict[str, Principal]
) -> None:
    alice = two_tenants["alice"]
    tenant = alice.tenant_id or ""
    await services.mail_store.deliver(tenant, [alice.id], MESSAGE)
    await services.tenants.rotate_key(console, "acme")
    [message] = await services.mail_store.messages(tenant, alice.id, "INBOX")
    assert (await services.mail_store.meta(tenant, message))["envelope"]["to"] == (
        "team@acme.example"
    )
    assert await services.mail_store.raw(tenant, message) == MESSAGE


async def _mailboxes(services: Services, tenant: str, user_id: str):  # type: ignore[no-untyped-def]
    from enclave.backends.db.platform import transaction
    from enclave.backends.db.scoped import TenantScope

    class Box:
        def __init__(self, name: str) -> None:
            self.name = name

    async with transaction(services.db) as tx:
        rows = await (await tx.scoped(TenantScope(tenant))).mailboxes.of_user(user_id)
    return [Box(r["name"]) for r in rows]
