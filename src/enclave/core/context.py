"""Per-request context, set by front ends and read by audit and logs."""

from __future__ import annotations

from contextvars import ContextVar

request_id: ContextVar[str | None] = ContextVar("enclave_request_id", default=None)
source_address: ContextVar[str | None] = ContextVar("enclave_source_address", default=None)
