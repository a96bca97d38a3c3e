"""Prometheus metrics for one app instance (its own registry, so tests can run several)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import enclave


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "enclave_http_requests", "HTTP requests", ["method", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "enclave_http_request_seconds", "HTTP request latency", registry=self.registry
        )
        self.logins = Counter(
            "enclave_logins",
            "Login attempts by realm and outcome",
            ["realm", "outcome"],
            registry=self.registry,
        )
        self.tenants = Gauge(
            "enclave_tenants", "Tenants by status", ["status"], registry=self.registry
        )
        info = Gauge("enclave_build_info", "Build information", ["version"], registry=self.registry)
        info.labels(enclave.__version__).set(1)

    def render(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.requests.labels(scope["method"], str(status)).inc()
            self.metrics.latency.observe(time.perf_counter() - started)


def request_source(request: Request) -> str | None:
    return request.client.host if request.client else None
