"""Tenant administration in the browser: the tenant's people (add, disable, enable, reset a
password or a second factor) and its audit log (paged, with a verification of the whole chain
as ``enclave audit verify`` does it). Who may do what is the core's decision; changes to
people also ask the administrator's own password again (``Authenticator.reauthenticate``)."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from enclave.core import audit_chain
from enclave.core.bounds import parse_int
from enclave.core.errors import EnclaveError, Invalid
from enclave.core.principal import Principal, Role
from enclave.web.common import services, source
from enclave.web.pages.common import checked_form, page, person, redirect, render

AUDIT_PAGE = 50


async def _reauthenticated(request: Request, who: Principal, form: FormData) -> None:
    await services(request).auth.reauthenticate(
        who, str(form.get("confirm_password", "")),
        str(form.get("confirm_code", "")).strip() or None, source(request),
    )  # fmt: skip


async def _people(request: Request, who: Principal, status: int = 200, **shown: object) -> Response:
    users = await services(request).users.list_users(who, who.tenant_id or "")
    shown = {"problem": None, "done": None} | shown
    return render(
        request, "admin.html", status=status, section="admin", roles=[r.value for r in Role],
        users=sorted(users, key=lambda user: user.email), **shown,
    )  # fmt: skip


@page
async def people(request: Request) -> Response:
    return await _people(request, await person(request))


@page
async def change_person(request: Request) -> Response:
    who = await person(request)
    form = await checked_form(request)
    users, action = services(request).users, str(form.get("action", ""))
    email = str(form.get("email", "")).strip()
    try:
        await _reauthenticated(request, who, form)
        if action == "add":
            role = Role(str(form.get("role", "user")))
            await users.add(
                who, email, display_name=str(form.get("display_name", "")).strip(),
                password=str(form.get("password", "")), role=role,
            )  # fmt: skip
        elif action in ("disable", "enable"):
            await users.set_status(who, email, "disabled" if action == "disable" else "active")
        elif action == "password":
            await users.set_password(who, email, str(form.get("password", "")))
        elif action == "reset-mfa":
            await users.reset_mfa(who, email)
        else:
            raise Invalid("unknown action")
    except (EnclaveError, ValueError) as refused:
        return await _people(request, who, status=400, problem=str(refused))
    return await _people(request, who, done=f"Done: {action} {email}")


@page
async def audit(request: Request) -> Response:
    who = await person(request)
    svc = services(request)
    after = parse_int(request.query_params.get("after") or "0", "after", 0)
    entries = await svc.audit_access.entries(who, who.tenant_id, after, AUDIT_PAGE)
    return render(
        request, "audit.html", section="admin", entries=entries, after=after,
        page_size=AUDIT_PAGE, verdict=None,
    )  # fmt: skip


@page
async def verify(request: Request) -> Response:
    """Export the log (audited, the head signed) and check it as an outside verifier would,
    pinned to this deployment's signing key."""
    who = await person(request)
    await checked_form(request)
    svc = services(request)
    lines = await svc.audit_access.export(who, who.tenant_id)
    verdict = audit_chain.verify(lines, svc.audit.public_key)
    entries = await svc.audit_access.entries(who, who.tenant_id, 0, AUDIT_PAGE)
    return render(
        request, "audit.html", section="admin", entries=entries, after=0,
        page_size=AUDIT_PAGE, verdict=verdict,
    )  # fmt: skip


routes = [
    Route("/admin", lambda request: redirect("/admin/people")),
    Route("/admin/people", people),
    Route("/admin/people", change_person, methods=["POST"]),
    Route("/admin/audit", audit),
    Route("/admin/audit/verify", verify, methods=["POST"]),
]
