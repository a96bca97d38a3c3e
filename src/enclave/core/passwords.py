"""Password hashing (argon2id), random secrets and token digests.

One argon2 run takes about 0.15 s of CPU and 64 MiB (argon2-cffi's defaults: t=3, m=64 MiB,
p=4). Servers call the ``*_async`` forms: they run in a pool of threads of their own, at most
``MAX_CONCURRENT`` at once, so logins never stall the event loop, a flood of them queues here
(bounded memory) instead of taking the shared default executor, and mail keeps flowing.
Those threads (and the lanes argon2 starts from them) run at a lower scheduling priority: a
burst of logins on a small machine would otherwise take every core from the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor

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


MAX_CONCURRENT = max(2, os.cpu_count() or 2)
LOWER_PRIORITY = 10  # nice increment; threads argon2 starts inherit it


def _lower_priority() -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOWER_PRIORITY)
    except (AttributeError, OSError):  # not Linux, or not allowed: fair scheduling it is
        pass


_pool = ThreadPoolExecutor(
    max_workers=MAX_CONCURRENT, thread_name_prefix="enclave-argon2", initializer=_lower_priority
)


async def hash_password_async(password: str) -> str:
    """``hash_password`` off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(_pool, hash_password, password)


async def verify_password_async(stored: str | None, password: str) -> bool:
    """``verify_password`` off the event loop (the same cost whether or not ``stored`` is
    None: unknown accounts queue and wait like known ones)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool, verify_password, stored, password)


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
