"""Migration 0011 moves existing deployments to the encrypted index: the plaintext FTS5 tables
go, and every live document and stored message is queued, so the worker indexes what was
there before the upgrade. Run as a real downgrade and upgrade, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection

from enclave.backends.db import migrate
from enclave.backends.db.platform import transaction
from enclave.backends.db.scoped import TenantScope
from enclave.core import clock
from enclave.core.principal import Principal
from enclave.services import Services


def _to(revision: str, downgrade: bool = False) -> object:
    def run(connection: Connection) -> None:
        config = migrate.alembic_config(connection)
        (command.downgrade if downgrade else command.upgrade)(config, revision)

    return run


async def test_upgrade_queues_what_exists_and_drops_the_plaintext_index(
    services: Services, two_tenants: dict[str, Principal]
) -> None:
    bob = two_tenants["bob"]
    lib = (await services.libraries.personal(bob)).id
    await services.documents.write(bob, lib, "old.txt", b"pelican migration notes")
    raw = b"Subject: pelican\r\nFrom: a@example.org\r\n\r\nold message\r\n"
    [filed] = await services.mail_store.deliver(bob.tenant_id or "", [bob.id], raw)
    db = services.db
    async with db.engine.begin() as conn:
        await conn.run_sync(_to("0010", downgrade=True))
        if db.is_sqlite:  # what the FTS5 index of 0010 left behind
            await conn.execute(text("CREATE VIRTUAL TABLE doc_search USING fts5(body)"))
            await conn.execute(text("INSERT INTO doc_search (body) VALUES ('pelican')"))
    async with db.engine.begin() as conn:
        await conn.run_sync(_to("head"))
        if db.is_sqlite:
            names = (await conn.execute(text("SELECT name FROM sqlite_master"))).scalars()
            assert not [name for name in names if name.startswith("doc_search")]
    async with transaction(db) as tx:
        scoped = await tx.scoped(TenantScope(bob.tenant_id or ""))
        jobs = {(job["kind"], job["object_id"]) for job in await scoped.search_jobs.due(
            clock.now(), 100)}  # fmt: skip
        blob = (await scoped.messages.by_uids(filed.mailbox_id, [filed.uid]))[0]["blob"]
    assert ("mail", blob) in jobs and {kind for kind, _ in jobs} == {"doc", "mail"}
    await services.index_queue.run_pending()
    assert [hit.path for hit in await services.search.query(bob, "pelican")] == ["old.txt"]
    found = await services.mailboxes.candidates(bob, filed.mailbox_id, ["pelican"])
    assert found == {filed.uid}
