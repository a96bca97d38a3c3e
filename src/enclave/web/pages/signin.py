"""Signing in and out in the browser: the same core call as ``POST /api/login`` (password,
then the second factor when enrolled; throttled and audited there), the session in a cookie
(HttpOnly, SameSite=Strict, Secure over HTTPS)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from enclave.core.errors import AuthenticationFailed, SecondFactorRequired
from enclave.core.principal import Realm
from enclave.web.common import COOKIE, metrics, services, set_session_cookie, source
from enclave.web.pages.common import checked_form, page, redirect, render, signed_in


@page
async def home(request: Request) -> Response:
    who = await signed_in(request)
    if who is None:
        return redirect("/signin")
    return redirect("/operator" if who.realm is Realm.OPERATOR else "/mail")


@page
async def signin_form(request: Request) -> Response:
    if await signed_in(request):
        return redirect("/mail")
    return render(request, "signin.html", email="", needs_code=False, problem=None)


@page
async def signin(request: Request) -> Response:
    form = await checked_form(request)
    email, password = str(form.get("email", "")), str(form.get("password", ""))
    code = str(form.get("code", "")).strip() or None
    counter = metrics(request).logins
    try:
        result = await services(request).auth.login_web(email, password, code, source(request))
    except SecondFactorRequired:
        counter.labels("tenant", "second_factor").inc()
        problem = "Enter the code from your authenticator app." if code is None else None
        return render(
            request, "signin.html", status=401, email=email, needs_code=True,
            problem=problem or "That code was not right.",
        )  # fmt: skip
    except AuthenticationFailed:
        counter.labels("tenant", "failure").inc()
        return render(
            request, "signin.html", status=401, email=email, needs_code=code is not None,
            problem="The address, password or code was not right.",
        )  # fmt: skip
    counter.labels("tenant", "success").inc()
    return set_session_cookie(request, redirect("/mail"), result)


@page
async def signout(request: Request) -> Response:
    await checked_form(request)
    token = request.cookies.get(COOKIE)
    if token:
        await services(request).auth.logout(token)
    response = redirect("/signin")
    response.delete_cookie(COOKIE)
    return response


routes = [
    Route("/", home),
    Route("/signin", signin_form),
    Route("/signin", signin, methods=["POST"]),
    Route("/signout", signout, methods=["POST"]),
]
