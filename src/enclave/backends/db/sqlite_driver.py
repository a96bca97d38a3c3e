"""SQLite for SQLAlchemy's async engine: a small read in place, anything else in one hop.

SQLAlchemy's ``aiosqlite`` adapter hands every cursor call to the connection's thread on its
own (open the cursor, execute, fetch the rows, close the cursor): four round trips through
the event loop for one statement, about 400 us for a primary-key SELECT on an idle machine,
most of it waking threads. Here:

* a SELECT first runs on the event loop itself under a budget of ``INLINE_SECONDS`` (half a
  millisecond, looked at every ``CHECK_STEPS`` SQLite VM steps); a query that needs more (or
  that must first reload a schema another connection changed) is interrupted there, which
  SQLite allows for a SELECT without touching the transaction, and run again in the thread. BEGIN DEFERRED, SAVEPOINT
  and RELEASE inside a transaction, and the end of a transaction that wrote nothing take no
  lock and no fsync: they run in place too;
* everything else, and everything that may wait (a write lock, an fsync at commit), runs
  whole in the connection's thread (execute, fetch every row, close) and comes back once,
  with its rows, description, rowcount and lastrowid.

Either way the rest of the DBAPI cursor is answered from that snapshot. Work that grows with
the data never runs on the event loop, so a long query stalls nobody else.

Server-side cursors are not offered (nothing here streams rows).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from functools import partial
from queue import SimpleQueue
from typing import Any, TypeVar

from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.engine import AdaptedConnection
from sqlalchemy.util import await_

T = TypeVar("T")
_Job = tuple[Callable[[], Any], asyncio.Future[Any], asyncio.AbstractEventLoop] | None


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():  # its task gave up (the pool then discards this connection)
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class _Worker:
    """The one thread that owns a sqlite3 connection: jobs run in order, one at a time."""

    def __init__(self) -> None:
        self._jobs: SimpleQueue[_Job] = SimpleQueue()
        # Jobs queued and not finished. A task cancelled while its statement runs here gives
        # the connection back before the statement ends: whoever gets it next must queue
        # behind it, not run beside it on the loop. (Two counters, each written by one
        # thread only, so no lock is needed.)
        self._queued = 0
        self._finished = 0
        self._thread = threading.Thread(target=self._run, name="sqlite", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            function, future, loop = job
            try:
                result, error = function(), None
            except BaseException as caught:
                result, error = None, caught
            self._finished += 1
            try:
                loop.call_soon_threadsafe(_settle, future, result, error)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                pass

    async def call(self, function: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queued += 1
        self._jobs.put((function, future, loop))
        return await future

    def submit(self, function: Callable[[], Any]) -> None:
        """Run ``function`` without waiting for it (closing from a finaliser)."""

        def run() -> None:
            try:
                function()
            except sqlite3.Error:
                pass

        self._queued += 1
        self._jobs.put((run, _NOBODY, _NO_LOOP))

    @property
    def pending(self) -> int:
        return self._queued - self._finished

    def stop(self) -> None:
        self._jobs.put(None)


class _NoLoop:
    @staticmethod
    def call_soon_threadsafe(*_args: Any) -> None:
        return None


_NO_LOOP: Any = _NoLoop()
_NOBODY: Any = None


# How long a SELECT may run on the event loop before it is moved to the thread (a lookup by
# key takes some microseconds), and how many SQLite VM steps pass between looks at the clock.
# A budget of steps alone is not enough: one step can read a long overflow chain or sort.
INLINE_SECONDS = 0.0005
CHECK_STEPS = 100


def _budget() -> Callable[[], bool]:
    deadline = time.perf_counter() + INLINE_SECONDS
    return lambda: time.perf_counter() > deadline


async def _nothing() -> None:
    """Awaited by a statement run in place: SQLAlchemy's async engine insists that every
    execution awaited something (it costs two greenlet switches, no trip round the loop)."""


_Snapshot = tuple[Any, int, int | None, list[Any]]  # description, rowcount, lastrowid, rows


def _execute(raw: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Snapshot:
    cursor = raw.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        else:
            cursor.execute(operation, parameters if parameters is not None else ())
        rows = cursor.fetchall() if cursor.description else []
        return cursor.description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


class Cursor:
    """A DBAPI cursor over the snapshot of the last statement."""

    server_side = False

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self.arraysize = 1
        self._rows: deque[Any] = deque()

    def execute(self, operation: str, parameters: Any = None) -> None:
        self._run(operation, parameters, many=False)

    def executemany(self, operation: str, seq_of_parameters: Sequence[Any]) -> None:
        self._run(operation, seq_of_parameters, many=True)

    def _run(self, operation: str, parameters: Any, *, many: bool) -> None:
        connection = self._connection
        snapshot = None if many else connection.in_place(operation, parameters)
        if snapshot is None:
            snapshot = connection.call(_execute, connection.raw, operation, parameters, many)
        self.description, self.rowcount, self.lastrowid, rows = snapshot
        self._rows = deque(rows)

    def fetchone(self) -> Any:
        return self._rows.popleft() if self._rows else None

    def fetchmany(self, size: int | None = None) -> list[Any]:
        count = self.arraysize if size is None else size
        return [self._rows.popleft() for _ in range(min(count, len(self._rows)))]

    def fetchall(self) -> list[Any]:
        rows = list(self._rows)
        self._rows.clear()
        return rows

    def close(self) -> None:
        self._rows.clear()

    async def _async_soft_close(self) -> None:
        """SQLAlchemy's async results call this; the rows are here already."""
        return None

    def setinputsizes(self, *_args: Any) -> None:
        return None

    def setoutputsizes(self, *_args: Any) -> None:
        return None


class Connection(AdaptedConnection):
    """The DBAPI connection SQLAlchemy sees; every call runs in the worker thread."""

    __slots__ = ("_raw", "_worker", "_wrote", "dbapi")

    def __init__(self, dbapi: Any, worker: _Worker, raw: sqlite3.Connection) -> None:
        self.dbapi = dbapi
        self._worker = worker
        self._raw = raw
        self._connection = raw  # type: ignore[assignment]  # what driver_connection returns
        self._wrote = False  # this transaction may hold the write lock: end it in the thread

    @property
    def raw(self) -> sqlite3.Connection:
        return self._raw

    def call(self, function: Callable[..., T], *args: Any) -> T:
        self._wrote = True
        return await_(self._worker.call(partial(function, *args)))

    def in_place(self, operation: str, parameters: Any) -> _Snapshot | None:
        """Run a read on the event loop if it fits the step budget; None if it did not
        (nothing done), or if it is no read."""
        if self._worker.pending:
            return None
        head = operation.lstrip()[:14].upper()
        raw = self._raw
        if head == "BEGIN DEFERRED" or (
            raw.in_transaction and head.startswith(("SAVEPOINT", "RELEASE SAVEPO"))
        ):  # no lock to wait for, no fsync, no work that grows: no budget needed
            await_(_nothing())
            return _execute(raw, operation, parameters, False)
        if not head.startswith("SELECT"):
            return None
        await_(_nothing())
        in_transaction = raw.in_transaction
        raw.set_progress_handler(_budget(), CHECK_STEPS)
        try:
            return _execute(raw, operation, parameters, False)
        except sqlite3.OperationalError as error:
            if str(error) != "interrupted":
                raise
            if raw.in_transaction != in_transaction:  # never seen for a SELECT; never hide it
                raise sqlite3.OperationalError(
                    "transaction ended by an interrupted read"
                ) from error
            return None
        finally:
            raw.set_progress_handler(None, 0)

    def cursor(self, server_side: bool = False) -> Cursor:
        if server_side:
            raise NotImplementedError("server-side cursors are not offered")
        return Cursor(self)

    def execute(self, operation: str, parameters: Any = None) -> Cursor:
        cursor = self.cursor()
        cursor.execute(operation, parameters)
        return cursor

    @property
    def isolation_level(self) -> str | None:
        return self._raw.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self.call(setattr, self._raw, "isolation_level", value)

    def create_function(self, *args: Any, **kwargs: Any) -> None:
        self.call(partial(self._raw.create_function, *args, **kwargs))

    def commit(self) -> None:
        self._end(self._raw.commit)

    def rollback(self) -> None:
        self._end(self._raw.rollback)

    def _end(self, end: Callable[[], None]) -> None:
        if self._wrote or self._worker.pending:
            self.call(end)
        else:  # nothing written: no lock to wait for, no fsync
            end()
        self._wrote = False

    def close(self) -> None:
        try:
            self.call(self._raw.close)
        finally:
            self._worker.stop()

    def terminate(self) -> None:
        """Close without waiting (an invalidated or garbage-collected connection)."""
        self._worker.submit(self._raw.close)
        self._worker.stop()


class DBAPI:
    """The module-like object SQLAlchemy expects: sqlite3's names, our ``connect``."""

    paramstyle = "qmark"
    has_stop = True

    def __init__(self) -> None:
        self.sqlite = sqlite3
        for name in (
            "DatabaseError", "Error", "IntegrityError", "NotSupportedError",
            "OperationalError", "ProgrammingError", "InterfaceError", "InternalError",
            "DataError", "Warning", "sqlite_version", "sqlite_version_info",
            "PARSE_COLNAMES", "PARSE_DECLTYPES", "Binary",
        ):  # fmt: skip
            setattr(self, name, getattr(sqlite3, name))

    def connect(self, *args: Any, **kwargs: Any) -> Connection:
        kwargs.pop("async_creator_fn", None)
        kwargs["check_same_thread"] = False  # reads run on the event loop's thread too
        worker = _Worker()
        try:
            raw = await_(worker.call(partial(sqlite3.connect, *args, **kwargs)))
        except BaseException:
            worker.stop()
            raise
        return Connection(self, worker, raw)


class SQLiteDialect_enclave(SQLiteDialect_aiosqlite):
    driver = "enclave"
    supports_statement_cache = True
    supports_server_side_cursors = False

    @classmethod
    def import_dbapi(cls) -> Any:
        return DBAPI()

    def get_driver_connection(self, connection: Any) -> Any:
        return connection.driver_connection


dialect = SQLiteDialect_enclave
