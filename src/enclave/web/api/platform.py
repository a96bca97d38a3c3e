"""JSON API for platform operators: sign-in, tenants, health. No tenant content here."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from enclave.core.errors import AuthenticationFailed, Invalid
from enclave.core.tenancy import ACTIVE, SUSPENDED, Tenant
from enclave.web.common import body, metrics, principal, services, signed_in, source


def tenant_json(tenant: Tenant) -> dict[str, Any]:
    return {
        "id": tenant.id,
        "name": tenant.name,
        "status": tenant.status,
        "domains": list(tenant.domains),
        "require_mfa": tenant.require_mfa,
        "users": tenant.users,
        "created_at": tenant.created_at.isoformat(),
    }


async def operator_login(request: Request) -> Response:
    data = await body(request, "username", "password", "code")
    try:
        result = await services(request).auth.login_operator(
            data["username"], data["password"], data["code"], source(request)
        )
    except AuthenticationFailed:
        metrics(request).logins.labels("operator", "failure").inc()
        raise
    metrics(request).logins.labels("operator", "success").inc()
    return signed_in(request, result)


async def list_tenants(request: Request) -> Response:
    who = await principal(request)
    tenants = await services(request).tenants.list_tenants(who)
    return JSONResponse([tenant_json(t) for t in tenants])


async def create_tenant(request: Request) -> Response:
    who = await principal(request)
    data = await body(request, "name")
    domains = data.get("domains")
    if not isinstance(domains, list) or not all(isinstance(d, str) for d in domains):
        raise Invalid("domains must be a list of strings")
    tenant = await services(request).tenants.create(who, data["name"], domains)
    return JSONResponse(tenant_json(tenant), status_code=201)


async def set_status(request: Request) -> Response:
    who = await principal(request)
    status = SUSPENDED if request.path_params["action"] == "suspend" else ACTIVE
    tenant = await services(request).tenants.set_status(who, request.path_params["name"], status)
    return JSONResponse(tenant_json(tenant))


async def platform_health(request: Request) -> Response:
    who = await principal(request)
    return JSONResponse(await services(request).health.report(who))


routes = [
    Route("/api/operator/login", operator_login, methods=["POST"]),
    Route("/api/platform/tenants", list_tenants),
    Route("/api/platform/tenants", create_tenant, methods=["POST"]),
    Route("/api/platform/tenants/{name}/{action:str}", set_status, methods=["POST"]),
    Route("/api/platform/health", platform_health),
]
