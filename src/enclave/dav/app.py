"""The WebDAV application, ready to mount in the Starlette app at ``MOUNT_PATH``:

    DavAuth (ASGI: who is asking)  ->  a2wsgi (wsgidav runs in its thread pool)
      ->  _with_principal (WSGI: the principal and the request into the environ and
          ``resources.REQUEST``; 201 for created targets)
      ->  door.guarded (WSGI: bodies, XML and headers bounded and checked, or refused)
      ->  WsgiDAVApp (our provider; lock storage and property manager on the core services)

Locks (``dav.locks``) and dead properties (``dav.properties``) are the core's, in the
database: they survive restarts and the JSON API sees them.

``routes`` are the redirects that belong next to the mount, for the web app's route list:
``/.well-known/webdav`` (RFC 5785 style discovery) and ``/dav`` to ``/dav/``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from a2wsgi import WSGIMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from wsgidav.error_printer import ErrorPrinter
from wsgidav.request_resolver import RequestResolver
from wsgidav.wsgidav_app import WsgiDAVApp

from enclave.dav import auth, door
from enclave.dav.bridge import Bridge
from enclave.dav.locks import CoreLockStorage
from enclave.dav.properties import CorePropertyManager
from enclave.dav.provider import EnclaveProvider
from enclave.dav.resources import CREATED, PRINCIPAL, REQUEST
from enclave.services import Services

MOUNT_PATH = "/dav"
WORKERS = 16  # wsgidav threads: DAV requests served at once
BLOCK_SIZE = 256 * 1024

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _config(provider: EnclaveProvider) -> dict[str, Any]:
    return {
        "provider_mapping": {"/": provider},
        "mount_path": MOUNT_PATH,
        "middleware_stack": [ErrorPrinter, RequestResolver],  # authentication is ours
        "lock_storage": CoreLockStorage(provider),
        "property_manager": CorePropertyManager(provider),
        "block_size": BLOCK_SIZE,
        "verbose": 1,
        "logging": {"enable": False},
        "suppress_version_info": True,
        "dir_browser": {"enable": False},
        "http_authenticator": {"accept_basic": False, "accept_digest": False},
    }


def _with_principal(app: WsgiApp) -> WsgiApp:
    """Hand wsgidav the principal the auth layer found (its lock manager knows them by id)
    and our lock storage the request (``REQUEST``: a2wsgi runs each request, body iteration
    included, in a copy of the context, in one worker thread), answer 201 rather than
    wsgidav's 204 when a COPY or MOVE created its target, and leave the Date header to
    uvicorn."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        principal = environ["asgi.scope"][auth.PRINCIPAL]
        environ[PRINCIPAL] = principal
        environ["wsgidav.auth.user_name"] = principal.id
        environ["wsgidav.auth.realm"] = auth.REALM
        REQUEST.set(environ)

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if environ.get(CREATED) and status.startswith("204"):
                status = "201 Created"
            headers = [(k, v) for k, v in headers if k.lower() != "date"]  # uvicorn sends one
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return wrapped


class ClientDisconnected(Exception):
    pass


def _disconnect_fails(receive: Receive) -> Receive:
    """a2wsgi reads ``http.disconnect`` as the end of the body; make it an error instead, so
    a PUT cut short is abandoned, never committed truncated."""

    async def receiving() -> Message:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected("the client went away during the request body")
        return message

    return receiving


async def _to_dav(request: Request) -> Response:
    return RedirectResponse(f"{MOUNT_PATH}/", status_code=301)


_ANY = ["GET", "HEAD", "OPTIONS", "PROPFIND", "PUT", "DELETE", "MKCOL", "COPY", "MOVE",
        "LOCK", "UNLOCK", "PROPPATCH", "POST"]  # fmt: skip

routes: list[BaseRoute] = [
    Route("/.well-known/webdav", _to_dav, methods=_ANY),
    Route(MOUNT_PATH, _to_dav, methods=_ANY),
]


def create_dav_app(services: Services, token_of: auth.TokenOf) -> ASGIApp:
    # wsgidav logs through the stdlib: keep its errors (500s), drop its per-request chatter
    logging.getLogger("wsgidav").setLevel(logging.ERROR)
    bridge = Bridge()
    provider = EnclaveProvider(services, bridge)
    dav = door.guarded(WsgiDAVApp(_config(provider)))  # bounded, well-formed requests only
    wsgi = WSGIMiddleware(_with_principal(dav), workers=WORKERS)  # type: ignore[arg-type]
    authenticated = auth.DavAuth(wsgi, services, token_of)  # type: ignore[arg-type]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        bridge.bind(asyncio.get_running_loop())  # the loop the core services run on
        await authenticated(scope, _disconnect_fails(receive), send)

    return app
