"""What every page response carries, and the check every page form passes.

Headers: a strict Content-Security-Policy (scripts, styles and images from this origin only,
no inline script, no framing by anyone), no MIME sniffing, no referrer sent elsewhere.

CSRF: a double-submit token. The first page a browser gets sets a random ``enclave_csrf``
cookie (HttpOnly, SameSite=Strict); every form carries the same value in a hidden field, and a
state-changing request passes only when the two match (compared in constant time) and the
browser does not say it came from another site (``Sec-Fetch-Site``, else ``Origin``).
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from enclave.core.errors import Forbidden

CSRF_COOKIE = "enclave_csrf"
CSRF_FIELD = "csrf"

PAGE_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "form-action 'self'",
        "frame-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)


def message_policy(remote: bool) -> str:
    """The policy of a sanitised HTML mail body, shown in a sandboxed frame of our page:
    nothing runs, nothing loads, unless the reader allowed this message's remote images."""
    images = "img-src data: https: http:" if remote else "img-src data:"
    return f"default-src 'none'; {images}; style-src 'unsafe-inline'; frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox"


def secure_headers(response: Response, policy: str = PAGE_POLICY) -> Response:
    response.headers["Content-Security-Policy"] = policy
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


def csrf_token(request: Request) -> str:
    """The browser's token: the cookie's value, or a new one (set by ``with_csrf_cookie``)."""
    token = request.cookies.get(CSRF_COOKIE)
    if not token:
        token = request.state.__dict__.setdefault("new_csrf", secrets.token_urlsafe(32))
    return token


def with_csrf_cookie(request: Request, response: Response) -> Response:
    new = getattr(request.state, "new_csrf", None)
    if new:
        response.set_cookie(
            CSRF_COOKIE, new, httponly=True, samesite="strict",
            secure=request.url.scheme == "https", path="/",
        )  # fmt: skip
    return response


def _same_site(request: Request) -> bool:
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return True  # no browser told us otherwise; the token still has to match
    parts = urlsplit(origin)
    return (parts.scheme, parts.netloc) == (request.url.scheme, request.url.netloc)


def check_csrf(request: Request, sent: object) -> None:
    """Refuse a state-changing page request that is not our own form's."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not (
        _same_site(request)
        and isinstance(sent, str)
        and cookie
        and hmac.compare_digest(sent.encode(), cookie.encode())
    ):
        raise Forbidden("this form has expired or did not come from this site: reload the page")
