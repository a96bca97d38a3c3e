"""Protocol-neutral errors. Each front end maps them to replies in one table."""

from __future__ import annotations


class EnclaveError(Exception):
    """Base of every error a core service raises on purpose."""

    code = "error"


class Invalid(EnclaveError):
    """The request is malformed or breaks a rule on values."""

    code = "invalid"


class NotFound(EnclaveError):
    code = "not_found"


class Conflict(EnclaveError):
    """The object already exists, or its state forbids the change."""

    code = "conflict"


class PreconditionFailed(EnclaveError):
    """The object is not in the state the client said it expected (a stale ETag)."""

    code = "precondition_failed"


class Locked(EnclaveError):
    """Someone else holds a lock (a check-out) on the object, or on a folder above it."""

    code = "locked"


class Forbidden(EnclaveError):
    """The principal is known but may not do this."""

    code = "forbidden"


class AuthenticationFailed(EnclaveError):
    """Uniform failure: says nothing about which part was wrong or whether the account exists."""

    code = "authentication_failed"

    def __init__(self, message: str = "authentication failed") -> None:
        super().__init__(message)


class SecondFactorRequired(AuthenticationFailed):
    """Password accepted; a TOTP or recovery code must follow (web logins only)."""

    code = "second_factor_required"

    def __init__(self) -> None:
        super().__init__("second factor required")


class QuotaExceeded(EnclaveError):
    code = "quota_exceeded"


class Unavailable(EnclaveError):
    """The deployment cannot do this (yet): a feature its backends lack."""

    code = "unavailable"


class IntegrityError(EnclaveError):
    """Stored data failed an integrity check (decryption, hash chain, signature)."""

    code = "integrity"
