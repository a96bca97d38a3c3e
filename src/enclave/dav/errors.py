"""Core errors -> WebDAV statuses, in one table."""

from __future__ import annotations

from wsgidav.dav_error import DAVError

from enclave.core import errors

STATUS: dict[type[errors.EnclaveError], int] = {
    errors.Invalid: 400,
    errors.AuthenticationFailed: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PreconditionFailed: 412,
    errors.Locked: 423,
    errors.QuotaExceeded: 507,
    errors.IntegrityError: 500,
}


def status_of(exc: errors.EnclaveError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def dav_error(exc: errors.EnclaveError) -> DAVError:
    return DAVError(status_of(exc), context_info=str(exc))
