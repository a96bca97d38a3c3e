"""Full-text document search on real SQLite: names, metadata and extracted text; every answer
in the asker's tenant and filtered by their access, the trash and classification labels."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from enclave.backends.db.platform import transaction
from enclave.backends.db.schema import metadata
from enclave.backends.db.scoped import TenantScope
from enclave.backends.search import MARK_END, MARK_START, is_search_table, open_search_index
from enclave.core.documents.search import DocumentSearch, SearchHit, SearchUnavailable
from enclave.core.principal import Principal
from enclave.services import Services
from tests.wire.test_extract import DOCX, docx_bytes, pdf_bytes


@pytest.fixture
def search(services: Services) -> DocumentSearch:
    if not services.db.is_sqlite:
        pytest.skip("full-text search is SQLite-only for now")
    return DocumentSearch(services.db, services.content, open_search_index(services.db))


async def put(
    services: Services, search: DocumentSearch, who: Principal, library: str, path: str,
    data: bytes, content_type: str | None = None,
) -> str:  # fmt: skip
    """Write a document and index it with this test's own service (Documents also refreshes
    the shared index after each write; indexing twice is harmless)."""
    node, _ = await services.documents.write(who, library, path, data, content_type)
    await search.reindex(who.tenant_id or "", node.id)
    return node.id


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
    await search.reindex(bob.tenant_id or "", node_id)
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
    # Not even the index hands them out: every statement is bound to one tenant.
    index = open_search_index(services.db)
    async with transaction(services.db) as tx:
        found = await index.query(tx.conn, TenantScope(bob.tenant_id or ""), "ocean", 100)
    assert [result.node_id for result in found] == [mine]
    # Dropping a tenant's entries leaves the other's alone.
    await search.forget_tenant(gina.tenant_id or "")
    assert await search.query(gina, "strategy") == []
    assert len(await search.query(bob, "strategy")) == 1


async def test_deleting_a_tenant_empties_its_part_of_the_index(
    services: Services, two_tenants: dict[str, Principal], console: Principal,
    search: DocumentSearch,
) -> None:  # fmt: skip
    bob, gina = two_tenants["bob"], two_tenants["gina"]
    await put(services, search, bob, (await services.libraries.personal(bob)).id, "a.txt", b"x")
    gina_lib = (await services.libraries.personal(gina)).id
    await put(services, search, gina, gina_lib, "plaintext.txt", b"sensitive words")
    await services.tenants.delete(console, "globex")  # no search call: the rows cascade

    def rows(tenant_id: str) -> str:
        return f"SELECT count(*) FROM doc_search WHERE tenant_id = '{tenant_id}'"

    async with services.db.transaction() as conn:
        assert (await conn.exec_driver_sql(rows(gina.tenant_id or ""))).scalar() == 0
        assert (await conn.exec_driver_sql(rows(bob.tenant_id or ""))).scalar() == 1


async def test_alembic_comparison_can_leave_the_index_out(
    services: Services, two_tenants: dict[str, Principal], search: DocumentSearch
) -> None:
    """The index lives outside the migrations; autogenerate must be told to ignore it."""
    bob = two_tenants["bob"]
    await put(services, search, bob, (await services.libraries.personal(bob)).id, "a.txt", b"x")

    def diff(connection: Connection) -> Any:
        def include(name: str | None, type_: str, parent: dict[str, Any]) -> bool:
            return not (type_ == "table" and is_search_table(name or ""))

        context = MigrationContext.configure(connection, opts={"include_name": include})
        return compare_metadata(context, metadata)

    async with services.db.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_trash_purge_and_restore(
    services: Services, two_tenants: dict[str, Principal], search: DocumentSearch
) -> None:
    bob, docs = two_tenants["bob"], services.documents
    tenant, lib = bob.tenant_id or "", (await services.libraries.personal(bob)).id
    await docs.make_folder(bob, lib, "Old")
    inner = await put(services, search, bob, lib, "Old/ledger.txt", b"archived ledger")
    loose = await put(services, search, bob, lib, "invoice.txt", b"ledger entry")
    assert len(await search.query(bob, "ledger")) == 2
    # Trashed documents, and documents in trashed folders, vanish even before a reindex.
    await docs.delete(bob, lib, "invoice.txt")
    await docs.delete(bob, lib, "Old")
    assert await search.query(bob, "ledger") == []
    folder = (await docs.trash(bob, lib))[0]
    restored = await docs.restore(bob, lib, folder.id)
    assert paths_of(await search.query(bob, "ledger")) == ["Old/ledger.txt"]
    # Reindexing a trashed node takes it out of the index itself; purging does so alone.
    index = open_search_index(services.db)
    await search.reindex(tenant, inner)  # live again: stays
    await search.reindex(tenant, loose)
    async with transaction(services.db) as tx:
        found = await index.query(tx.conn, TenantScope(tenant), "ledger", 10)
    assert [result.node_id for result in found] == [inner]
    await put(services, search, bob, lib, "invoice.txt", b"ledger again")
    again = (await docs.stat(bob, lib, "invoice.txt")).id
    await docs.delete(bob, lib, "invoice.txt")
    await docs.purge(bob, lib, again)  # no reindex: the row map cascades from doc_nodes
    async with transaction(services.db) as tx:
        found = await index.query(tx.conn, TenantScope(tenant), "ledger", 10)
    assert [result.node_id for result in found] == [inner]
    # A folder's subtree can be reindexed at once (after a move, trash or restore).
    await docs.delete(bob, lib, "Old")
    assert await search.reindex_subtree(tenant, restored.id) == 2
    async with transaction(services.db) as tx:
        assert await index.query(tx.conn, TenantScope(tenant), "ledger", 10) == []


async def test_refresh_never_fails_the_caller(
    services: Services, two_tenants: dict[str, Principal], search: DocumentSearch,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    bob = two_tenants["bob"]
    lib = (await services.libraries.personal(bob)).id
    node, _ = await services.documents.write(bob, lib, "heron.txt", b"wading bird")
    await search.refresh(bob.tenant_id or "", "no-such-node")

    async def broken(*_: object) -> str:
        raise RuntimeError("extractor crashed")

    monkeypatch.setattr(search, "_text", broken)
    await search.refresh(bob.tenant_id or "", node.id)  # logged, not raised
    assert paths_of(await search.query(bob, "heron")) == ["heron.txt"]  # the entry from write
    monkeypatch.undo()
    await search.refresh(bob.tenant_id or "", node.id)
    assert paths_of(await search.query(bob, "wading")) == ["heron.txt"]


async def test_rebuild_indexes_what_exists(
    services: Services, two_tenants: dict[str, Principal], search: DocumentSearch
) -> None:
    bob = two_tenants["bob"]
    lib = (await services.libraries.personal(bob)).id
    await services.documents.make_folder(bob, lib, "A")
    await services.documents.write(bob, lib, "A/kestrel.txt", b"falcon")
    await search.forget_tenant(bob.tenant_id or "")  # as after a migration that loses it
    assert await search.query(bob, "kestrel") == []
    assert await search.rebuild(bob.tenant_id or "") == 3  # root, folder, document
    assert paths_of(await search.query(bob, "falcon")) == ["A/kestrel.txt"]


async def test_labels_keeping_content_on_managed_clients_hide_matches_elsewhere(
    services: Services, two_tenants: dict[str, Principal], search: DocumentSearch
) -> None:
    alice = two_tenants["alice"]
    tenant, lib = alice.tenant_id or "", (await services.libraries.personal(alice)).id
    await services.labels.define(alice, tenant, "SECRET", 40, managed_download_only=True)
    node_id = await put(services, search, alice, lib, "codes.txt", b"launch sequence")
    await services.metadata.describe(alice, lib, "codes.txt", label="SECRET")
    await search.reindex(tenant, node_id)
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


async def test_postgresql_says_search_is_not_available(
    services: Services, two_tenants: dict[str, Principal]
) -> None:
    if services.db.is_sqlite:
        pytest.skip("PostgreSQL only")
    search = DocumentSearch(services.db, services.content, open_search_index(services.db))
    bob = two_tenants["bob"]
    lib = (await services.libraries.personal(bob)).id
    await put(services, search, bob, lib, "a.txt", b"words")  # indexing is a no-op there
    with pytest.raises(SearchUnavailable):
        await search.query(bob, "words")


async def test_the_document_services_keep_the_index_current(
    services: Services, two_tenants: dict[str, Principal], search: DocumentSearch
) -> None:
    """Writes, metadata changes, moves, deletes and restores reach the index by themselves
    (through the deployment's own search service, not the fixture's)."""
    bob, docs, search = two_tenants["bob"], services.documents, services.search
    lib = (await services.libraries.personal(bob)).id
    await docs.write(bob, lib, "notes.txt", b"the osprey returned in spring")
    assert paths_of(await search.query(bob, "osprey")) == ["notes.txt"]
    await services.metadata.describe(bob, lib, "notes.txt", title="Fieldwork diary")
    assert paths_of(await search.query(bob, "diary")) == ["notes.txt"]
    await docs.make_folder(bob, lib, "Archive")
    await docs.move(bob, lib, "notes.txt", lib, "Archive/notes.txt", overwrite=False)
    assert paths_of(await search.query(bob, "osprey")) == ["Archive/notes.txt"]
    await docs.delete(bob, lib, "Archive")
    assert await search.query(bob, "osprey") == []
    [trashed] = await docs.trash(bob, lib)
    await docs.restore(bob, lib, trashed.id)
    assert paths_of(await search.query(bob, "osprey")) == ["Archive/notes.txt"]
