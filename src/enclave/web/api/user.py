"""JSON API for tenant users: sign-in, sessions, second factor, app passwords, audit log."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from enclave.core.auth import SignedIn
from enclave.core.errors import AuthenticationFailed, Invalid, SecondFactorRequired
from enclave.core.identity import User
from enclave.web.common import (
    COOKIE,
    body,
    int_param,
    metrics,
    principal,
    services,
    signed_in,
    source,
    token_of,
)


def _user(user: User) -> dict[str, Any]:
    return {
        "email": user.email,
        "display_name": user.display_name,
        "role": user.role,
        "status": user.status,
        "mfa": user.mfa,
    }


async def login(request: Request) -> Response:
    data = await body(request, "email", "password")
    svc = services(request)
    try:
        result: SignedIn = await svc.auth.login_web(
            data["email"], data["password"], data.get("code"), source(request)
        )
    except SecondFactorRequired:
        metrics(request).logins.labels("tenant", "second_factor").inc()
        raise
    except AuthenticationFailed:
        metrics(request).logins.labels("tenant", "failure").inc()
        raise
    metrics(request).logins.labels("tenant", "success").inc()
    return signed_in(
        request, result, restricted=result.principal.restricted, email=result.principal.name
    )


async def logout(request: Request) -> Response:
    token = token_of(request)
    if token:
        await services(request).auth.logout(token)
    response = JSONResponse({"ok": True})
    response.delete_cookie(COOKIE)
    return response


async def me(request: Request) -> Response:
    who = await principal(request)
    user = await services(request).users.get(who, who.name)
    return JSONResponse(_user(user) | {"restricted": who.restricted})


async def list_sessions(request: Request) -> Response:
    who = await principal(request)
    rows = await services(request).auth.sessions(who)
    return JSONResponse(
        [
            {
                "id": s.id,
                "created_at": s.created_at.isoformat(),
                "expires_at": s.expires_at.isoformat(),
                "source": s.source,
            }
            for s in rows
        ]
    )


async def revoke_session(request: Request) -> Response:
    who = await principal(request)
    await services(request).auth.revoke_session(who, request.path_params["session_id"])
    return Response(status_code=204)


async def mfa_enroll(request: Request) -> Response:
    who = await principal(request)
    enrolment = await services(request).users.begin_mfa(who, who.name)
    return JSONResponse({"secret": enrolment.secret, "uri": enrolment.uri})


async def mfa_confirm(request: Request) -> Response:
    who = await principal(request)
    data = await body(request, "code")
    codes = await services(request).users.confirm_mfa(who, who.name, data["code"])
    return JSONResponse({"recovery_codes": codes, "signed_out": True})


async def list_app_passwords(request: Request) -> Response:
    who = await principal(request)
    apps = await services(request).users.list_app_passwords(who, who.name)
    return JSONResponse(
        [
            {
                "id": a.id,
                "name": a.name,
                "created_at": a.created_at.isoformat(),
                "last_used_at": a.last_used_at.isoformat() if a.last_used_at else None,
            }
            for a in apps
        ]
    )


async def add_app_password(request: Request) -> Response:
    who = await principal(request)
    data = await body(request, "name")
    app, secret = await services(request).users.add_app_password(who, who.name, data["name"])
    return JSONResponse({"id": app.id, "name": app.name, "password": secret}, status_code=201)


async def revoke_app_password(request: Request) -> Response:
    who = await principal(request)
    await services(request).users.revoke_app_password(who, who.name, request.path_params["app_id"])
    return Response(status_code=204)


async def audit_entries(request: Request) -> Response:
    who = await principal(request)
    after = int_param(request, "after", 0)
    limit = int_param(request, "limit", 100, 1)
    rows = await services(request).audit_access.entries(who, who.tenant_id, after, limit)
    return JSONResponse(rows)


async def tenant_policy(request: Request) -> Response:
    """Tenant admins: require (or stop requiring) a second factor for everyone."""
    who = await principal(request)
    data = await body(request)
    if not isinstance(data.get("require_mfa"), bool):
        raise Invalid("require_mfa must be true or false")
    tenant = await services(request).tenants.require_mfa(
        who, who.tenant_id or "", data["require_mfa"]
    )
    return JSONResponse({"tenant": tenant.name, "require_mfa": tenant.require_mfa})


routes = [
    Route("/api/login", login, methods=["POST"]),
    Route("/api/logout", logout, methods=["POST"]),
    Route("/api/me", me),
    Route("/api/sessions", list_sessions),
    Route("/api/sessions/{session_id}", revoke_session, methods=["DELETE"]),
    Route("/api/mfa/enroll", mfa_enroll, methods=["POST"]),
    Route("/api/mfa/confirm", mfa_confirm, methods=["POST"]),
    Route("/api/app-passwords", list_app_passwords),
    Route("/api/app-passwords", add_app_password, methods=["POST"]),
    Route("/api/app-passwords/{app_id}", revoke_app_password, methods=["DELETE"]),
    Route("/api/audit", audit_entries),
    Route("/api/tenant/policy", tenant_policy, methods=["PUT"]),
]
