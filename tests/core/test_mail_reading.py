"""Mail as the web app reads it (``MailReader``), on both databases: folder counts from the
database, a folder a page at a time newest first, reading and the reader's actions."""

from __future__ import annotations

from enclave.core.principal import Principal
from enclave.services import Services


def message(n: int) -> bytes:
    return (
        f"From: Alice <alice@acme.example>\r\nTo: bob@acme.example\r\nSubject: note {n}\r\n"
        f"Message-ID: <reading-{n}@acme.example>\r\n\r\nbody {n}\r\n"
    ).encode()


async def test_counts_pages_reading_and_actions(
    services: Services, two_tenants: dict[str, Principal]
) -> None:
    bob, reader = two_tenants["bob"], services.mail_reader
    for n in range(5):
        await services.mail_store.deliver(bob.tenant_id or "", [bob.id], message(n))
    counts = {f.name: (f.total, f.unseen) for f in await reader.folders(bob)}
    assert counts["INBOX"] == (5, 5) and counts["Trash"] == (0, 0)
    assert (await reader.folders(bob))[0].name == "INBOX"
    first = await reader.page(bob, "INBOX", 0, 2)
    assert first.total == 5 and [m.subject for m in first.messages] == ["note 4", "note 3"]
    last = await reader.page(bob, "INBOX", 4, 2)
    assert [m.subject for m in last.messages] == ["note 0"]
    reading = await reader.read(bob, "INBOX", first.messages[0].uid)
    assert reading.text is not None and reading.text.strip() == "body 4"
    await reader.mark(bob, "INBOX", first.messages[1].uid, flagged=True)
    assert {f.name: f.unseen for f in await reader.folders(bob)}["INBOX"] == 4  # read one
    await reader.trash(bob, "INBOX", first.messages[0].uid)
    counts = {f.name: (f.total, f.unseen) for f in await reader.folders(bob)}
    assert counts["INBOX"] == (4, 4) and counts["Trash"] == (1, 0)
    flagged = (await reader.page(bob, "INBOX", 0, 1)).messages[0]
    assert flagged.subject == "note 3" and flagged.flagged and not flagged.seen
