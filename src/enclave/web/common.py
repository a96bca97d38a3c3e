"""Request helpers shared by the API modules: the caller's principal, JSON bodies."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

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


async def body(request: Request, *required: str) -> dict[str, Any]:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise Invalid("send application/json")  # also stops cross-site form posts
    try:
        data = await request.json()
    except ValueError:
        raise Invalid("body is not valid JSON") from None
    if not isinstance(data, dict):
        raise Invalid("body must be a JSON object")
    missing = [name for name in required if not isinstance(data.get(name), str)]
    if missing:
        raise Invalid(f"missing or non-string field(s): {', '.join(missing)}")
    return data


def signed_in(request: Request, token: str, payload: dict[str, Any], max_age: int) -> JSONResponse:
    response = JSONResponse(payload)
    response.set_cookie(
        COOKIE,
        token,
        max_age=max_age,
        httponly=True,
        secure=request.url.scheme == "https",
        samesite="strict",
    )
    return response


def source(request: Request) -> str | None:
    return request_source(request)
