"""CPU-bound steps in worker processes, so they run on the machine's other cores.

The server is one process: its event loop and every thread beside it share one GIL, so a
thread keeps a parse off the loop but still on the loop's core. Pure, module-level functions
of plain data (a message's bytes to its search text or its kept forms, text to index tokens,
a document to its text) go to a small pool of worker processes instead. With no workers
configured they run in a thread, as before.

Workers start from a fork server (never a fork of the threaded server itself) when the server
starts, and end with it: at a clean stop the pool is shut down, and each worker also watches
the server's process and leaves when it is gone (killed, say), as nothing else would tell it
(a worker holds both ends of its task queue) and the fork server lives while any worker does.
A worker that dies under some input breaks the pool: the call that was running gets
``WorkerLost`` (callers treat it as that input failing), and the next call starts a new pool.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import select
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import structlog

T = TypeVar("T")
log = structlog.get_logger("enclave.cpu")

# What the workers import before the first task (their start-up then costs nothing per task).
PRELOAD = ["enclave.core.mail.text", "enclave.core.search.index",
           "enclave.core.mail.store", "enclave.core.documents.extract"]  # fmt: skip


MAX_SHIPPED = 256 * 1024


class WorkerLost(Exception):
    """The worker process running a call died (the input may have crashed it)."""


def default_workers() -> int:
    """One per core beyond the event loop's, at least one."""
    return max(1, (os.cpu_count() or 1) - 1)


class _Pool:
    def __init__(self) -> None:
        self.workers = 0
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def configure(self, workers: int) -> None:
        with self._lock:
            if workers != self.workers:
                self._shutdown()
                self.workers = workers

    def current(self) -> ProcessPoolExecutor | None:
        return self._executor

    def start(self) -> None:
        """Start the workers and wait until one answers. Blocking (the fork server imports
        PRELOAD first): call it in a thread, never on the event loop."""
        executor = self._started()
        if executor is None:
            return
        try:
            executor.submit(_ready).result()
        except BrokenProcessPool:
            # A worker re-imports the main module: a script without a __main__ guard
            # runs itself again there and the worker dies. Threads still do the work.
            log.warning("worker processes did not start; CPU-bound work runs in threads")
            with self._lock:
                self._shutdown()
                self.workers = 0

    def _started(self) -> ProcessPoolExecutor | None:
        with self._lock:
            if self.workers and self._executor is None:
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(PRELOAD)
                self._executor = ProcessPoolExecutor(
                    self.workers, mp_context=context,
                    initializer=_watch_server, initargs=(os.getpid(),),
                )  # fmt: skip
            return self._executor

    def broken(self, executor: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is executor:
                self._shutdown()

    def _shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


_pool = _Pool()


def _ready() -> None:
    """A task for a worker that has started."""


def _watch_server(server_pid: int) -> None:
    """In each worker: leave at once when the server process ends."""

    def watch() -> None:
        try:
            handle = os.pidfd_open(server_pid)
        except (AttributeError, OSError):  # no pidfd here: look every second
            while _alive(server_pid):
                time.sleep(1.0)
        else:
            select.select([handle], [], [])  # readable when the process has ended
        os._exit(0)

    threading.Thread(target=watch, name="enclave-server-watch", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process now holds the number: not ours
        return False
    return True


async def start(workers: int) -> None:
    """Worker processes for ``run`` (0: threads), started off the event loop. The server
    calls this at start-up."""
    _pool.configure(workers)
    await asyncio.to_thread(_pool.start)


def stop() -> None:
    """End the worker processes (the server calls this as it stops)."""
    _pool.configure(0)


async def run(function: Callable[..., T], *args: Any, size: int = 0) -> T:
    """``function(*args)`` in a worker process, or in a thread when there are none or when
    the input (``size`` bytes or characters) is over MAX_SHIPPED: its arguments and result
    cross in pickles, and unpickling a large result is one call that holds the GIL, so the
    event loop would stall; a thread shares the GIL in slices."""
    executor = _pool.current()
    if executor is None and _pool.workers and size <= MAX_SHIPPED:
        await asyncio.to_thread(_pool.start)  # again, after a worker died
        executor = _pool.current()
    if executor is None or size > MAX_SHIPPED:
        return await asyncio.to_thread(function, *args)
    try:
        return await asyncio.get_running_loop().run_in_executor(executor, function, *args)
    except BrokenProcessPool as exc:
        _pool.broken(executor)
        raise WorkerLost(f"a worker process died running {function.__name__}") from exc
