"""Group commit on SQLite (``backends.db.group_commit``): writers queued behind each other
share one transaction and one commit, each in its own savepoint; each returns only after the
commit, a failing writer rolls back alone, and a failed commit fails every member."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import event, exc, text
from sqlalchemy.engine import Connection

from enclave.backends.db.engine import Database

WRITERS = 12


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path}/group.db")
    async with database.transaction(write=True) as conn:
        await conn.execute(text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
        await conn.execute(
            text(
                "CREATE TABLE t (id INTEGER PRIMARY KEY, who TEXT NOT NULL, parent INTEGER"
                " REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)"
            )
        )
        await conn.execute(text("INSERT INTO parent VALUES (1)"))
    try:
        yield database
    finally:
        await database.close()


def _count_commits(db: Database) -> list[int]:
    """Commits of write transactions (reads commit too, and are not counted)."""
    commits: list[int] = []

    def count(conn: Connection) -> None:
        if conn.get_execution_options().get("enclave_begin") == "IMMEDIATE":
            commits.append(1)

    event.listen(db.engine.sync_engine, "commit", count)
    return commits


async def _rows(db: Database) -> list[str]:
    async with db.transaction() as conn:
        return [r[0] for r in (await conn.execute(text("SELECT who FROM t ORDER BY who"))).all()]


async def _writer(db: Database, who: str, *, fail: bool = False, parent: int = 1) -> str:
    async with db.transaction(write=True) as conn:
        await conn.execute(
            text("INSERT INTO t (who, parent) VALUES (:w, :p)"), {"w": who, "p": parent}
        )
        await asyncio.sleep(0.001)  # let the others queue up behind
        if fail:
            raise RuntimeError(f"{who} gives up")
    # Returned: committed, so a fresh read transaction sees it.
    assert who in await _rows(db)
    return who


async def test_queued_writers_share_commits_and_each_is_durable_on_return(db: Database) -> None:
    commits = _count_commits(db)
    names = [f"w{i:02}" for i in range(WRITERS)]
    assert await asyncio.gather(*(_writer(db, n) for n in names)) == names
    assert await _rows(db) == names
    assert 1 <= len(commits) < WRITERS, f"{len(commits)} commits for {WRITERS} writers"


async def test_a_failing_writer_rolls_back_alone(db: Database) -> None:
    names = [f"w{i:02}" for i in range(WRITERS)]
    outcomes = await asyncio.gather(
        *(_writer(db, n, fail=n in ("w03", "w07")) for n in names), return_exceptions=True
    )
    failed = [o for o in outcomes if isinstance(o, RuntimeError)]
    assert len(failed) == 2
    assert await _rows(db) == [n for n in names if n not in ("w03", "w07")]


async def test_a_failed_commit_fails_every_member_of_its_group(db: Database) -> None:
    commits = _count_commits(db)
    # "bad" points at a parent that does not exist: only the commit checks (deferred key).
    names = ["a", "b", "bad", "c", "d"]
    outcomes = await asyncio.gather(
        *(_writer(db, n, parent=2 if n == "bad" else 1) for n in names), return_exceptions=True
    )
    failed = [n for n, o in zip(names, outcomes, strict=True) if isinstance(o, exc.IntegrityError)]
    kept = await _rows(db)
    assert "bad" in failed and "bad" not in kept
    assert set(failed) | set(kept) == set(names)  # each one either committed or was told
    assert not set(failed) & set(kept)  # nobody told of a failure had its row kept
    assert len(commits) >= 1


async def test_a_writer_cancelled_while_queued_does_not_stall_the_others(db: Database) -> None:
    tasks = [asyncio.create_task(_writer(db, f"w{i}")) for i in range(6)]
    await asyncio.sleep(0)
    tasks[3].cancel()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(outcomes[3], asyncio.CancelledError) or outcomes[3] == "w3"
    kept = await _rows(db)
    assert {"w0", "w1", "w2", "w4", "w5"} <= set(kept)
    async with asyncio.timeout(5):  # and the queue still works afterwards
        assert await _writer(db, "later") == "later"
