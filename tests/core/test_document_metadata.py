"""Metadata, custom properties and classification labels with their rules."""

from __future__ import annotations

import pytest

from enclave.core.documents.metadata import (
    MAX_PROPERTIES,
    MAX_PROPERTIES_CHARS,
    MAX_PROPERTY_CHANGES,
)
from enclave.core.errors import Conflict, Forbidden, Invalid, NotFound, QuotaExceeded
from enclave.core.principal import Principal
from enclave.services import Services


async def test_title_tags_and_properties_round_trip_and_copy(
    services: Services, two_tenants: dict[str, Principal]
) -> None:
    bob, docs, meta = two_tenants["bob"], services.documents, services.metadata
    lib = (await services.libraries.personal(bob)).id
    await docs.write(bob, lib, "report.odt", b"...")
    described = await meta.describe(
        bob, lib, "report.odt", title="Annual report", tags=["finance", " 2026 ", "finance"]
    )
    assert described.title == "Annual report" and described.tags == ["2026", "finance"]
    await meta.set_properties(
        bob, lib, "report.odt", {"{urn:x}status": "draft", "{urn:x}owner": "<b>bob</b>"}
    )
    await meta.set_properties(bob, lib, "report.odt", {"{urn:x}owner": None})
    got = await meta.get(bob, lib, "report.odt")
    assert got.properties == {"{urn:x}status": "draft"} and got.description is None
    await docs.copy(bob, lib, "report.odt", lib, "copy.odt", overwrite=False)
    copied = await meta.get(bob, lib, "copy.odt")
    assert copied.title == "Annual report" and copied.properties == {"{urn:x}status": "draft"}
    with pytest.raises(Invalid):
        await meta.set_properties(bob, lib, "report.odt", {"{urn:x}big": "x" * 70_000})
    with pytest.raises(NotFound):
        await meta.describe(bob, lib, "report.odt", label="NO-SUCH-LABEL")


async def test_labels_limit_downloads_sharing_and_declassification(
    services: Services, two_tenants: dict[str, Principal], console: Principal
) -> None:
    alice, bob, carol = two_tenants["alice"], two_tenants["bob"], two_tenants["carol"]
    docs, meta, labels, libs = (
        services.documents,
        services.metadata,
        services.labels,
        services.libraries,
    )
    tenant = alice.tenant_id or ""
    await services.users.add_group(console, "acme", "board")
    await services.users.add_member(console, "acme", "board", "bob@acme.example")
    with pytest.raises(Forbidden):
        await labels.define(bob, tenant, "SECRET", 40)
    await labels.define(alice, tenant, "INTERNAL", 10)
    await labels.define(
        alice, tenant, "SECRET", 40, managed_download_only=True, share_group="board"
    )
    assert [label.name for label in await labels.all(bob)] == ["INTERNAL", "SECRET"]
    lib = (await libs.create(alice, tenant, "Board")).id
    await libs.grant(alice, tenant, lib, "", "group", "board", "write")
    await docs.make_folder(alice, lib, "Minutes")
    await docs.write(alice, lib, "Minutes/m1.txt", b"minutes")
    await meta.describe(bob, lib, "Minutes/m1.txt", label="INTERNAL")
    await meta.describe(bob, lib, "Minutes/m1.txt", label="SECRET")  # raising needs write
    with pytest.raises(Forbidden):  # lowering needs manage
        await meta.describe(bob, lib, "Minutes/m1.txt", label="INTERNAL")
    # Downloads only to managed clients.
    with pytest.raises(Forbidden):
        await docs.read(bob, lib, "Minutes/m1.txt")
    _, chunks = await docs.read(bob, lib, "Minutes/m1.txt", managed=True)
    assert b"".join([c async for c in chunks]) == b"minutes"
    # Sharing only within the board: no grant to carol or the tenant above the document...
    with pytest.raises(Forbidden):
        await libs.grant(alice, tenant, lib, "Minutes", "user", "carol@acme.example", "read")
    with pytest.raises(Forbidden):
        await libs.grant(alice, tenant, lib, "", "tenant", None, "read")
    await libs.grant(alice, tenant, lib, "Minutes", "user", "bob@acme.example", "read")
    # ...and the document cannot be copied somewhere shared more widely.
    open_lib = (await libs.create(alice, tenant, "Everyone")).id
    await libs.grant(alice, tenant, open_lib, "", "tenant", None, "read")
    with pytest.raises(Forbidden):
        await docs.copy(alice, lib, "Minutes/m1.txt", open_lib, "m1.txt", overwrite=False)
    with pytest.raises(NotFound):
        await docs.stat(carol, lib, "Minutes/m1.txt")
    with pytest.raises(Conflict):
        await labels.remove(alice, tenant, "SECRET")
    await meta.describe(alice, lib, "Minutes/m1.txt", label=None)  # alice manages: declassify
    await labels.remove(alice, tenant, "SECRET")
    audit = await services.audit_access.entries(alice, "acme", 0, 1000)
    assert sum(e["action"] == "document.label" for e in audit) == 3


async def test_properties_are_bounded_per_change_and_per_node_and_copied_in_batches(
    services: Services, two_tenants: dict[str, Principal]
) -> None:
    """A PROPPATCH of 20,000 properties held the write lock for 52 s (two statements each):
    a change is at most MAX_PROPERTY_CHANGES, a node holds at most MAX_PROPERTIES, and a copy
    carries them along in batches."""
    bob, docs, meta = two_tenants["bob"], services.documents, services.metadata
    lib = (await services.libraries.personal(bob)).id
    await docs.write(bob, lib, "full.txt", b"f")
    with pytest.raises(Invalid):
        await meta.set_properties(
            bob, lib, "full.txt", {f"{{urn:x}}p{i}": "v" for i in range(MAX_PROPERTY_CHANGES + 1)}
        )
    for name in ("{urn:x}1st", "two words", "{urn:x}", "{a{b}c", "{ns\x00}x"):
        with pytest.raises(Invalid):
            await meta.set_properties(bob, lib, "full.txt", {name: "v"})
    for start in range(0, MAX_PROPERTIES, MAX_PROPERTY_CHANGES):
        batch = {f"{{urn:x}}p{i}": f"value {i}" for i in range(start, start + MAX_PROPERTY_CHANGES)}
        await meta.set_properties(bob, lib, "full.txt", batch)
    with pytest.raises(QuotaExceeded):
        await meta.set_properties(bob, lib, "full.txt", {"{urn:x}one-more": "v"})
    # replacing and removing stay possible at the limit
    await meta.set_properties(bob, lib, "full.txt", {"{urn:x}p0": "new", "{urn:x}p1": None})
    await meta.set_properties(bob, lib, "full.txt", {"{urn:x}one-more": "v"})
    got = (await meta.get(bob, lib, "full.txt")).properties
    assert len(got) == MAX_PROPERTIES and got["{urn:x}p0"] == "new" and "{urn:x}p1" not in got
    await docs.copy(bob, lib, "full.txt", lib, "copy.txt", overwrite=False)
    assert (await meta.get(bob, lib, "copy.txt")).properties == got
    # the values' total is bounded too
    await docs.write(bob, lib, "big.txt", b"b")
    big = "x" * 60_000
    await meta.set_properties(bob, lib, "big.txt", {f"{{urn:x}}b{i}": big for i in range(17)})
    with pytest.raises(QuotaExceeded):
        await meta.set_properties(bob, lib, "big.txt", {"{urn:x}b17": big})
    assert 17 * 60_000 <= MAX_PROPERTIES_CHARS < 18 * 60_000


async def test_properties_of_a_listing_and_library_usage_for_those_who_may_see(
    services: Services, two_tenants: dict[str, Principal]
) -> None:
    """``Metadata.of_members`` (a PROPFIND of every property of a folder) and
    ``Libraries.usage`` (its quota properties) answer the library's readers only."""
    bob, carol, gina = two_tenants["bob"], two_tenants["carol"], two_tenants["gina"]
    docs, meta = services.documents, services.metadata
    lib = (await services.libraries.personal(bob)).id
    await docs.make_folder(bob, lib, "plans")
    await docs.write(bob, lib, "plans/a.txt", b"a" * 100)
    await docs.write(bob, lib, "plans/b.txt", b"b" * 50)
    await meta.set_properties(bob, lib, "plans/a.txt", {"{urn:x}status": "draft"})
    await meta.set_properties(bob, lib, "plans", {"{urn:x}colour": "blue"})
    found = await meta.of_members(bob, lib, "plans")
    by_name = {node.name: found[node.id] for node in await docs.children(bob, lib, "plans")}
    assert by_name == {"a.txt": {"{urn:x}status": "draft"}, "b.txt": {}}
    assert {"{urn:x}colour": "blue"} in found.values() and len(found) == 3
    assert await services.libraries.usage(bob, lib) == 150
    for outsider in (carol, gina):  # a colleague without a grant; another tenant
        with pytest.raises(NotFound):
            await meta.of_members(outsider, lib, "plans")
        with pytest.raises(NotFound):
            await services.libraries.usage(outsider, lib)
