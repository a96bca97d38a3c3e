"""Full-text document search through the encrypted index, on real SQLite and PostgreSQL:
names, metadata and extracted text; every answer in the asker's tenant and filtered by their
access, the trash and classification labels; indexing in the background from a durable queue;
nothing of the text on disk in the clear."""

from __future__ import annotations

import asyncio
import hashlib
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from enclave.backends.db.platform import transaction
from enclave.backends.db.scoped import TenantScope
from enclave.config import Settings
from enclave.core.documents.search import DocumentSearch, SearchHit
from enclave.core.principal import Principal
from enclave.core.search import tokens
from enclave.core.search.snippets import MARK_END, MARK_START
from enclave.services import Services
from tests.wire.test_extract import DOCX, docx_bytes, pdf_bytes


@pytest.fixture
def search(services: Services) -> DocumentSearch:
    return services.search


async def put(
    services: Services, search: DocumentSearch, who: Principal, library: str, path: str,
    data: bytes, content_type: str | None = None,
) -> str:  # fmt: skip
    """Write a document, then let the index worker do what the write queued."""
    node, _ = await services.documents.write(who, library, path, data, content_type)
    await services.index_queue.run_pending()
    return node.id


async def indexed(services: Services) -> None:
    await services.index_queue.run_pending()


def paths_of(hits: list[SearchHit]) -> list[str]:
    return [hit.path for hit in hits]


async def test_finds_by_name_metadata_and_prefix_with_names_ranked_first(
    services: Services, two_tenants: dict[str, Principal], search: DocumentSearch
) -> None:
    bob = two_tenants["bob"]
    lib = await services.libraries.personal(bob)
    await services.documents.make_folder(bob, lib.id, "Reports")
    node_id = await put(services, search, bob, lib.id, "Reports/budget-2026.txt", b"figures")
    hits = await search.query(bob, "budget")
    assert paths_of(hits) == ["Reports/budget-2026.txt"]
    hit = hits[0]
    assert (hit.node_id, hit.library_id, hit.library_name, hit.name) == (
        node_id, lib.id, "bob@acme.example", "budget-2026.txt",
    )  # fmt: skip
    assert f"{MARK_START}budget{MARK_END}" in hit.snippet
    assert paths_of(await search.query(bob, "budg")) == ["Reports/budget-2026.txt"]  # prefix
    assert await search.query(bob, "budg figures") == []  # only the last term is a prefix
    assert await search.query(bob, "figur budget") == []
    # Title, description and tags are searched once set (and reindexed).
    await services.metadata.describe(
        bob, lib.id, "Reports/budget-2026.txt", title="Annual forecast",
        description="for the supervisory board", tags=["finance", "confidential"],
    )  # fmt: skip
    await indexed(services)
    for words in ("forecast", "supervisory", "finance", "annual budget"):
        assert paths_of(await search.query(bob, words)) == ["Reports/budget-2026.txt"], words
    # A match in the name beats one in the body.
    await put(services, search, bob, lib.id, "zebra.txt", b"a note")
    await put(services, search, bob, lib.id, "notes.txt", b"the zebra crossing")
    assert paths_of(await search.query(bob, "zebra")) == ["zebra.txt", "notes.txt"]
    scores = [hit.score for hit in await search.query(bob, "zebra")]
    assert scores[0] > scores[1] > 0


async def test_extracted_pdf_and_docx_text_without_diacritics(
    services: Services, two_tenants: dict[str, Principal], search: DocumentSearch
) -> None:
    bob = two_tenants["bob"]
    lib = (await services.libraries.personal(bob)).id
    await put(services, search, bob, lib, "q1.pdf", pdf_bytes("Quarterly figures"), None)
    await put(services, search, bob, lib, "policy.docx", docx_bytes(), DOCX)
    assert paths_of(await search.query(bob, "quarterly figures")) == ["q1.pdf"]
    for words in ("Zurich", "zürich", "angstrom optics", "ANGSTR"):
        assert paths_of(await search.query(bob, words)) == ["policy.docx"], words
    [hit] = await search.query(bob, "zurich")
    assert f"{MARK_START}Zürich{MARK_END}" in hit.snippet
    # A new version replaces the old text.
    await put(services, search, bob, lib, "q1.pdf", pdf_bytes("Annual summary"))
    assert paths_of(await search.query(bob, "quarterly")) == ["policy.docx"]
    assert paths_of(await search.query(bob, "summary")) == ["q1.pdf"]


async def test_results_follow_permissions(
    services: Services, two_tenants: dict[str, Principal], console: Principal,
    search: DocumentSearch,
) -> None:  # fmt: skip
    alice, bob, carol = two_tenants["alice"], two_tenants["bob"], two_tenants["carol"]
    libs, docs, tenant = services.libraries, services.documents, bob.tenant_id or ""
    personal = (await libs.personal(bob)).id
    await docs.make_folder(bob, personal, "Private")
    await docs.make_folder(bob, personal, "Shared")
    await put(services, search, bob, personal, "Private/merger plan.txt", b"acquisition")
    await put(services, search, bob, personal, "Shared/merger memo.txt", b"acquisition")
    # The administrator has no standing access to a colleague's files.
    assert await search.query(alice, "merger") == []
    await libs.grant(bob, tenant, personal, "Shared", "user", "alice@acme.example", "read")
    assert paths_of(await search.query(alice, "merger")) == ["Shared/merger memo.txt"]
    assert len(await search.query(bob, "merger")) == 2
    # A shared library granted to a group is searchable by its members only (and by the
    # administrator, who manages shared libraries).
    await services.users.add_group(console, "acme", "legal")
    await services.users.add_member(console, "acme", "legal", "bob@acme.example")
    contracts = (await libs.create(alice, tenant, "Contracts")).id
    await libs.grant(alice, tenant, contracts, "", "group", "legal", "write")
    await put(services, search, bob, contracts, "nda.txt", b"acquisition terms")
    assert {hit.library_name for hit in await search.query(bob, "acquisition")} == {
        "bob@acme.example", "Contracts",
    }  # fmt: skip
    assert await search.query(carol, "acquisition") == []
    assert paths_of(await search.query(alice, "terms")) == ["nda.txt"]
    assert paths_of(await search.query(bob, "acquisition", library_id=contracts)) == ["nda.txt"]
    # The page fills even when most candidates are filtered out.
    for n in range(30):
        await put(services, search, bob, personal, f"Private/alpha {n}.txt", b"alpha")
    mine = (await libs.personal(alice)).id
    for n in range(3):
        await put(services, search, alice, mine, f"alpha {n}.txt", b"alpha")
    assert len(await search.query(alice, "alpha", limit=3)) == 3
    assert len(await search.query(bob, "alpha", limit=50)) == 30


async def test_labels_keeping_content_on_managed_clients_hide_matches_elsewhere(
    services: Services, two_tenants: dict[str, Principal], search: DocumentSearch
) -> None:
    alice = two_tenants["alice"]
    tenant, lib = alice.tenant_id or "", (await services.libraries.personal(alice)).id
    await services.labels.define(alice, tenant, "SECRET", 40, managed_download_only=True)
    await put(services, search, alice, lib, "codes.txt", b"launch sequence")
    await services.metadata.describe(alice, lib, "codes.txt", label="SECRET")
    await indexed(services)
    assert await search.query(alice, "launch") == []
    assert paths_of(await search.query(alice, "launch", managed=True)) == ["codes.txt"]


HOSTILE = [
    '"', '""', "'", "*", "a*", "NEAR(a b)", "NEAR", "a NEAR/2 b", "(", ")", "((a) OR b",
    "a OR b", "a AND NOT b", "-a", "^a", "name:a", "{name title}: a", "a + b", ":", "\x00",
    "\\", "%", "_", "' OR 1=1 --", '") OR ("a', "a\"b", "col:*", "🙂", " ", "", "x" * 5000,
    " ".join(["w"] * 200),
]  # fmt: skip


async def test_hostile_query_strings_are_only_text(
    services: Services, two_tenants: dict[str, Principal], search: DocumentSearch
) -> None:
    bob = two_tenants["bob"]
    lib = (await services.libraries.personal(bob)).id
    await put(services, search, bob, lib, "near or.txt", b"a b c")
    for text in HOSTILE:
        assert isinstance(await search.query(bob, text), list), text
    # Operators are words like any other.
    assert paths_of(await search.query(bob, "NEAR")) == ["near or.txt"]
    assert paths_of(await search.query(bob, "near OR")) == ["near or.txt"]
    assert await search.query(bob, "near OR missing") == []
    assert paths_of(await search.query(bob, '"near" (or)')) == ["near or.txt"]


async def test_the_document_services_keep_the_index_current(
    services: Services, two_tenants: dict[str, Principal], search: DocumentSearch
) -> None:
    """Writes, metadata changes, moves, copies, deletes and restores reach the index through
    the jobs they queue."""
    bob, docs = two_tenants["bob"], services.documents
    lib = (await services.libraries.personal(bob)).id
    await docs.write(bob, lib, "notes.txt", b"the osprey returned in spring")
    await indexed(services)
    assert paths_of(await search.query(bob, "osprey")) == ["notes.txt"]
    await services.metadata.describe(bob, lib, "notes.txt", title="Fieldwork diary")
    await indexed(services)
    assert paths_of(await search.query(bob, "diary")) == ["notes.txt"]
    await docs.make_folder(bob, lib, "Archive")
    await docs.move(bob, lib, "notes.txt", lib, "Archive/notes.txt", overwrite=False)
    await indexed(services)
    assert paths_of(await search.query(bob, "osprey")) == ["Archive/notes.txt"]
    await docs.delete(bob, lib, "Archive")
    assert await search.query(bob, "osprey") == []
    [trashed] = await docs.trash(bob, lib)
    await docs.restore(bob, lib, trashed.id)
    assert paths_of(await search.query(bob, "osprey")) == ["Archive/notes.txt"]


async def test_other_tenants_never_show(
    services: Services, two_tenants: dict[str, Principal], search: DocumentSearch
) -> None:
    bob, gina = two_tenants["bob"], two_tenants["gina"]
    bob_lib = (await services.libraries.personal(bob)).id
    gina_lib = (await services.libraries.personal(gina)).id
    mine = await put(services, search, bob, bob_lib, "strategy.txt", b"blue ocean")
    theirs = await put(services, search, gina, gina_lib, "strategy.txt", b"blue ocean")
    assert [hit.node_id for hit in await search.query(bob, "blue ocean strategy")] == [mine]
    assert [hit.node_id for hit in await search.query(gina, "strategy")] == [theirs]
    # The same word is a different token in each tenant (each has its own key), and no
    # token is the unkeyed hash of its word.
    async with transaction(services.db) as tx:
        sets = []
        for who in (bob, gina):
            scoped = await tx.scoped(TenantScope(who.tenant_id or ""))
            [entry] = await scoped.search_entries.of_objects(
                "doc", [mine if who is bob else theirs]
            )
            raw = bytes(entry["tokens"])
            sets.append({raw[i : i + tokens.TOKEN_BYTES] for i in range(0, len(raw), 16)})
    assert sets[0] and not sets[0] & sets[1]
    assert hashlib.sha256(b"ocean").digest()[:16] not in sets[0]


async def test_deleting_a_tenant_empties_its_part_of_the_index(
    services: Services, two_tenants: dict[str, Principal], console: Principal,
    search: DocumentSearch,
) -> None:  # fmt: skip
    bob, gina = two_tenants["bob"], two_tenants["gina"]
    await put(services, search, bob, (await services.libraries.personal(bob)).id, "a.txt", b"x")
    gina_lib = (await services.libraries.personal(gina)).id
    await put(services, search, gina, gina_lib, "plaintext.txt", b"sensitive words")
    await services.tenants.delete(console, "globex")  # no search call: the rows cascade
    for tenant, expected in ((gina.tenant_id or "", False), (bob.tenant_id or "", True)):
        async with transaction(services.db) as tx:
            await tx.scoped(TenantScope(tenant))  # PostgreSQL: the row-level security setting
            for table in ("search_entries", "search_postings", "search_keys"):
                query = f"SELECT count(*) FROM {table} WHERE tenant_id = '{tenant}'"
                count = (await tx.conn.exec_driver_sql(query)).scalar()
                assert bool(count) is expected, (table, tenant)


async def test_rotation_keeps_search_working(
    services: Services, two_tenants: dict[str, Principal], console: Principal,
    search: DocumentSearch,
) -> None:  # fmt: skip
    bob = two_tenants["bob"]
    lib = (await services.libraries.personal(bob)).id
    await put(services, search, bob, lib, "heron.txt", b"wading bird")
    await services.tenants.rotate_key(console, "acme")
    [hit] = await search.query(bob, "wading")
    assert f"{MARK_START}wading{MARK_END}" in hit.snippet
    await put(services, search, bob, lib, "egret.txt", b"another wading bird")
    assert len(await search.query(bob, "wading")) == 2


async def test_trash_purge_and_restore(
    services: Services, two_tenants: dict[str, Principal], search: DocumentSearch
) -> None:
    bob, docs = two_tenants["bob"], services.documents
    tenant, lib = bob.tenant_id or "", (await services.libraries.personal(bob)).id
    await docs.make_folder(bob, lib, "Old")
    await put(services, search, bob, lib, "Old/ledger.txt", b"archived ledger")
    loose = await put(services, search, bob, lib, "invoice.txt", b"ledger entry")
    assert len(await search.query(bob, "ledger")) == 2
    # Trashed documents, and documents in trashed folders, vanish at once (no job needed).
    await docs.delete(bob, lib, "invoice.txt")
    await docs.delete(bob, lib, "Old")
    assert await search.query(bob, "ledger") == []
    folder = next(t for t in await docs.trash(bob, lib) if t.name == "Old")
    await docs.restore(bob, lib, folder.id)
    assert paths_of(await search.query(bob, "ledger")) == ["Old/ledger.txt"]
    # Purging takes the entry out in the purge's own transaction.
    await docs.purge(bob, lib, loose)
    async with transaction(services.db) as tx:
        scoped = await tx.scoped(TenantScope(tenant))
        assert await scoped.search_entries.of_objects("doc", [loose]) == []
        assert await scoped.search_entries.count("doc") == 1


async def test_a_failing_index_job_is_retried_and_the_write_stands(
    services: Services, two_tenants: dict[str, Principal], search: DocumentSearch,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    bob = two_tenants["bob"]
    lib = (await services.libraries.personal(bob)).id
    indexer = services.index_queue._indexers["doc"]

    async def broken(*_: object) -> str:
        raise RuntimeError("extractor crashed")

    monkeypatch.setattr(indexer, "_text", broken)
    node, _ = await services.documents.write(bob, lib, "heron.txt", b"wading bird")
    await indexed(services)
    assert (await services.documents.stat(bob, lib, "heron.txt")).id == node.id
    assert await search.query(bob, "heron") == []
    async with transaction(services.db) as tx:
        [job] = await (await tx.scoped(TenantScope(bob.tenant_id or ""))).search_jobs.due(
            FAR_FUTURE, 10
        )
    assert job["attempts"] == 1 and job["not_before"] is not None
    monkeypatch.undo()
    async with transaction(services.db, write=True) as tx:  # as if the delay had passed
        await tx.scoped(TenantScope(bob.tenant_id or ""))
        await tx.conn.exec_driver_sql("UPDATE search_jobs SET not_before = NULL")
    await indexed(services)
    assert paths_of(await search.query(bob, "wading")) == ["heron.txt"]


async def test_rebuild_indexes_what_exists(
    services: Services, two_tenants: dict[str, Principal], search: DocumentSearch
) -> None:
    bob = two_tenants["bob"]
    lib = (await services.libraries.personal(bob)).id
    await services.documents.make_folder(bob, lib, "A")
    node, _ = await services.documents.write(bob, lib, "A/kestrel.txt", b"falcon")
    await indexed(services)
    async with transaction(services.db, write=True) as tx:  # as if the index were lost
        await services.index_queue.forget(
            await tx.scoped(TenantScope(bob.tenant_id or "")), "doc", [node.id]
        )
    assert await search.query(bob, "kestrel") == []
    assert await search.rebuild(bob.tenant_id or "") == 1  # one library
    await indexed(services)
    assert paths_of(await search.query(bob, "falcon")) == ["A/kestrel.txt"]


async def test_writes_do_not_wait_for_the_index_and_the_worker_catches_up(
    services: Services, two_tenants: dict[str, Principal], search: DocumentSearch
) -> None:
    """The request path only queues a job; the background worker (as ``enclave serve`` runs
    it) makes the document searchable within a second or two."""
    bob = two_tenants["bob"]
    lib = (await services.libraries.personal(bob)).id
    worker = asyncio.create_task(services.index_queue.run_forever())
    try:
        await asyncio.sleep(0.2)  # the worker's first pass is over: now it waits
        node, _ = await services.documents.write(bob, lib, "lark.txt", b"skylark song")
        async with transaction(services.db) as tx:
            scoped = await tx.scoped(TenantScope(bob.tenant_id or ""))
            assert await scoped.search_entries.of_objects("doc", [node.id]) == []
            assert await scoped.search_jobs.count() == 1
        started = time.monotonic()
        while not await search.query(bob, "skylark"):
            assert time.monotonic() - started < 2.0, "not searchable within 2 s"
            await asyncio.sleep(0.05)
    finally:
        worker.cancel()


async def test_long_prefixes_and_snippets_come_from_sealed_fields(
    services: Services, two_tenants: dict[str, Principal], search: DocumentSearch
) -> None:
    bob = two_tenants["bob"]
    lib = (await services.libraries.personal(bob)).id
    text = b"Some words first. The supercalifragilistic proposal was accepted today."
    await put(services, search, bob, lib, "p.txt", text)
    await put(services, search, bob, lib, "q.txt", b"the supercalifornian idea")
    # Both share the indexed 8-character prefix; the sealed vocabulary tells them apart.
    assert paths_of(await search.query(bob, "supercalifr")) == ["p.txt"]
    assert len(await search.query(bob, "supercal")) == 2
    # Many documents share a long prefix: the one asked for is found even when the page is
    # small (a check after a short page would miss it).
    for n in range(40):
        await services.documents.write(bob, lib, f"s{n}.txt", f"serial{n:06d}x".encode())
    await indexed(services)
    for wanted in ("serial000037", "serial000037x"):  # an indexed length, and one checked
        assert paths_of(await search.query(bob, wanted, limit=2)) == ["s37.txt"], wanted
    assert len(await search.query(bob, "serial00003", limit=2)) == 2  # 10 of 40 candidates
    [hit] = await search.query(bob, "proposal accept")
    assert hit.snippet.startswith("Some words first. The supercalifragilistic ")
    assert f"{MARK_START}proposal{MARK_END}" in hit.snippet
    assert f"{MARK_START}accepted{MARK_END}" in hit.snippet


CANARY = "zqxcanaryword"
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


async def test_no_text_of_a_document_reaches_the_disk(
    services: Services, settings: Settings, two_tenants: dict[str, Principal],
    search: DocumentSearch,
) -> None:  # fmt: skip
    """Every file under the data directory (the database and its WAL included) after
    indexing a document: no word of its text, name or metadata, in any common encoding."""
    bob = two_tenants["bob"]
    lib = (await services.libraries.personal(bob)).id
    body = f"Quarterly {CANARY} review of the {CANARY}plan budget".encode() * 50
    await put(services, search, bob, lib, "report.txt", body)
    await services.metadata.describe(bob, lib, "report.txt", title="Quarterly", tags=["q4"])
    await indexed(services)
    [hit] = await search.query(bob, CANARY)
    assert f"{MARK_START}{CANARY}{MARK_END}" in hit.snippet
    assert len(await search.query(bob, f"{CANARY}pl")) == 1
    needles = [CANARY.encode(), CANARY.encode("utf-16-le"), CANARY.encode().hex().encode(),
               CANARY[:8].encode()]  # fmt: skip
    files = [p for p in Path(settings.data_dir).rglob("*") if p.is_file()]
    assert files
    for path in files:
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, (path, needle)
