"""Password hashing (argon2id), random secrets and token digests."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from enclave.core.errors import Invalid

MIN_LENGTH = 10
_hasher = PasswordHasher(type=Type.ID)
# Verified against when an account does not exist, so both paths cost one argon2 run.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise Invalid(f"password must have at least {MIN_LENGTH} characters")
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Constant work whether or not there is a stored hash."""
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)


def digest(token: str) -> str:
    """SHA-256 of a high-entropy token (session ids, app passwords, recovery codes)."""
    return hashlib.sha256(token.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def app_password() -> str:
    """Four groups of four lowercase letters and digits: easy to type into a phone."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    raw = "".join(secrets.choice(alphabet) for _ in range(20))
    return "-".join(raw[i : i + 5] for i in range(0, 20, 5))


def random_password() -> str:
    return secrets.token_urlsafe(15)
