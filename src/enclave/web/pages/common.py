"""What every page handler shares: rendering (autoescaped templates, the security headers,
the CSRF cookie), the signed-in person, forms checked for CSRF, and core errors shown as a
page (one table: ``web.errors.status_of``)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import jinja2
from starlette.datastructures import FormData
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from enclave.core.errors import AuthenticationFailed, EnclaveError, Forbidden, Invalid
from enclave.core.principal import Principal
from enclave.web.common import COOKIE, PayloadTooLarge, services
from enclave.web.errors import status_of
from enclave.web.pages.security import (
    CSRF_FIELD,
    check_csrf,
    csrf_token,
    secure_headers,
    with_csrf_cookie,
)

MAX_FORM_FIELDS = 100
MAX_FORM_FIELD_BYTES = 64 * 1024

templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.PackageLoader("enclave.web.pages", "templates"),
        autoescape=True,  # every value a user controls is text, never markup
        undefined=jinja2.StrictUndefined,
    )
)


def render(request: Request, name: str, status: int = 200, **context: Any) -> Response:
    context.setdefault("who", getattr(request.state, "who", None))
    context["csrf_field"], context["csrf"] = CSRF_FIELD, csrf_token(request)
    response = templates.TemplateResponse(request, name, context, status_code=status)
    return with_csrf_cookie(request, secure_headers(response))


def redirect(url: str) -> Response:
    return secure_headers(RedirectResponse(url, status_code=303))


async def signed_in(request: Request) -> Principal | None:
    """The person this browser is signed in as (None: not, or the session has ended)."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        who = await services(request).auth.resolve(token)
    except AuthenticationFailed:
        return None
    request.state.who = who
    return who


async def checked_form(request: Request) -> FormData:
    """The posted form, bounded, after the CSRF check."""
    form = await request.form(
        max_files=0, max_fields=MAX_FORM_FIELDS, max_part_size=MAX_FORM_FIELD_BYTES
    )
    check_csrf(request, form.get(CSRF_FIELD))
    return form


async def checked_upload(request: Request, limit: int, max_files: int = 50) -> FormData:
    """A posted form with files, after the CSRF check. Everything stays in memory (spooled
    files would put plaintext on disk): the body is refused past ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is None or not declared.isdigit() or int(declared) > limit:
        raise PayloadTooLarge(f"a form may carry at most {limit} bytes (and must say its size)")
    parser = MultiPartParser(
        request.headers, _bounded(request, limit), max_files=max_files,
        max_fields=MAX_FORM_FIELDS, max_part_size=MAX_FORM_FIELD_BYTES * 16,
    )  # fmt: skip
    parser.spool_max_size = limit + 1  # never rolls over to a temporary file
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise Invalid(str(exc)) from None
    check_csrf(request, form.get(CSRF_FIELD))
    return form


async def _bounded(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise PayloadTooLarge(f"a form may carry at most {limit} bytes")
        yield chunk


def error_page(request: Request, exc: EnclaveError) -> Response:
    if isinstance(exc, AuthenticationFailed) and not request.url.path.startswith("/signin"):
        return redirect("/signin")
    who = getattr(request.state, "who", None)
    if (
        isinstance(exc, Forbidden) and who is not None and who.restricted
        and not request.url.path.startswith("/account")
    ):  # fmt: skip
        return redirect("/account")  # the tenant requires a second factor: enrol first
    return render(request, "error.html", status=status_of(exc), message=str(exc))


Handler = Any  # an async page handler: Request -> Response


def page(handler: Handler) -> Handler:
    """A page handler whose core errors become an error page (or the sign-in page)."""

    async def run(request: Request) -> Response:
        try:
            response: Response = await handler(request)
        except EnclaveError as exc:
            return error_page(request, exc)
        return response

    run.__name__ = run.__qualname__ = handler.__name__
    return run


async def person(request: Request) -> Principal:
    """The signed-in person, or AuthenticationFailed (``page`` sends them to sign in)."""
    who = await signed_in(request)
    if who is None:
        raise AuthenticationFailed("sign in first")
    return who
