"""The operator console: platform operators sign in (password and authenticator code) and
see tenants (create, suspend, resume) and the platform's health. Like the platform API it
shows no tenant content and no tenant user names: the core refuses operators everything else
(content needs a tenant-approved grant)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from enclave.core.errors import AuthenticationFailed, Conflict, Forbidden, Invalid, NotFound
from enclave.core.principal import Principal, Realm
from enclave.core.tenancy import ACTIVE, SUSPENDED
from enclave.web.common import metrics, services, set_session_cookie, source
from enclave.web.pages.common import checked_form, page, person, redirect, render


async def _operator(request: Request) -> Principal:
    who = await person(request)
    if who.realm is not Realm.OPERATOR:
        raise Forbidden("the console is for platform operators")
    return who


@page
async def signin_form(request: Request) -> Response:
    return render(request, "operator_signin.html", problem=None, username="")


@page
async def signin(request: Request) -> Response:
    form = await checked_form(request)
    username = str(form.get("username", ""))
    try:
        result = await services(request).auth.login_operator(
            username, str(form.get("password", "")), str(form.get("code", "")), source(request)
        )
    except AuthenticationFailed:
        metrics(request).logins.labels("operator", "failure").inc()
        return render(
            request, "operator_signin.html", status=401, username=username,
            problem="The name, password or code was not right.",
        )  # fmt: skip
    metrics(request).logins.labels("operator", "success").inc()
    return set_session_cookie(request, redirect("/operator"), result)


async def _console(request: Request, who: Principal, problem: str | None = None) -> Response:
    svc = services(request)
    tenants = await svc.tenants.list_tenants(who)
    health = await svc.health.report(who)
    return render(
        request, "operator.html", section="operator", tenants=tenants, health=health,
        problem=problem, status=400 if problem else 200,
    )  # fmt: skip


@page
async def console(request: Request) -> Response:
    return await _console(request, await _operator(request))


@page
async def change_tenant(request: Request) -> Response:
    who = await _operator(request)
    form = await checked_form(request)
    tenants, action = services(request).tenants, str(form.get("action", ""))
    name = str(form.get("name", "")).strip()
    try:
        if action == "create":
            domains = [d for d in str(form.get("domains", "")).replace(",", " ").split() if d]
            await tenants.create(who, name, domains)
        else:
            await tenants.set_status(who, name, SUSPENDED if action == "suspend" else ACTIVE)
    except (Invalid, Conflict, NotFound) as refused:  # the operator can correct these
        return await _console(request, who, problem=str(refused))
    return redirect("/operator")


routes = [
    Route("/operator/signin", signin_form),
    Route("/operator/signin", signin, methods=["POST"]),
    Route("/operator", console),
    Route("/operator/tenants", change_tenant, methods=["POST"]),
]
