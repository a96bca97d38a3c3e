"""Request helpers shared by the API modules: the caller's principal, JSON bodies, bounded
integers."""

from __future__ import annotations

import json
from typing import Any, TypeVar
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from enclave.core import clock
from enclave.core.auth import SignedIn
from enclave.core.bounds import INT64_MAX, bounded, parse_int
from enclave.core.errors import AuthenticationFailed, Invalid
from enclave.core.principal import Principal
from enclave.services import Services
from enclave.web.metrics import Metrics, request_source

COOKIE = "enclave_session"


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def metrics(request: Request) -> Metrics:
    found: Metrics = request.app.state.metrics
    return found


def token_of(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(COOKIE)


async def principal(request: Request) -> Principal:
    token = token_of(request)
    if not token:
        raise AuthenticationFailed("sign in first")
    return await services(request).auth.resolve(token)


MAX_JSON_BYTES = 64 * 1024


class PayloadTooLarge(Invalid):
    code = "payload_too_large"


async def body(request: Request, *required: str, limit: int = MAX_JSON_BYTES) -> dict[str, Any]:
    """The JSON object sent, with its required string fields present; read with a size cap."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise Invalid("send application/json")  # also stops cross-site form posts
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise PayloadTooLarge(f"body larger than {limit} bytes")
    try:
        data = json.loads(raw)
        json.dumps(data, ensure_ascii=False).encode("utf-8")  # no lone surrogates (\ud800)
    except (ValueError, RecursionError):
        raise Invalid("body is not valid JSON (UTF-8)") from None
    if not isinstance(data, dict):
        raise Invalid("body must be a JSON object")
    missing = [name for name in required if not isinstance(data.get(name), str)]
    if missing:
        raise Invalid(f"missing or non-string field(s): {', '.join(missing)}")
    return data


def int_param(
    request: Request, name: str, default: int, low: int = 0, high: int = INT64_MAX
) -> int:
    """An integer query parameter in ``[low, high]`` (400 naming it otherwise)."""
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    return parse_int(value, name, low, high)


def int_field(data: dict[str, Any], name: str, low: int = 0, high: int = INT64_MAX) -> int | None:
    """An optional integer JSON field in ``[low, high]`` (absent or null: None). Every integer
    a handler takes from a request passes here, through ``int_required`` or ``int_param``."""
    value = data.get(name)
    return None if value is None else bounded(value, name, low, high)


def int_required(data: dict[str, Any], name: str, low: int = 0, high: int = INT64_MAX) -> int:
    if data.get(name) is None:
        raise Invalid(f"{name} is required")
    return bounded(data[name], name, low, high)


def signed_in(request: Request, result: SignedIn, **extra: Any) -> JSONResponse:
    """The sign-in reply: the token in the body (API clients) and as a strict cookie (pages)."""
    payload = {"token": result.token, "expires_at": result.expires_at.isoformat(), **extra}
    return set_session_cookie(request, JSONResponse(payload), result)


R = TypeVar("R", bound=Response)


def set_session_cookie(request: Request, response: R, result: SignedIn) -> R:
    """The session as a cookie: HttpOnly, SameSite=Strict, Secure over HTTPS, ending with it."""
    response.set_cookie(
        COOKIE,
        result.token,
        max_age=max(0, int((result.expires_at - clock.now()).total_seconds())),
        httponly=True,
        secure=request.url.scheme == "https",
        samesite="strict",
    )
    return response


def attachment(filename: str) -> str:
    """A Content-Disposition that makes the browser save, never show, under this name."""
    return f"attachment; filename*=UTF-8''{quote(filename, safe='')}"


def source(request: Request) -> str | None:
    return request_source(request)
