"""Mail in the encrypted search index, on real SQLite and PostgreSQL: messages are indexed in
the background once per content object; IMAP's candidates are a superset of every substring
match (a match inside a word included) and leave the rest out; messages not yet indexed, or
too large to index whole, are always candidates; nothing of a message reaches the disk in the
clear."""

from __future__ import annotations

from pathlib import Path

import pytest

from enclave.config import Settings
from enclave.core.errors import NotFound
from enclave.core.mail import text
from enclave.core.principal import Principal
from enclave.services import Services


def message(subject: str, sender: str, body: str) -> bytes:
    return (
        f"From: {sender}\r\nTo: bob@acme.example\r\nSubject: {subject}\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ).encode()


MESSAGES = [
    message("Quarterly figures", "<user-from (comment)@ (comment) domain.org>", "see the ledger"),
    message("=?utf-8?q?Gr=C3=BC=C3=9Fe_aus_Z=C3=BCrich?=", "anna@example.org", "the heron flew"),
    message("Lunch", "carl@example.org", "Wir treffen uns in Zürich am Freitag."),
    message("Nothing here", "dora@example.org", "plain words only"),
]


async def deliver(services: Services, who: Principal, raws: list[bytes]) -> tuple[str, list[int]]:
    uids, box = [], ""
    for raw in raws:
        [item] = await services.mail_store.deliver(who.tenant_id or "", [who.id], raw)
        uids.append(item.uid)
        box = item.mailbox_id
    return box, uids


async def test_candidates_are_a_superset_of_substring_matches_and_no_more(
    services: Services, two_tenants: dict[str, Principal]
) -> None:
    bob = two_tenants["bob"]
    box, uids = await deliver(services, bob, MESSAGES)
    await services.index_queue.run_pending()
    candidates = services.mailboxes.candidates
    assert await candidates(bob, box, ["ser-fro"]) == {uids[0]}  # inside a word
    assert await candidates(bob, box, ["user-from@domain.org"]) == {uids[0]}
    assert await candidates(bob, box, ["EDGE"]) == {uids[0]}  # case folded: "ledger"
    assert await candidates(bob, box, ["grüße"]) == {uids[1]}  # an encoded subject
    assert await candidates(bob, box, ["zurich"]) == {uids[1], uids[2]}  # diacritics folded
    assert await candidates(bob, box, ["heron", "ürich"]) == {uids[1]}  # every needle
    assert await candidates(bob, box, ["absent"]) == set()
    assert await candidates(bob, box, ["an"]) is None  # too short to narrow: test them all
    # A message not indexed yet is always a candidate; once indexed, only if it matches.
    box, [late] = await deliver(services, bob, [message("Late", "e@example.org", "heron")])
    assert late in (await candidates(bob, box, ["absent"]) or set())
    await services.index_queue.run_pending()
    assert await candidates(bob, box, ["absent"]) == set()
    assert await candidates(bob, box, ["heron"]) == {uids[1], late}


async def test_every_substring_the_exact_search_finds_is_a_candidate(
    services: Services, two_tenants: dict[str, Principal]
) -> None:
    """For each message and many substrings of its header and text (as IMAP SEARCH reads
    them), the index must offer the message."""
    bob = two_tenants["bob"]
    box, uids = await deliver(services, bob, MESSAGES)
    await services.index_queue.run_pending()
    for uid, raw in zip(uids, MESSAGES, strict=True):
        found = text.search_text(raw)
        whole = found.header + "\n" + found.body
        for start in range(0, len(whole) - 6, 5):
            needle = whole[start : start + 6].casefold()
            got = await services.mailboxes.candidates(bob, box, [needle])
            assert got is None or uid in got, (needle, uid)


async def test_a_message_too_large_to_index_whole_is_always_a_candidate(
    services: Services, two_tenants: dict[str, Principal]
) -> None:
    bob = two_tenants["bob"]
    body = "filler " * (text.MAX_TEXT_CHARS // 7 + 10) + "needlepoint"
    box, [uid] = await deliver(services, bob, [message("Big", "f@example.org", body)])
    await services.index_queue.run_pending()
    assert uid in (await services.mailboxes.candidates(bob, box, ["needlepoint"]) or set())


async def test_one_entry_per_content_object_and_others_cannot_use_it(
    services: Services, two_tenants: dict[str, Principal]
) -> None:
    alice, bob, gina = two_tenants["alice"], two_tenants["bob"], two_tenants["gina"]
    raw = message("Shared memo", "g@example.org", "kingfisher")
    delivered = await services.mail_store.deliver(alice.tenant_id or "", [alice.id, bob.id], raw)
    await services.index_queue.run_pending()
    by_user = {item.user_id: item for item in delivered}
    got = await services.mailboxes.candidates(bob, by_user[bob.id].mailbox_id, ["kingfisher"])
    assert got == {by_user[bob.id].uid}
    # Another user's mailbox id gets nothing: the mailbox must be the caller's own.
    with pytest.raises(NotFound):
        await services.mailboxes.candidates(gina, by_user[bob.id].mailbox_id, ["kingfisher"])
    with pytest.raises(NotFound):
        await services.mailboxes.candidates(alice, by_user[bob.id].mailbox_id, ["kingfisher"])


async def test_no_word_of_a_message_reaches_the_disk(
    services: Services, settings: Settings, two_tenants: dict[str, Principal]
) -> None:
    alice = two_tenants["alice"]
    canary = "qzvcanarysubject"
    raw = message(f"About {canary}", "x@y.example", f"{canary} in the body, {canary}ish")
    box, [uid] = await deliver(services, alice, [raw])
    await services.index_queue.run_pending()
    assert await services.mailboxes.candidates(alice, box, [canary[2:9]]) == {uid}
    needles = [canary.encode(), canary.encode("utf-16-le"), canary.encode().hex().encode(),
               canary[:6].encode(), canary[3:9].encode()]  # fmt: skip
    for path in Path(settings.data_dir).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for needle in needles:
                assert needle not in data, (path, needle)


async def test_entries_of_collected_messages_are_swept(
    services: Services, two_tenants: dict[str, Principal]
) -> None:
    bob = two_tenants["bob"]
    box, [uid, kept] = await deliver(
        services, bob, [message("Gone", "a@example.org", "ephemeral"), MESSAGES[0]]
    )
    await services.index_queue.run_pending()
    await services.mailboxes.store(bob, box, [uid], "add", ["\\Deleted"])
    await services.mailboxes.expunge(bob, box)
    await services.content.collect_garbage(0)
    assert await services.index_queue.sweep(bob.tenant_id or "") == 1
    assert await services.index_queue.sweep(bob.tenant_id or "") == 0
    assert await services.mailboxes.candidates(bob, box, ["ledger"]) == {kept}


async def test_a_message_whose_indexing_gave_up_stays_a_candidate(
    services: Services, two_tenants: dict[str, Principal], monkeypatch: pytest.MonkeyPatch
) -> None:
    from enclave.core.search import queue

    bob = two_tenants["bob"]
    box, uids = await deliver(services, bob, MESSAGES[:2])
    await services.index_queue.run_pending()

    async def broken(*_: object) -> list[object]:
        raise RuntimeError("parser crashed")

    monkeypatch.setattr(services.index_queue._indexers["mail"], "actions", broken)
    monkeypatch.setattr(queue, "MAX_ATTEMPTS", 1)
    box, [late] = await deliver(services, bob, [message("Odd", "o@example.org", "heron")])
    assert late in (await services.mailboxes.candidates(bob, box, ["absent"]) or set())
    await services.index_queue.run_pending()  # fails once and gives up
    assert late in (await services.mailboxes.candidates(bob, box, ["absent"]) or set())
    assert await services.mailboxes.candidates(bob, box, ["heron"]) == {uids[1], late}
