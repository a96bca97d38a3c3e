"""A user's mailboxes as IMAP uses them, on real SQLite."""

from __future__ import annotations

import pytest

from enclave.core.errors import Conflict, Forbidden, Invalid, NotFound, QuotaExceeded
from enclave.core.principal import Principal
from enclave.services import Services

RAW = b"Subject: hi\r\nFrom: a@x.example\r\n\r\nbody\r\n"


async def test_list_create_rename_delete(
    services: Services, two_tenants: dict[str, Principal]
) -> None:
    bob = two_tenants["bob"]
    boxes = services.mailboxes
    names = [b.name for b in await boxes.list_all(bob)]
    assert names == sorted(["INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"])
    await boxes.create(bob, "Projects/2026/Q1")
    assert {"Projects", "Projects/2026", "Projects/2026/Q1"} <= {
        b.name for b in await boxes.list_all(bob)
    }
    with pytest.raises(Conflict):
        await boxes.create(bob, "Projects")
    await boxes.rename(bob, "Projects", "Work")
    assert {"Work", "Work/2026", "Work/2026/Q1"} <= {b.name for b in await boxes.list_all(bob)}
    await boxes.delete(bob, "Work/2026/Q1")
    with pytest.raises(NotFound):
        await boxes.get(bob, "Work/2026/Q1")
    with pytest.raises(Invalid):
        await boxes.delete(bob, "inbox")
    assert (await boxes.get(bob, "iNbOx")).name == "INBOX"
    # RFC 3501 6.3.4: a deleted parent keeps its name, unselectable, while it has children.
    await boxes.create(bob, "Parent/Child")
    await boxes.delete(bob, "Parent")
    listed = {b.name: b for b in await boxes.list_all(bob)}
    assert listed["Parent"].noselect and not listed["Parent/Child"].noselect
    with pytest.raises(Invalid):
        await boxes.get(bob, "Parent")  # SELECT, STATUS, APPEND refuse it
    with pytest.raises(Invalid):
        await boxes.delete(bob, "Parent")
    await boxes.delete(bob, "Parent/Child")  # the last child goes, and the empty name with it
    assert "Parent" not in {b.name for b in await boxes.list_all(bob)}
    await boxes.create(bob, "Kept/Inner")
    await boxes.delete(bob, "Kept")
    await boxes.create(bob, "Kept")  # creating the name again makes it a mailbox again
    assert not (await boxes.get(bob, "Kept")).noselect


async def test_flags_modseq_expunge_and_changes(
    services: Services, two_tenants: dict[str, Principal]
) -> None:
    bob = two_tenants["bob"]
    boxes = services.mailboxes
    for _ in range(3):
        await services.mail_store.deliver(bob.tenant_id or "", [bob.id], RAW)
    inbox = await boxes.get(bob, "INBOX")
    info, states = await boxes.state(bob, inbox.id)
    assert [s.uid for s in states] == [1, 2, 3]
    base = info.highestmodseq
    changed, refused = await boxes.store(bob, inbox.id, [1, 2], "add", ["\\seen", "$Important"])
    assert [(c.uid, sorted(c.flags)) for c in changed] == [
        (1, ["$Important", "\\Seen"]),
        (2, ["$Important", "\\Seen"]),
    ]
    assert refused == [] and changed[0].modseq > base
    # CONDSTORE: a client holding an old modseq is refused for changed messages.
    _, refused = await boxes.store(
        bob, inbox.id, [1, 3], "add", ["\\Flagged"], unchanged_since=base
    )
    assert refused == [1]
    await boxes.store(bob, inbox.id, [2], "add", ["\\Deleted"])
    assert await boxes.expunge(bob, inbox.id) == [2]
    _, changes, gone = await boxes.changes(bob, inbox.id, base)
    assert {c.uid for c in changes} == {1, 3} and gone == [2]
    with pytest.raises(Invalid):
        await boxes.store(bob, inbox.id, [1], "add", ["\\Recent"])


async def test_copy_move_append(services: Services, two_tenants: dict[str, Principal]) -> None:
    bob = two_tenants["bob"]
    boxes = services.mailboxes
    uidvalidity, uid = await boxes.append(bob, "Drafts", RAW, ["\\Draft"], None)
    drafts = await boxes.get(bob, "Drafts")
    assert (uidvalidity, uid) == (drafts.uidvalidity, 1)
    archive = await boxes.get(bob, "Archive")
    validity, source, new = await boxes.copy(bob, drafts.id, [1], "Archive", move=False)
    assert (validity, source, new) == (archive.uidvalidity, [1], [1])
    _, source, new = await boxes.copy(bob, drafts.id, [1], "Trash", move=True)
    assert (source, new) == ([1], [1])
    assert (await boxes.state(bob, drafts.id))[1] == []
    [row] = await boxes.rows(bob, archive.id, [1])
    assert await boxes.content(bob, row) == RAW and "\\Draft" in row.flags
    # The forms kept at delivery travel with copies and moves (bound to the content object).
    trash = await boxes.get(bob, "Trash")
    for box in (archive, trash):
        forms = await boxes.derived(bob, box.id, [1])
        assert forms[1]["header"].encode("latin-1") == RAW[: RAW.index(b"\r\n\r\n") + 4]


async def test_quota_on_append_and_copy(
    services: Services, console: Principal, two_tenants: dict[str, Principal]
) -> None:
    from enclave.core.principal import Realm, Role

    user = await services.users.add(console, "tiny@acme.example", quota_bytes=100)
    tiny = Principal(
        realm=Realm.TENANT,
        id=user.id,
        name=user.email,
        tenant_id=user.tenant_id,
        roles=frozenset({Role.USER}),
    )
    await services.mailboxes.append(tiny, "INBOX", RAW, [], None)
    inbox = await services.mailboxes.get(tiny, "INBOX")
    with pytest.raises(QuotaExceeded):
        await services.mailboxes.append(tiny, "INBOX", RAW * 3, [], None)
    await services.mailboxes.copy(tiny, inbox.id, [1], "Archive", move=False)
    with pytest.raises(QuotaExceeded):
        await services.mailboxes.copy(tiny, inbox.id, [1], "Trash", move=False)
    assert await services.mailboxes.quota(tiny) == (2 * len(RAW), 100)


async def test_no_reach_into_other_users_mailboxes(
    services: Services, two_tenants: dict[str, Principal]
) -> None:
    bob, alice, gina = two_tenants["bob"], two_tenants["alice"], two_tenants["gina"]
    await services.mail_store.deliver(bob.tenant_id or "", [bob.id], RAW)
    bobs_inbox = await services.mailboxes.get(bob, "INBOX")
    for other in (alice, gina):
        with pytest.raises(NotFound):
            await services.mailboxes.state(other, bobs_inbox.id)
        with pytest.raises(NotFound):
            await services.mailboxes.rows(other, bobs_inbox.id, [1])
        with pytest.raises(NotFound):
            await services.mailboxes.expunge(other, bobs_inbox.id)
    operator = Principal.system("root")
    with pytest.raises(Forbidden):
        await services.mailboxes.list_all(operator)
