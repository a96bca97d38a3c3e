"""Between wsgidav's worker threads and the core services on the server's event loop.

wsgidav is synchronous and runs in a2wsgi's thread pool; the core services are coroutines on
the one event loop of the process. ``Bridge.call`` runs a coroutine there and waits for it,
turning core errors into DAV errors (one table, ``dav.errors``). Content moves in chunks:
``Download`` is the file-like wsgidav reads a document from (read and decrypted in its own
thread), ``Upload`` the one it writes a PUT body into, fed to the core ``write`` through a
bounded queue, so neither direction ever holds a whole document in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from typing import Any, Generic, TypeVar

from wsgidav.dav_error import HTTP_BAD_REQUEST, DAVError

from enclave.core.content import Content
from enclave.core.errors import EnclaveError
from enclave.dav.errors import dav_error

T = TypeVar("T")

UPLOAD_CHUNK = 256 * 1024  # bytes gathered before a chunk crosses to the loop
UPLOAD_DEPTH = 4  # chunks queued at most: memory per upload is about DEPTH + 1 chunks
SKIP_CHUNK = 1024 * 1024


class Bridge:
    """Runs coroutines on the event loop the server runs (bound on the first request)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """The coroutine's result; a core error comes back as the matching DAVError."""
        if self._loop is None:
            coro.close()
            raise RuntimeError("the DAV bridge is not bound to an event loop yet")
        try:
            return asyncio.run_coroutine_threadsafe(coro, self._loop).result()
        except EnclaveError as exc:
            raise dav_error(exc) from exc


class Download:
    """A read-only file over a document's content, read and decrypted in the calling worker
    thread (``Content.blocking``: no trip to the loop per chunk). ``seek`` goes forward only
    (by reading and dropping what lies before the target): wsgidav seeks once, to the start
    of a Range, before reading."""

    def __init__(self, content: Content) -> None:
        self._chunks = content.blocking()
        self._buffer = memoryview(b"")  # the chunk read last; read from ``_at`` on
        self._at = 0
        self._position = 0

    def _fill(self) -> bool:
        try:
            for chunk in self._chunks:
                if chunk:
                    self._buffer, self._at = memoryview(chunk), 0
                    return True
        except EnclaveError as exc:  # a file that fails authentication, say
            raise dav_error(exc) from exc
        return False

    def read(self, size: int = -1) -> bytes:
        parts: list[bytes] = []
        wanted = size if size >= 0 else None
        while wanted is None or wanted > 0:
            if self._at >= len(self._buffer) and not self._fill():
                break
            left = len(self._buffer) - self._at
            take = left if wanted is None else min(wanted, left)
            parts.append(bytes(self._buffer[self._at : self._at + take]))  # no copy of the rest
            self._at += take
            if wanted is not None:
                wanted -= take
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        self._position += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        target = offset if whence == 0 else self._position + offset if whence == 1 else -1
        if target < self._position:
            raise OSError("this stream only seeks forward")
        while self._position < target:
            if not self.read(min(SKIP_CHUNK, target - self._position)):
                break
        return self._position

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        self._buffer = memoryview(b"")
        self._chunks.close()  # closes the file if the stream was left part-way


class UploadAborted(Exception):
    """The client's body did not arrive whole: the upload must not be committed."""


Item = bytes | BaseException | None


class Upload(Generic[T]):
    """The file wsgidav writes a PUT body into. ``start`` receives the body as an async
    iterator and runs (the core ``write``) as a task on the loop while the chunks arrive;
    ``close`` marks the end and waits for it to commit; ``abort`` makes it fail instead.
    The task starts with the first chunk that crosses to the loop, so a body smaller than
    ``UPLOAD_CHUNK`` is written, ended and committed in one trip there."""

    def __init__(
        self,
        bridge: Bridge,
        start: Callable[[AsyncIterator[bytes]], Coroutine[Any, Any, T]],
        expected: int | None = None,
    ) -> None:
        self._bridge = bridge
        self._expected = expected  # the Content-Length, if the client sent one
        self._received = 0
        self._pending = bytearray()
        self._queue: asyncio.Queue[Item] | None = None
        self._task: asyncio.Task[T] | None = None
        self._finished = False
        self._start = start
        self.result: T | None = None

    def _begin(self) -> None:
        if self._task is None:
            self._queue = asyncio.Queue(UPLOAD_DEPTH)
            self._task = asyncio.get_running_loop().create_task(self._start(self._body()))

    async def _send(self, data: bytes) -> None:
        self._begin()
        await self._put(data)

    async def _finish(self, data: bytes) -> T:
        """The last of the body, its end, and the commit."""
        self._begin()
        if data:
            await self._put(data)
        await self._put(None)
        return await self._wait()

    async def _body(self) -> AsyncIterator[bytes]:
        assert self._queue is not None
        while True:
            item = await self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    async def _put(self, item: Item) -> None:
        """Queue an item, unless the consumer has already stopped (refused early, say)."""
        assert self._queue is not None and self._task is not None
        putting = asyncio.ensure_future(self._queue.put(item))
        await asyncio.wait({putting, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if putting.done():
            return
        putting.cancel()
        await self._task  # raises its error
        raise RuntimeError("the upload stopped reading before the end of the body")

    async def _wait(self) -> T:
        assert self._task is not None
        return await self._task

    async def _abandon(self) -> None:
        """Make the write fail (the content store removes its staged file) and wait for it;
        whatever it fails with is beside the point now, so nothing is raised."""
        assert self._task is not None
        with contextlib.suppress(Exception, asyncio.CancelledError):
            if not self._task.done():
                await self._put(UploadAborted())
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await self._task

    def write(self, data: bytes) -> int:
        self._received += len(data)
        self._pending += data
        if len(self._pending) >= UPLOAD_CHUNK:
            self._bridge.call(self._send(bytes(self._pending)))
            self._pending.clear()
        return len(data)

    def writelines(self, chunks: Iterable[bytes]) -> None:
        for chunk in chunks:
            self.write(chunk)

    def close(self) -> None:
        """End of the body: commit, or raise the DAVError the core refused with."""
        if self._finished:
            return
        if self._expected is not None and self._received != self._expected:
            self.abort()
            raise DAVError(HTTP_BAD_REQUEST, "the body does not match its Content-Length")
        self._finished = True
        data = bytes(self._pending)
        self._pending.clear()
        self.result = self._bridge.call(self._finish(data))

    def abort(self) -> None:
        if not self._finished:
            self._finished = True
            self._pending.clear()
            if self._task is not None:  # else nothing was staged yet
                self._bridge.call(self._abandon())
