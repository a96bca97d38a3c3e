"""Migrations that move data keep it, on SQLite and on PostgreSQL (where row-level security
hides every tenant's rows from a statement that has not named the tenant): real downgrades
and upgrades of a deployment holding documents and mail."""

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


async def _to(services: Services, revision: str, downgrade: bool = False) -> None:
    def run(connection: Connection) -> None:
        config = migrate.alembic_config(connection)
        (command.downgrade if downgrade else command.upgrade)(config, revision)

    await migrate.run_migration(services.db, run)


async def test_upgrade_queues_what_exists_and_drops_the_plaintext_index(
    services: Services, two_tenants: dict[str, Principal]
) -> None:
    bob = two_tenants["bob"]
    lib = (await services.libraries.personal(bob)).id
    await services.documents.write(bob, lib, "old.txt", b"pelican migration notes")
    raw = b"Subject: pelican\r\nFrom: a@example.org\r\n\r\nold message\r\n"
    [filed] = await services.mail_store.deliver(bob.tenant_id or "", [bob.id], raw)
    db = services.db
    await _to(services, "0010", downgrade=True)
    async with db.engine.begin() as conn:
        if db.is_sqlite:  # what the FTS5 index of 0010 left behind
            await conn.execute(text("CREATE VIRTUAL TABLE doc_search USING fts5(body)"))
            await conn.execute(text("INSERT INTO doc_search (body) VALUES ('pelican')"))
    await _to(services, "head")
    async with db.engine.begin() as conn:
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


async def test_upgrade_to_subscriptions_keeps_them_and_recent_state(
    services: Services, two_tenants: dict[str, Principal]
) -> None:
    """0009 moved the subscribed flag into mail_subscriptions and set \\Recent and the
    UIDVALIDITY counter from what existed."""
    bob = two_tenants["bob"]
    raw = b"Subject: old\r\nFrom: a@example.org\r\n\r\nold message\r\n"
    [filed] = await services.mail_store.deliver(bob.tenant_id or "", [bob.id], raw)
    await services.mailboxes.list_all(bob)  # the default set, subscribed
    before = await services.mailboxes.subscriptions(bob)
    assert "INBOX" in before
    await _to(services, "0008", downgrade=True)
    await _to(services, "head")
    assert await services.mailboxes.subscriptions(bob) == before
    # Rebuilding mailboxes to drop a column must not take their messages along.
    rows = await services.mailboxes.rows(bob, filed.mailbox_id, [filed.uid])
    assert [row.uid for row in rows] == [filed.uid]
    async with transaction(services.db) as tx:
        scoped = await tx.scoped(TenantScope(bob.tenant_id or ""))
        box = await scoped.mailboxes.by_id(filed.mailbox_id)
        user = await scoped.users.by_id(bob.id)
    assert box is not None and user is not None
    assert box["recent_uid"] == box["uidnext"] == filed.uid + 1
    assert user["last_uidvalidity"] >= box["uidvalidity"]
