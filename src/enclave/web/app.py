"""The Starlette application: routes, error table, metrics, request context."""

from __future__ import annotations

import uuid

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from enclave.core import context
from enclave.core.errors import EnclaveError
from enclave.core.tenancy import ACTIVE, SUSPENDED
from enclave.dav.app import MOUNT_PATH as DAV_PATH
from enclave.dav.app import create_dav_app
from enclave.dav.app import routes as dav_routes
from enclave.services import Services
from enclave.web import autoconfig, live, pages
from enclave.web.api import documents as api_documents
from enclave.web.api import mail as api_mail
from enclave.web.api import platform as api_platform
from enclave.web.api import user as api_user
from enclave.web.common import services, token_of
from enclave.web.errors import enclave_error
from enclave.web.metrics import Metrics, MetricsMiddleware


async def healthz(request: Request) -> Response:
    ok = await services(request).health.probe()
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "database": "ok" if ok else "down"},
        status_code=200 if ok else 503,
    )


async def prometheus(request: Request) -> Response:
    metrics: Metrics = request.app.state.metrics
    counts = await services(request).health.tenant_counts()
    for status in (ACTIVE, SUSPENDED):
        metrics.tenants.labels(status).set(counts.get(status, 0))
    return metrics.render()


class RequestContext:
    """Sets the request id and source address ContextVars that audit and logs read."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            context.source_address.set(client[0] if client else None)
            context.request_id.set(uuid.uuid4().hex[:16])
        await self.app(scope, receive, send)


def create_app(svc: Services) -> Starlette:
    metrics = Metrics()
    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/metrics", prometheus),
            *api_user.routes,
            *api_platform.routes,
            *api_documents.routes,
            *api_mail.routes,
            *autoconfig.routes,
            *pages.routes,
            *live.routes,
            *dav_routes,
            Mount(DAV_PATH, app=create_dav_app(svc, token_of)),
        ],
        exception_handlers={EnclaveError: enclave_error},
    )
    app.state.services = svc
    app.state.metrics = metrics
    app.state.live = live.Streams()
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(RequestContext)
    return app
