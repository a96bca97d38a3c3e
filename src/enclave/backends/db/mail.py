"""Tenant-scoped repositories for the mail store: aliases, mailboxes, messages."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import RowMapping

from enclave.backends.db import schema as s
from enclave.backends.db.scoped import ScopedRepo


class AliasesRepo(ScopedRepo):
    table = s.aliases

    async def add(self, **values: Any) -> None:
        await self._insert(**values)

    async def get(self, address: str) -> RowMapping | None:
        return await self._one(self._select().where(s.aliases.c.address == address))

    async def all(self) -> list[RowMapping]:
        return await self._all(self._select().order_by(s.aliases.c.address))

    async def remove(self, address: str) -> int:
        query = self._delete().where(s.aliases.c.address == address)
        return (await self._conn.execute(query)).rowcount


class MailboxesRepo(ScopedRepo):
    table = s.mailboxes

    async def add(self, **values: Any) -> None:
        await self._insert(**values)

    async def of_user(self, user_id: str) -> list[RowMapping]:
        query = self._select().where(s.mailboxes.c.user_id == user_id)
        return await self._all(query.order_by(s.mailboxes.c.name))

    async def by_name(self, user_id: str, name: str) -> RowMapping | None:
        query = self._select().where(s.mailboxes.c.user_id == user_id, s.mailboxes.c.name == name)
        return await self._one(query)

    async def by_special_use(self, user_id: str, special_use: str) -> RowMapping | None:
        query = self._select().where(
            s.mailboxes.c.user_id == user_id, s.mailboxes.c.special_use == special_use
        )
        return await self._one(query)

    async def allocate(self, mailbox_id: str, count: int) -> tuple[int, int]:
        """Reserve ``count`` UIDs and one modification sequence; returns (first uid, modseq).

        One UPDATE, so concurrent deliveries to the same mailbox serialise on its row."""
        query = (
            self._update()
            .where(s.mailboxes.c.id == mailbox_id)
            .values(
                uidnext=s.mailboxes.c.uidnext + count,
                highestmodseq=s.mailboxes.c.highestmodseq + 1,
            )
        )
        await self._conn.execute(query)
        row = await self._one(self._select().where(s.mailboxes.c.id == mailbox_id))
        assert row is not None
        return int(row["uidnext"]) - count, int(row["highestmodseq"])


class MessagesRepo(ScopedRepo):
    table = s.messages

    async def add(self, **values: Any) -> None:
        await self._insert(**values)

    async def by_id(self, message_id: str) -> RowMapping | None:
        return await self._one(self._select().where(s.messages.c.id == message_id))

    async def in_mailbox(self, mailbox_id: str) -> list[RowMapping]:
        query = self._select().where(s.messages.c.mailbox_id == mailbox_id)
        return await self._all(query.order_by(s.messages.c.uid))

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
