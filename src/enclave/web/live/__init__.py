"""The live channel: Server-Sent Events telling a signed-in browser that something it shows
has changed, fed by the change bus IMAP IDLE uses. An event only says "look again" (the page
re-reads what it shows), so a merged or lost wake-up costs nothing; a comment every
``HEARTBEAT_SECONDS`` keeps proxies from closing the stream and ends it once the session has.
The server ends every stream when it stops (``Streams.close``): an open stream would
otherwise hold its shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from enclave.core.errors import AuthenticationFailed, EnclaveError
from enclave.core.mail.mailboxes import user_topic
from enclave.core.principal import Principal
from enclave.web.common import COOKIE, services

HEARTBEAT_SECONDS = 15.0


class Streams:
    """The open streams of one app, so that stopping the server ends them at once."""

    def __init__(self) -> None:
        self.closing = False
        self._wakers: set[asyncio.Event] = set()

    @contextlib.contextmanager
    def open(self, waker: asyncio.Event) -> Iterator[None]:
        self._wakers.add(waker)
        try:
            yield
        finally:
            self._wakers.discard(waker)

    def close(self) -> None:
        self.closing = True
        for waker in self._wakers:
            waker.set()


def streams(request: Request) -> Streams:
    found: Streams = request.app.state.live
    return found


async def _events(request: Request, who: Principal, token: str) -> AsyncIterator[bytes]:
    svc = services(request)
    bus = svc.mailboxes.bus
    yield b"retry: 3000\n\n"
    while True:  # once per set of folders: created, renamed or deleted ones start it again
        boxes = await svc.mailboxes.list_all(who)
        changed, renamed = asyncio.Event(), asyncio.Event()
        with contextlib.ExitStack() as watching:
            watching.enter_context(streams(request).open(changed))
            watching.enter_context(bus.watch(user_topic(who), renamed))
            for topic in [user_topic(who), *(box.id for box in boxes)]:
                watching.enter_context(bus.watch(topic, changed))
            while not renamed.is_set():
                try:
                    await asyncio.wait_for(changed.wait(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    try:
                        await svc.auth.resolve(token, activity=False)  # ended meanwhile?
                    except AuthenticationFailed:
                        yield b"event: signed-out\ndata: {}\n\n"
                        return
                    yield b": still here\n\n"
                    continue
                if streams(request).closing:
                    return
                changed.clear()
                yield b"event: mail\ndata: {}\n\n"


async def live(request: Request) -> Response:
    token = request.cookies.get(COOKIE, "")
    try:
        who = await services(request).auth.resolve(token)
    except EnclaveError:
        return Response("sign in first", status_code=401)
    return StreamingResponse(
        _events(request, who, token),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


routes = [Route("/live", live)]
