"""The SQLite driver (``backends.db.sqlite_driver``): small reads in place on the event loop,
anything larger or anything that writes in the connection's thread, and the loop never held
by a query that grows with the data."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import exc, text

from enclave.backends.db.engine import Database

ROWS = 3000


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path}/driver.db")
    async with database.transaction(write=True) as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)"))
        await conn.execute(
            text("INSERT INTO t VALUES (:id, :v)"),
            [{"id": i, "v": f"value {i}"} for i in range(1, ROWS + 1)],
        )
    try:
        yield database
    finally:
        await database.close()


async def _thread_names(conn: object) -> None:
    raw = (await conn.get_raw_connection()).driver_connection  # type: ignore[attr-defined]
    raw.create_function("thread_name", 0, lambda: threading.current_thread().name)


async def test_a_small_read_runs_in_place_and_a_large_one_in_the_thread(db: Database) -> None:
    async with db.transaction() as conn:
        await _thread_names(conn)
        small = (await conn.execute(text("SELECT thread_name(), v FROM t WHERE id = 7"))).one()
        large = (
            await conn.execute(text("SELECT thread_name(), count(*) FROM t a, t b WHERE a.id < 40"))
        ).one()
    assert small == (threading.current_thread().name, "value 7")
    assert large[0] != threading.current_thread().name  # interrupted in place, run again there
    assert large[1] == 39 * ROWS  # and answered in full


async def test_a_long_query_leaves_the_event_loop_free(db: Database) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.002)
            ticks += 1

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    try:
        async with db.transaction() as conn:
            started, before = asyncio.get_running_loop().time(), ticks
            count = (await conn.execute(text("SELECT count(*) FROM t a, t b"))).scalar_one()
            elapsed, during = asyncio.get_running_loop().time() - started, ticks - before
    finally:
        task.cancel()
    assert count == ROWS * ROWS
    assert elapsed > 0.05  # long enough to tell
    assert during >= 5, f"the loop ran {during} times in {elapsed:.3f} s"


async def test_errors_in_place_are_errors_not_retries(db: Database) -> None:
    with pytest.raises(exc.OperationalError, match="no such table"):
        async with db.transaction() as conn:
            await conn.execute(text("SELECT * FROM missing"))
    with pytest.raises(exc.IntegrityError):
        async with db.transaction(write=True) as conn:
            await conn.execute(text("INSERT INTO t VALUES (1, 'again')"))
    async with db.transaction() as conn:  # the pool's connections still work
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == ROWS


async def test_writes_commit_and_roll_back_as_whole_transactions(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction(write=True) as conn:
            await conn.execute(text("UPDATE t SET v = 'changed' WHERE id = 1"))
            read_back = await conn.execute(text("SELECT v FROM t WHERE id = 1"))
            assert read_back.scalar_one() == "changed"  # a read in place sees its own write
            raise RuntimeError("abandon")
    async with db.transaction(write=True) as conn:
        await conn.execute(text("UPDATE t SET v = 'kept' WHERE id = 2"))
    async with db.transaction() as conn:
        rows = (await conn.execute(text("SELECT v FROM t WHERE id IN (1, 2) ORDER BY id"))).all()
    assert [r[0] for r in rows] == ["value 1", "kept"]


async def test_a_cancelled_query_leaves_the_database_usable(db: Database) -> None:
    async def long_read() -> None:
        async with db.transaction() as conn:
            await conn.execute(text("SELECT count(*) FROM t a, t b"))

    task = asyncio.create_task(long_read())
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The connection may come back to the pool while its statement still runs in the thread:
    # the next reads on it must wait for that, not start beside it.
    for _ in range(3):
        async with db.transaction() as conn:
            assert (await conn.execute(text("SELECT v FROM t WHERE id = 3"))).scalar_one()
    async with db.transaction(write=True) as conn:
        await conn.execute(text("UPDATE t SET v = 'after' WHERE id = 3"))
    async with db.transaction() as conn:
        assert (await conn.execute(text("SELECT v FROM t WHERE id = 3"))).scalar_one() == "after"
