"""The account pages: sessions (with revoke), the second factor (TOTP enrolment with a QR
code, recovery codes shown once), app passwords for mail and file clients (shown once), and
the settings a mail, calendar or file client needs. Every change is a core call, checked and
audited there."""

from __future__ import annotations

import segno
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from enclave.core.principal import Principal
from enclave.web.common import COOKIE, services
from enclave.web.pages.common import checked_form, page, person, redirect, render


def _qr(uri: str) -> str:
    """The otpauth URI as an SVG QR code in a data: URL (the page policy allows data: images)."""
    found: str = segno.make(uri, error="m").svg_data_uri(scale=5, dark="#17325e")
    return found


def _clients(request: Request, who: Principal) -> dict[str, object]:
    settings = services(request).settings
    listen, host = settings.listen, settings.deployment.hostnames[0]
    return {
        "host": host,
        "imaps": listen.imaps_port,
        "imap": listen.imap_port,
        "submissions": listen.submissions_port,
        "submission": listen.submission_port,
        "webdav": f"{request.url.scheme}://{request.url.netloc}/dav/files/{who.name}/",
    }


async def _account(
    request: Request, who: Principal, status: int = 200, **shown: object
) -> Response:
    svc = services(request)
    sessions = await svc.auth.sessions(who)
    if who.restricted:  # until a second factor is on, enrolling is all there is to do
        user, apps = None, []
    else:
        user = await svc.users.get(who, who.name)
        apps = await svc.users.list_app_passwords(who, who.name)
    shown = {"enrolment": None, "qr": None, "new_password": None} | shown
    return render(
        request, "account.html", status=status, user=user, sessions=sessions, apps=apps,
        clients=_clients(request, who), section="account", **shown,
    )  # fmt: skip


@page
async def account(request: Request) -> Response:
    return await _account(request, await person(request))


@page
async def revoke_session(request: Request) -> Response:
    who = await person(request)
    form = await checked_form(request)
    await services(request).auth.revoke_session(who, str(form.get("session", "")))
    return redirect("/account")


@page
async def begin_mfa(request: Request) -> Response:
    who = await person(request)
    await checked_form(request)
    enrolment = await services(request).users.begin_mfa(who, who.name)
    return await _account(request, who, enrolment=enrolment, qr=_qr(enrolment.uri))


@page
async def confirm_mfa(request: Request) -> Response:
    """A right code turns the factor on and ends every session, this one included: the
    recovery codes are shown on the way out, once."""
    who = await person(request)
    form = await checked_form(request)
    code = str(form.get("code", "")).strip()
    codes = await services(request).users.confirm_mfa(who, who.name, code)
    response = render(request, "recovery.html", codes=codes, who=None)
    response.delete_cookie(COOKIE)
    return response


@page
async def add_app_password(request: Request) -> Response:
    who = await person(request)
    form = await checked_form(request)
    app, secret = await services(request).users.add_app_password(
        who, who.name, str(form.get("name", "")).strip()
    )
    return await _account(request, who, new_password=(app.name, secret))


@page
async def revoke_app_password(request: Request) -> Response:
    who = await person(request)
    form = await checked_form(request)
    await services(request).users.revoke_app_password(who, who.name, str(form.get("app", "")))
    return redirect("/account")


routes = [
    Route("/account", account),
    Route("/account/sessions/revoke", revoke_session, methods=["POST"]),
    Route("/account/mfa/begin", begin_mfa, methods=["POST"]),
    Route("/account/mfa/confirm", confirm_mfa, methods=["POST"]),
    Route("/account/app-passwords", add_app_password, methods=["POST"]),
    Route("/account/app-passwords/revoke", revoke_app_password, methods=["POST"]),
]
