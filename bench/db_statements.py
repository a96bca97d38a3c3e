"""What one statement and one transaction cost through ``Database`` on SQLite (in process).

    .venv/bin/python bench/db_statements.py [--enclave-src DIR]

Prints medians of 5 runs: a primary-key SELECT inside a read transaction, a read transaction
of one SELECT, and a write transaction of one UPDATE (fsynced at commit).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path


async def measure() -> dict[str, float]:
    from sqlalchemy import text

    from enclave.backends.db.engine import Database

    with tempfile.TemporaryDirectory() as tmp:
        # (aiosqlite's URL: trees before the project's own driver need it; later ones take
        # any SQLite URL onto that driver)
        db = Database(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
        try:
            async with db.transaction(write=True) as conn:
                await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)"))
                await conn.execute(
                    text("INSERT INTO t VALUES (:i, :v)"),
                    [{"i": i, "v": b"x" * 100} for i in range(1000)],
                )
            select = text("SELECT * FROM t WHERE id = :i")
            async with db.transaction() as conn:
                started = time.perf_counter()
                for i in range(2000):
                    (await conn.execute(select, {"i": i % 1000})).mappings().first()
                per_select = (time.perf_counter() - started) / 2000
            started = time.perf_counter()
            for i in range(300):
                async with db.transaction() as conn:
                    await conn.execute(select, {"i": i})
            per_read = (time.perf_counter() - started) / 300
            started = time.perf_counter()
            for i in range(300):
                async with db.transaction(write=True) as conn:
                    await conn.execute(text("UPDATE t SET v = :v WHERE id = :i"), {"i": i, "v": b"y"})
            per_write = (time.perf_counter() - started) / 300
        finally:
            await db.close()
    return {"select_us": per_select * 1e6, "read_tx_ms": per_read * 1e3, "write_tx_ms": per_write * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enclave-src", type=Path, help="run Enclave from this source tree")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if args.enclave_src:
        sys.path.insert(0, str(args.enclave_src))
    runs = [asyncio.run(measure()) for _ in range(args.runs)]
    for name in runs[0]:
        print(f"{name:12} {statistics.median(r[name] for r in runs):8.3f}")


if __name__ == "__main__":
    main()
