"""CPU-bound steps run in worker processes, and a dead worker fails only its own call."""

from __future__ import annotations

import os

import pytest

from enclave.core import cpu


def _pid() -> int:
    return os.getpid()


def _die() -> None:
    os._exit(3)


def _double(value: bytes) -> bytes:
    return value * 2


@pytest.fixture
async def one_worker():  # type: ignore[no-untyped-def]
    before = cpu._pool.workers
    await cpu.start(1)
    yield
    await cpu.start(before)


async def test_runs_in_another_process(one_worker: None) -> None:
    assert await cpu.run(_pid) != os.getpid()
    assert await cpu.run(_double, b"ab") == b"abab"
    assert await cpu.run(_pid, size=cpu.MAX_SHIPPED + 1) == os.getpid()  # too big to ship


async def test_without_workers_runs_in_this_process() -> None:
    before = cpu._pool.workers
    await cpu.start(0)
    try:
        assert await cpu.run(_pid) == os.getpid()
    finally:
        await cpu.start(before)


async def test_a_dead_worker_fails_its_call_and_the_next_call_works(one_worker: None) -> None:
    with pytest.raises(cpu.WorkerLost):
        await cpu.run(_die)
    assert await cpu.run(_double, b"x") == b"xx"
