"""Tenant-scoped repositories for the mail store: aliases, mailboxes, messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Update, bindparam, case, func, update
from sqlalchemy.engine import RowMapping

from enclave.backends.db import schema as s
from enclave.backends.db.prebuilt import in_scope
from enclave.backends.db.scoped import ScopedRepo


class AliasesRepo(ScopedRepo):
    table = s.aliases

    async def add(self, **values: Any) -> None:
        await self._insert(**values)

    async def get(self, address: str) -> RowMapping | None:
        return await self._first_where(address=address)

    async def all(self) -> list[RowMapping]:
        return await self._all(self._select().order_by(s.aliases.c.address))

    async def remove(self, address: str) -> int:
        return await self._delete_where(address=address)


def _allocation() -> Update:
    m = s.mailboxes.c
    return (
        update(s.mailboxes)
        .where(in_scope(s.mailboxes), m.id == bindparam("mailbox_id"))
        .values(uidnext=m.uidnext + bindparam("count"), highestmodseq=m.highestmodseq + 1)
        .returning(m.uidnext, m.highestmodseq)
    )


class MailboxesRepo(ScopedRepo):
    table = s.mailboxes

    async def add(self, **values: Any) -> None:
        await self._insert(**values)

    async def of_user(self, user_id: str) -> list[RowMapping]:
        query = self._select().where(s.mailboxes.c.user_id == user_id)
        return await self._all(query.order_by(s.mailboxes.c.name))

    async def by_name(self, user_id: str, name: str) -> RowMapping | None:
        return await self._first_where(user_id=user_id, name=name)

    async def by_special_use(self, user_id: str, special_use: str) -> RowMapping | None:
        return await self._first_where(user_id=user_id, special_use=special_use)

    async def by_id(self, mailbox_id: str) -> RowMapping | None:
        return await self._first_where(id=mailbox_id)

    async def change(self, mailbox_id: str, **values: Any) -> None:
        await self._update_where({"id": mailbox_id}, **values)

    async def remove(self, mailbox_id: str) -> None:
        await self._delete_where(id=mailbox_id)

    async def next_modseq(self, mailbox_id: str) -> int:
        """One new modification sequence for a change to the mailbox (serialises writers)."""
        query = (
            self._update()
            .where(s.mailboxes.c.id == mailbox_id)
            .values(highestmodseq=s.mailboxes.c.highestmodseq + 1)
        )
        await self._conn.execute(query)
        row = await self.by_id(mailbox_id)
        assert row is not None
        return int(row["highestmodseq"])

    async def allocate(self, mailbox_id: str, count: int) -> tuple[int, int]:
        """Reserve ``count`` UIDs and one modification sequence; returns (first uid, modseq).

        One UPDATE (which returns the new values), so concurrent deliveries to the same
        mailbox serialise on its row."""
        result = await self._prebuilt(_allocation, mailbox_id=mailbox_id, count=count)
        row = result.one()  # RETURNING: SQLite 3.35, PostgreSQL
        return int(row[0]) - count, int(row[1])


class MessagesRepo(ScopedRepo):
    table = s.messages

    async def add(self, **values: Any) -> None:
        await self._insert(**values)

    async def by_id(self, message_id: str) -> RowMapping | None:
        return await self._first_where(id=message_id)

    async def in_mailbox(self, mailbox_id: str) -> list[RowMapping]:
        query = self._select().where(s.messages.c.mailbox_id == mailbox_id)
        return await self._all(query.order_by(s.messages.c.uid))

    async def state(self, mailbox_id: str) -> list[tuple[int, str, int]]:
        """(UID, flags, modseq) of every message, by UID (what SELECT needs, no metadata)."""
        query = self._select(s.messages.c.uid, s.messages.c.flags, s.messages.c.modseq).where(
            s.messages.c.mailbox_id == mailbox_id
        )
        return await self._tuples(query.order_by(s.messages.c.uid))

    async def counts(self, mailbox_ids: list[str]) -> dict[str, tuple[int, int]]:
        """Mailbox id -> (messages, unseen), counted by the database in one statement."""
        m = s.messages.c
        unseen = func.sum(case((m.flags.contains("\\Seen", autoescape=True), 0), else_=1))
        query = self._select(m.mailbox_id, func.count(), unseen).where(
            m.mailbox_id.in_(mailbox_ids)
        )
        rows = await self._tuples(query.group_by(m.mailbox_id))
        return {box: (int(total), int(unread or 0)) for box, total, unread in rows}

    async def newest_uids(self, mailbox_id: str, offset: int, limit: int) -> list[int]:
        """UIDs ``offset`` to ``offset + limit`` of the mailbox, newest (highest) first."""
        m = s.messages.c
        query = self._select(m.uid).where(m.mailbox_id == mailbox_id)
        query = query.order_by(m.uid.desc()).offset(offset).limit(limit)
        return [int(uid) for (uid,) in await self._tuples(query)]

    async def by_uids(self, mailbox_id: str, uids: list[int]) -> list[RowMapping]:
        rows: list[RowMapping] = []
        for start in range(0, len(uids), 500):  # stay under SQLite's parameter limit
            query = self._select().where(
                s.messages.c.mailbox_id == mailbox_id,
                s.messages.c.uid.in_(uids[start : start + 500]),
            )
            rows += await self._all(query)
        return sorted(rows, key=lambda row: row["uid"])

    async def _of_uids(
        self, columns: tuple[Any, ...], mailbox_id: str, uids: list[int]
    ) -> list[Any]:
        """``columns`` (the first being the UID) of the given messages, as tuples, by UID. A
        dense set (``1:*``, most of a mailbox) is one range query; a sparse one goes 500 UIDs
        a statement (SQLite's parameter limit)."""
        m = s.messages.c
        if not uids:
            return []
        low, high = min(uids), max(uids)
        in_box = self._select(*columns).where(m.mailbox_id == mailbox_id)
        if len(uids) * 2 >= high - low + 1:
            wanted = set(uids)
            rows = await self._tuples(in_box.where(m.uid >= low, m.uid <= high))
            return sorted((row for row in rows if row[0] in wanted), key=lambda row: row[0])
        found: list[Any] = []
        for start in range(0, len(uids), 500):
            found += await self._tuples(in_box.where(m.uid.in_(uids[start : start + 500])))
        return sorted(found, key=lambda row: row[0])

    async def rows_of(self, mailbox_id: str, uids: list[int]) -> list[Any]:
        """(uid, id, flags, modseq, size, internal_date, blob) of the given messages, by UID:
        what FETCH and SEARCH read of a row (not the sealed metadata)."""
        m = s.messages.c
        columns = (m.uid, m.id, m.flags, m.modseq, m.size, m.internal_date, m.blob)
        return await self._of_uids(columns, mailbox_id, uids)

    async def blobs_of(self, mailbox_id: str, uids: list[int]) -> list[Any]:
        """(uid, id, content name) of the given messages, by UID (no metadata)."""
        m = s.messages.c
        return await self._of_uids((m.uid, m.id, m.blob), mailbox_id, uids)

    async def metas(self, ids: list[str]) -> list[RowMapping]:
        rows: list[RowMapping] = []
        columns = (s.messages.c.id, s.messages.c.blob, s.messages.c.meta)
        for start in range(0, len(ids), 500):
            query = self._select(*columns).where(s.messages.c.id.in_(ids[start : start + 500]))
            rows += await self._all(query)
        return rows

    async def changed_since(self, mailbox_id: str, modseq: int) -> list[RowMapping]:
        query = self._select(s.messages.c.uid, s.messages.c.flags, s.messages.c.modseq).where(
            s.messages.c.mailbox_id == mailbox_id, s.messages.c.modseq > modseq
        )
        return await self._all(query.order_by(s.messages.c.uid))

    async def set_flags(self, message_id: str, flags: str, modseq: int) -> None:
        await self._update_where({"id": message_id}, flags=flags, modseq=modseq)

    async def remove(self, message_id: str) -> None:
        await self._delete_where(id=message_id)

    async def stats(self, mailbox_id: str, recent_from: int) -> tuple[int, int, int, int, int]:
        """(messages, unseen, bytes, recent: UIDs from ``recent_from`` on, deleted) of a
        mailbox."""
        rows = await self.state(mailbox_id)
        sizes = await self._all(
            self._select(func.coalesce(func.sum(s.messages.c.size), 0).label("size")).where(
                s.messages.c.mailbox_id == mailbox_id
            )
        )
        unseen = sum(1 for _, flags, _ in rows if "\\Seen" not in flags.split())
        recent = sum(1 for uid, _, _ in rows if uid >= recent_from)
        deleted = sum(1 for _, flags, _ in rows if "\\Deleted" in flags.split())
        return len(rows), unseen, int(sizes[0]["size"]), recent, deleted

    async def usage(self, user_id: str) -> int:
        """Bytes of mail a user holds, across all of their mailboxes."""
        query = self._select(func.coalesce(func.sum(s.messages.c.size), 0)).where(
            s.messages.c.mailbox_id.in_(
                self._select_from(s.mailboxes, s.mailboxes.c.id).where(
                    s.mailboxes.c.user_id == user_id
                )
            )
        )
        return int((await self._conn.execute(query)).scalar_one())


class OutboundRepo(ScopedRepo):
    table = s.outbound

    async def add(self, **values: Any) -> None:
        await self._insert(**values)

    async def due(self, now: datetime, limit: int) -> list[RowMapping]:
        query = self._select().where(
            s.outbound.c.status == "queued", s.outbound.c.next_attempt_at <= now
        )
        return await self._all(query.order_by(s.outbound.c.next_attempt_at).limit(limit))

    async def pending(self) -> list[RowMapping]:
        query = self._select().where(s.outbound.c.status.in_(("queued", "sending")))
        return await self._all(query.order_by(s.outbound.c.created_at))

    async def by_queue_id(self, queue_id: str) -> list[RowMapping]:
        return await self._all(self._select().where(s.outbound.c.queue_id == queue_id))

    async def claim(self, row_id: str, now: datetime) -> bool:
        """Mark a due row as being sent; False if another worker took it first."""
        query = (
            self._update()
            .where(s.outbound.c.id == row_id, s.outbound.c.status == "queued")
            .values(status="sending", updated_at=now)
        )
        return (await self._conn.execute(query)).rowcount == 1

    async def change(self, row_id: str, **values: Any) -> None:
        await self._conn.execute(self._update().where(s.outbound.c.id == row_id).values(**values))

    async def requeue_stale(self, now: datetime) -> int:
        """Rows left "sending" by a crash go back to the queue."""
        query = (
            self._update()
            .where(s.outbound.c.status == "sending")
            .values(status="queued", next_attempt_at=now, updated_at=now)
        )
        return (await self._conn.execute(query)).rowcount

    async def remove(self, row_id: str) -> bool:
        """True if this call removed the row (another task may have got there first)."""
        query = self._delete().where(s.outbound.c.id == row_id)
        return (await self._conn.execute(query)).rowcount == 1


class SubscriptionsRepo(ScopedRepo):
    table = s.mail_subscriptions

    async def of_user(self, user_id: str) -> set[str]:
        query = self._select(s.mail_subscriptions.c.name).where(
            s.mail_subscriptions.c.user_id == user_id
        )
        return {row["name"] for row in await self._all(query)}

    async def add(self, user_id: str, name: str) -> None:
        if name not in await self.of_user(user_id):
            await self._insert(user_id=user_id, name=name)

    async def remove(self, user_id: str, name: str) -> None:
        await self._conn.execute(
            self._delete().where(
                s.mail_subscriptions.c.user_id == user_id, s.mail_subscriptions.c.name == name
            )
        )

    async def rename(self, user_id: str, old: str, new: str) -> None:
        query = self._update().where(
            s.mail_subscriptions.c.user_id == user_id, s.mail_subscriptions.c.name == old
        )
        await self._conn.execute(query.values(name=new))


class ExpungedRepo(ScopedRepo):
    table = s.expunged

    async def add(self, mailbox_id: str, uid: int, modseq: int) -> None:
        await self._insert(mailbox_id=mailbox_id, uid=uid, modseq=modseq)

    async def since(self, mailbox_id: str, modseq: int) -> list[int]:
        query = self._select(s.expunged.c.uid).where(
            s.expunged.c.mailbox_id == mailbox_id, s.expunged.c.modseq > modseq
        )
        return [int(row["uid"]) for row in await self._all(query.order_by(s.expunged.c.uid))]
