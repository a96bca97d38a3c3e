"""Core errors -> HTTP statuses, in one table."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from enclave.core import errors
from enclave.web.common import PayloadTooLarge

STATUS: dict[type[errors.EnclaveError], int] = {
    PayloadTooLarge: 413,
    errors.Invalid: 400,
    errors.SecondFactorRequired: 401,
    errors.AuthenticationFailed: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PreconditionFailed: 412,
    errors.Locked: 423,
    errors.QuotaExceeded: 507,
    errors.Unavailable: 503,
    errors.IntegrityError: 500,
}


def status_of(exc: errors.EnclaveError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


async def enclave_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.EnclaveError)
    return JSONResponse({"error": exc.code, "message": str(exc)}, status_code=status_of(exc))
