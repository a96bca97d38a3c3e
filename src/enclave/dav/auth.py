"""Who is asking, before wsgidav sees the request: HTTP Basic with the user's password or an
app password (``Authenticator.login_protocol``: rate limits, audit, app passwords only once a
second factor exists), or a web session (the JSON API's cookie or bearer token). Anything
else gets 401 with a Basic challenge.

Basic sends the secret with every request, so it is accepted over HTTPS (including HTTPS a
trusted reverse proxy terminated: uvicorn takes the scheme from its X-Forwarded-Proto) and,
over plain HTTP, only from loopback or from a trusted proxy's own address.

A verified Basic credential is remembered for ``BASIC_TTL_SECONDS`` (keyed by a hash of
address and secret, in this process only): a DAV client sends it on every request, and a
password hash plus an audit entry per request would cost more than the request. A disabled
account or revoked app password therefore keeps working for at most that long.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import secrets
import time
from collections.abc import Callable

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from enclave.core.errors import AuthenticationFailed
from enclave.core.principal import Principal
from enclave.services import Services

REALM = "Enclave"
PRINCIPAL = "enclave.principal"  # scope key the principal is passed on under
BASIC_TTL_SECONDS = 60.0
BASIC_CACHE_MAX = 10_000

TokenOf = Callable[[Request], str | None]


def _trusted(host: str, networks: list[str]) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if address.is_loopback:
        return True
    for network in networks:
        if network == "*":
            return True
        try:
            if address in ipaddress.ip_network(network, strict=False):
                return True
        except ValueError:
            continue
    return False


class DavAuth:
    def __init__(self, app: ASGIApp, services: Services, token_of: TokenOf) -> None:
        self.app = app
        self.services = services
        self.token_of = token_of
        self._pepper = secrets.token_bytes(32)
        self._basic: dict[bytes, tuple[Principal, float]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        header = request.headers.get("authorization", "")
        principal: Principal | None = None
        try:
            if header[:6].lower() == "basic ":
                if not self._basic_allowed(scope):
                    await _reply(send, 403, "Basic authentication needs HTTPS here\n")
                    return
                principal = await self._basic_login(header[6:].strip(), scope)
            else:
                token = self.token_of(request)
                if token:
                    principal = await self.services.auth.resolve(token)
        except AuthenticationFailed:
            principal = None
        if principal is None:
            await _reply(send, 401, "authentication required\n", challenge=True)
            return
        await self.app({**scope, PRINCIPAL: principal}, receive, send)

    def _basic_allowed(self, scope: Scope) -> bool:
        if scope.get("scheme") == "https":
            return True
        client = scope.get("client")
        if not client:
            return False
        return _trusted(client[0], list(self.services.settings.http.trusted_proxies))

    async def _basic_login(self, encoded: str, scope: Scope) -> Principal:
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise AuthenticationFailed() from None
        email, colon, secret = decoded.partition(":")
        if not colon or not email or not secret:
            raise AuthenticationFailed()
        key = hashlib.blake2b(decoded.encode(), key=self._pepper[:32]).digest()
        now = time.monotonic()
        cached = self._basic.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        client = scope.get("client")
        principal = await self.services.auth.login_protocol(
            email, secret, client[0] if client else None, protocol="dav"
        )
        if len(self._basic) >= BASIC_CACHE_MAX:
            self._basic = {k: v for k, v in self._basic.items() if v[1] > now}
            if len(self._basic) >= BASIC_CACHE_MAX:
                self._basic.clear()
        self._basic[key] = (principal, now + BASIC_TTL_SECONDS)
        return principal


async def _reply(send: Send, status: int, text: str, *, challenge: bool = False) -> None:
    body = text.encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
    ]
    if challenge:
        headers.append((b"www-authenticate", f'Basic realm="{REALM}", charset="UTF-8"'.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
