"""Authentication for every front end: web logins, protocol clients, operators; sessions.

``Authenticator._guarded`` is the one door. It normalises the account name, applies the
per-account and per-address failure limits, audits every outcome, and on any failure waits until
a fixed time has passed before answering with one uniform error, so neither the reply nor its
timing tells whether the account exists, is locked, or the password was wrong. The ``_check_*``
hooks only decide; they cannot skip the protection.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, final

import pyotp

from enclave.backends.db.engine import Database
from enclave.backends.db.platform import Tx, transaction
from enclave.backends.db.scoped import TenantScope
from enclave.core import clock, passwords
from enclave.core.audit import AuditEvent, AuditLog
from enclave.core.errors import (
    AuthenticationFailed,
    EnclaveError,
    NotFound,
    SecondFactorRequired,
)
from enclave.core.identity import locate, totp_secret_purpose
from enclave.core.keys import KeyService
from enclave.core.operators import OperatorService
from enclave.core.principal import Principal, Realm, Role
from enclave.core.ratelimit import FailureLimiter


class _Refused(Exception):
    """Internal: why a login failed (for the audit log only, never for the client)."""

    def __init__(self, reason: str, tenant_id: str | None = None, denied: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.tenant_id = tenant_id
        self.denied = denied


@dataclass(frozen=True)
class Session:
    id: str  # the digest; the bearer token itself is never stored
    realm: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    source: str | None
    restricted: bool


# How often a session's last use is written (idle expiry is counted from it).
SEEN_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class SignedIn:
    token: str
    principal: Principal
    expires_at: datetime


def _user_principal(tenant_id: str, row: Any, restricted: bool = False) -> Principal:
    return Principal(
        realm=Realm.TENANT,
        id=row["id"],
        name=row["email"],
        tenant_id=tenant_id,
        roles=frozenset({Role(row["role"])}),
        restricted=restricted,
    )


def _operator_principal(row: Any) -> Principal:
    return Principal(realm=Realm.OPERATOR, id=row["id"], name=row["username"])


class Authenticator:
    def __init__(
        self,
        db: Database,
        keys: KeyService,
        audit: AuditLog,
        operators: OperatorService,
        limiter: FailureLimiter,
        *,
        failure_delay: float,
        session_ttl: timedelta,
        session_idle: timedelta = timedelta(hours=1),
    ) -> None:
        self._db = db
        self._keys = keys
        self._audit = audit
        self._operators = operators
        self._limiter = limiter
        self._delay = failure_delay
        self._ttl = session_ttl
        self._idle = session_idle

    @final
    async def _guarded(
        self,
        realm: Realm,
        account: str,
        source: str | None,
        action: str,
        check: Callable[[str], Awaitable[Principal]],
    ) -> Principal:
        started = time.monotonic()
        name = account.strip().lower()
        key = f"{realm.value}:{name}"
        try:
            if self._limiter.blocked(key, source):
                raise _Refused("too many failures: temporarily locked")
            principal = await check(name)
        except SecondFactorRequired:
            raise
        except (_Refused, EnclaveError) as exc:
            refusal = exc if isinstance(exc, _Refused) else _Refused("unknown account")
            self._limiter.failed(key, source)
            tenant_id = refusal.tenant_id or await self._tenant_of(realm, name)
            await self._audit.record_now(
                AuditEvent(
                    action=action,
                    target=f"{realm.value}:{name}"[:400],
                    outcome="denied" if refusal.denied else "failure",
                    actor=name[:320] or "anonymous",
                    realm=realm.value,
                    tenant_id=tenant_id,
                    reason=refusal.reason,
                    source=source,
                )
            )
            await asyncio.sleep(max(0.0, self._delay - (time.monotonic() - started)))
            raise AuthenticationFailed() from None
        self._limiter.succeeded(key)
        await self._audit.record_now(
            AuditEvent.by(principal, action, f"{realm.value}:{name}", source=source)
        )
        return principal

    async def _tenant_of(self, realm: Realm, name: str) -> str | None:
        """Whose log a refusal goes to: the tenant owning the address's domain, if any, so a
        tenant sees attempts on its accounts (lockouts and unknown names included)."""
        if realm is not Realm.TENANT or "@" not in name:
            return None
        async with transaction(self._db) as tx:
            return await tx.domains.tenant_of(name.rpartition("@")[2])

    # --- tenant users --------------------------------------------------------------------

    async def _user(self, email: str, *, apps: bool = False) -> tuple[Any, Any, list[Any]]:
        """The tenant, the user row and (if asked) the user's app passwords, read in a
        transaction that ends before any password is checked: argon2 runs in a thread and
        takes a while, and no connection or write lock may wait on it. An unknown account
        costs one argon2 run too."""
        try:
            async with transaction(self._db) as tx:
                tenant, scoped, row = await locate(tx, email)
                found = list(await scoped.app_passwords.for_user(row["id"])) if apps else []
        except EnclaveError:  # NotFound, or an address that is not one
            await passwords.verify_password_async(None, "")  # same cost as a real check
            raise _Refused("unknown account") from None
        return tenant, row, found

    @staticmethod
    def _usable(tenant: Any, row: Any) -> None:
        if tenant.status != "active":
            raise _Refused(f"tenant is {tenant.status}", tenant.id)
        if row["status"] != "active":
            raise _Refused(f"account is {row['status']}", tenant.id)

    async def _second_factor(self, tenant_id: str, row: Any, code: str | None) -> bool:
        if code is None:
            raise SecondFactorRequired()
        code = code.strip().replace(" ", "")
        secret = self._keys.open_secret(*totp_secret_purpose(row["id"]), row["totp_secret"])
        if code.isdigit() and pyotp.TOTP(secret.decode()).verify(code, valid_window=1):
            return True
        async with transaction(self._db, write=True) as tx:
            scoped = await tx.scoped(TenantScope(tenant_id))
            used = await scoped.recovery_codes.use(
                row["id"], passwords.digest(code.lower()), clock.now()
            )
        return bool(used)

    async def login_web(
        self, email: str, password: str, code: str | None = None, source: str | None = None
    ) -> SignedIn:
        """Password, then the second factor if enrolled. Opens a web session."""
        check = self._web_check(password, code)
        principal = await self._guarded(Realm.TENANT, email, source, "login.web", check)
        return await self._open_session(principal, source)

    def _web_check(self, password: str, code: str | None) -> Callable[[str], Awaitable[Principal]]:
        async def check(name: str) -> Principal:
            tenant, row, _ = await self._user(name)
            if not await passwords.verify_password_async(row["password_hash"], password):
                raise _Refused("wrong password", tenant.id)
            self._usable(tenant, row)
            if row["totp_enabled"] and not await self._second_factor(tenant.id, row, code):
                raise _Refused("wrong second factor", tenant.id)
            restricted = tenant.require_mfa and not row["totp_enabled"]
            return _user_principal(tenant.id, row, restricted)

        return check

    async def reauthenticate(
        self, principal: Principal, password: str, code: str | None = None,
        source: str | None = None,
    ) -> None:  # fmt: skip
        """A signed-in person proves again that it is them before a sensitive action: the
        checks of ``login_web`` (throttled, audited as ``reauth``), without a new session."""
        if principal.realm is not Realm.TENANT:
            raise AuthenticationFailed("authentication failed")
        check = self._web_check(password, code)
        confirmed = await self._guarded(Realm.TENANT, principal.name, source, "reauth", check)
        if confirmed.id != principal.id:
            raise AuthenticationFailed("authentication failed")

    async def login_protocol(
        self, email: str, secret: str, source: str | None = None, protocol: str = "protocol"
    ) -> Principal:
        """IMAP, SMTP and DAV clients. Once a second factor is enrolled (or the tenant demands
        one), only app passwords are accepted here."""

        async def check(name: str) -> Principal:
            tenant, row, apps = await self._user(name, apps=True)
            typed = passwords.digest(secret.strip().replace("-", "").lower())
            for app in apps:
                if passwords.same(app["secret_hash"], typed):
                    self._usable(tenant, row)
                    async with transaction(self._db, write=True) as tx:
                        scoped = await tx.scoped(TenantScope(tenant.id))
                        await scoped.app_passwords.touch(app["id"], clock.now())
                    return _user_principal(tenant.id, row)
            if not await passwords.verify_password_async(row["password_hash"], secret):
                raise _Refused("wrong password", tenant.id)
            self._usable(tenant, row)
            if row["totp_enabled"] or tenant.require_mfa:
                raise _Refused(
                    "main password refused for protocol clients: use an app password",
                    tenant.id,
                    denied=True,
                )
            return _user_principal(tenant.id, row)

        return await self._guarded(Realm.TENANT, email, source, f"login.{protocol}", check)

    # --- operators -----------------------------------------------------------------------

    async def login_operator(
        self, username: str, password: str, code: str, source: str | None = None
    ) -> SignedIn:
        """Password and TOTP, always; then the eligibility policy, refusing with its reason."""

        async def check(name: str) -> Principal:
            async with transaction(self._db) as tx:
                row = await tx.operators.by_username(name)
            if row is None:
                await passwords.verify_password_async(None, "")
                raise _Refused("unknown operator")
            if not await passwords.verify_password_async(row["password_hash"], password):
                raise _Refused("wrong password")
            if row["totp_secret"] is None:
                raise _Refused("no second factor enrolled", denied=True)
            secret = self._keys.open_secret("operator-totp", row["id"], row["totp_secret"])
            if not pyotp.TOTP(secret.decode()).verify((code or "").strip(), valid_window=1):
                raise _Refused("wrong second factor")
            principal = _operator_principal(row)
            problem = await self._operators.eligibility_problem(principal)
            if problem:
                raise _Refused(f"not eligible: {problem}", denied=True)
            return principal

        principal = await self._guarded(Realm.OPERATOR, username, source, "login.operator", check)
        return await self._open_session(principal, source)

    # --- sessions ------------------------------------------------------------------------

    async def _open_session(self, principal: Principal, source: str | None) -> SignedIn:
        token = secrets.token_urlsafe(32)
        now = clock.now()
        expires = now + self._ttl
        async with transaction(self._db, write=True) as tx:
            await tx.sessions.add(
                id=passwords.digest(token),
                realm=principal.realm.value,
                subject_id=principal.id,
                tenant_id=principal.tenant_id,
                restricted=principal.restricted,
                source=source,
                created_at=now,
                expires_at=expires,
            )
        return SignedIn(token=token, principal=principal, expires_at=expires)

    async def resolve(self, token: str, *, activity: bool = True) -> Principal:
        """The principal behind a session token, re-checked against the current records.
        A session ends at its absolute expiry, or once unused for the idle time; a request
        with ``activity`` counts as use (a live channel's heartbeat does not)."""
        now = clock.now()
        async with transaction(self._db) as tx:
            session = await tx.sessions.get(passwords.digest(token))
            if (
                session is None
                or session["revoked_at"] is not None
                or session["expires_at"] <= now
                or (session["last_seen_at"] or session["created_at"]) + self._idle <= now
            ):
                raise AuthenticationFailed("session expired or revoked")
            principal = await self._principal_of(tx, session)
        seen = session["last_seen_at"] or session["created_at"]
        if activity and now - seen >= SEEN_EVERY:  # one write a minute per session at most
            async with transaction(self._db, write=True) as tx:
                await tx.sessions.seen(session["id"], now)
        return principal

    @staticmethod
    async def _principal_of(tx: Tx, session: Any) -> Principal:
        """Who a live session is, if they (and their tenant) may still act."""
        if session["realm"] == Realm.OPERATOR.value:
            row = await tx.operators.by_id(session["subject_id"])
            if row is None or row["status"] != "active":
                raise AuthenticationFailed("session expired or revoked")
            return _operator_principal(row)
        tenant = await tx.tenants.by_id(session["tenant_id"])
        scoped = await tx.scoped(TenantScope(session["tenant_id"]))
        row = await scoped.users.by_id(session["subject_id"])
        if tenant is None or row is None or tenant["status"] != "active":
            raise AuthenticationFailed("session expired or revoked")
        if row["status"] != "active":
            raise AuthenticationFailed("session expired or revoked")
        restricted = bool(session["restricted"]) and not row["totp_enabled"]
        return _user_principal(tenant["id"], row, restricted)

    async def logout(self, token: str) -> None:
        async with transaction(self._db, write=True) as tx:
            await tx.sessions.revoke([passwords.digest(token)], clock.now())

    async def sessions(self, principal: Principal) -> list[Session]:
        async with transaction(self._db) as tx:
            rows = await tx.sessions.of_subject(principal.realm.value, principal.id)
        now = clock.now()
        return [
            Session(
                id=r["id"][:16],
                realm=r["realm"],
                created_at=r["created_at"],
                expires_at=r["expires_at"],
                revoked_at=r["revoked_at"],
                source=r["source"],
                restricted=bool(r["restricted"]),
            )
            for r in rows
            if r["revoked_at"] is None and r["expires_at"] > now
        ]

    async def revoke_session(self, principal: Principal, session_prefix: str) -> None:
        """End one of the principal's own sessions, named by the id ``sessions`` shows."""
        async with transaction(self._db, write=True) as tx:
            rows = await tx.sessions.of_subject(principal.realm.value, principal.id)
            now = clock.now()
            match = [
                r["id"]
                for r in rows
                if r["id"].startswith(session_prefix)
                and r["revoked_at"] is None
                and r["expires_at"] > now
            ]
            if len(session_prefix) < 8 or len(match) != 1:
                raise NotFound("no such session")
            await tx.sessions.revoke(match, clock.now())
            await self._audit.record(
                tx, AuditEvent.by(principal, "session.revoke", f"session:{session_prefix}")
            )

    async def purge_expired_sessions(self) -> int:
        async with transaction(self._db, write=True) as tx:
            return await tx.sessions.purge_expired(clock.now())
