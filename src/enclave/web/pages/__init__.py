"""The web app's pages: server-rendered (Jinja2, autoescaped), plain ES modules for what
JavaScript adds, and the static files they need, served from the package (no CDN, no build
step)."""

from __future__ import annotations

from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from enclave.web.pages import account, admin, compose, files, mail, operator, signin

routes = [
    *signin.routes,
    *mail.routes,
    *compose.routes,
    *account.routes,
    *files.routes,
    *admin.routes,
    *operator.routes,
    Mount("/static", StaticFiles(packages=[("enclave.web.pages", "static")]), name="static"),
]
