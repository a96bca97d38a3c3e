"""Group commit for SQLite: writers queued behind each other share one transaction and one
fsync, each in a savepoint of its own.

SQLite has one writer at a time, so this process's writers queue here, first come first
served (SQLite's busy handler polls, unfairly). The first writer to find nobody driving
starts a *driver* task. The driver opens a transaction (BEGIN IMMEDIATE) and hands it to each
queued writer in turn; a writer runs its body in a SAVEPOINT, so one that fails rolls back
alone. When the queue is empty, or the group has ``MAX_MEMBERS`` writers or has been open
``WINDOW_SECONDS``, the driver commits: only then does each member's ``transaction()``
return, so acknowledged still means durable. A commit that fails fails every member.

With the default window a lone writer commits at once (the queue is empty); under load the
fsync and the BEGIN/COMMIT round trips are paid once per group.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncConnection

MAX_MEMBERS = 32
WINDOW_SECONDS = 0.010  # a member waits at most about this long for later ones' bodies


def _future() -> asyncio.Future[object]:
    return asyncio.get_running_loop().create_future()


@dataclass(eq=False)
class _Member:
    turn: asyncio.Future[object] = field(default_factory=_future)  # the group's connection
    finished: asyncio.Future[object] = field(default_factory=_future)  # True: body succeeded
    committed: asyncio.Future[object] = field(default_factory=_future)


class GroupBroken(RuntimeError):
    """The group's transaction ended under a member (SQLite rolled it back after an error):
    the members so far are not committed."""


class GroupCommit:
    def __init__(
        self,
        begin: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
        in_transaction: Callable[[AsyncConnection], bool],
        wait_seconds: float,
    ) -> None:
        self._begin = begin  # a write transaction on a connection of its own
        self._in_transaction = in_transaction
        self._wait_seconds = wait_seconds
        self._queue: deque[_Member] = deque()
        self._driver: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        member = _Member()
        self._queue.append(member)
        if self._driver is None or self._driver.done():
            self._driver = asyncio.create_task(self._drive(), name="sqlite-group-commit")
        try:
            async with asyncio.timeout(self._wait_seconds):
                conn = await member.turn
        except BaseException:
            turn = member.turn
            if turn.done() and not turn.cancelled() and turn.exception() is None:
                member.finished.set_result(False)  # given the turn just as it gave up
            turn.cancel()
            raise
        assert isinstance(conn, AsyncConnection)
        succeeded = False
        try:
            async with conn.begin_nested():
                yield conn
            succeeded = True
        finally:
            member.finished.set_result(succeeded)
        await member.committed  # cancelled here, the body still commits, unacknowledged

    async def _drive(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            members: list[_Member] = []
            try:
                async with self._begin() as conn:
                    opened = loop.time()
                    while (
                        self._queue
                        and len(members) < MAX_MEMBERS
                        and loop.time() - opened < WINDOW_SECONDS
                    ):
                        member = self._queue.popleft()
                        if member.turn.done():  # gave up waiting
                            continue
                        if not self._in_transaction(conn):
                            self._queue.appendleft(member)
                            raise GroupBroken("the group's transaction was rolled back")
                        member.turn.set_result(conn)
                        if await member.finished:
                            members.append(member)
            except asyncio.CancelledError:
                for member in members:
                    member.committed.cancel()
                raise
            except Exception as error:
                if not members and self._queue:  # could not even begin: tell the next writer
                    head = self._queue.popleft()
                    if not head.turn.done():
                        head.turn.set_exception(error)
                for member in members:
                    member.committed.set_exception(error)
            else:
                for member in members:
                    member.committed.set_result(None)
