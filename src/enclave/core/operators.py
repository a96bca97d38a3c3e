"""Platform operators: a realm apart from tenant users, screened against the deployment's
eligibility policy at login and again at every action."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pyotp

from enclave.backends.db.engine import Database
from enclave.backends.db.platform import transaction
from enclave.core import clock, passwords
from enclave.core.audit import AuditEvent, AuditLog
from enclave.core.errors import Conflict, Invalid, NotFound
from enclave.core.keys import KeyService
from enclave.core.principal import Principal, Realm


@dataclass(frozen=True)
class EligibilityPolicy:
    """What the deployment demands of anyone who operates it. Empty fields demand nothing."""

    citizenship: tuple[str, ...] = ()
    check_levels: tuple[str, ...] = ("tier1", "tier2", "tier3", "tier4", "tier5")
    min_check_level: str | None = None
    max_check_age_days: int | None = None
    max_training_age_days: int | None = None
    require_mfa: bool = True

    def problems(self, op: Operator, today: date) -> list[str]:
        found = []
        if op.status != "active":
            found.append(f"account is {op.status}")
        if self.citizenship and (op.citizenship or "").upper() not in {
            c.upper() for c in self.citizenship
        }:
            found.append(f"citizenship {op.citizenship or 'unknown'} not in policy")
        if self.min_check_level is not None:
            need = self.check_levels.index(self.min_check_level)
            have = (
                self.check_levels.index(op.check_level)
                if op.check_level in self.check_levels
                else -1
            )
            if have < need:
                found.append(
                    f"background check {op.check_level or 'none'} below {self.min_check_level}"
                )
        if self.max_check_age_days is not None and (
            op.check_date is None or today - op.check_date > timedelta(days=self.max_check_age_days)
        ):
            found.append(f"background check older than {self.max_check_age_days} days")
        if self.max_training_age_days is not None and (
            op.training_date is None
            or today - op.training_date > timedelta(days=self.max_training_age_days)
        ):
            found.append(f"training older than {self.max_training_age_days} days")
        if self.require_mfa and not op.has_mfa:
            found.append("no second factor enrolled")
        return found


@dataclass(frozen=True)
class Operator:
    id: str
    username: str
    display_name: str
    status: str
    citizenship: str | None
    check_level: str | None
    check_date: date | None
    training_date: date | None
    has_mfa: bool
    created_at: datetime
    problems: tuple[str, ...] = field(default=())

    @classmethod
    def from_row(cls, row: Any) -> Operator:
        return cls(
            id=row["id"],
            username=row["username"],
            display_name=row["display_name"],
            status=row["status"],
            citizenship=row["citizenship"],
            check_level=row["check_level"],
            check_date=row["check_date"],
            training_date=row["training_date"],
            has_mfa=row["totp_secret"] is not None,
            created_at=row["created_at"],
        )


SCREENING_FIELDS = ("citizenship", "check_level", "check_date", "training_date")


class OperatorService:
    def __init__(
        self, db: Database, keys: KeyService, audit: AuditLog, policy: EligibilityPolicy
    ) -> None:
        self._db = db
        self._keys = keys
        self._audit = audit
        self.policy = policy

    def _assess(self, op: Operator) -> Operator:
        return Operator(**{**op.__dict__, "problems": tuple(self.policy.problems(op, _today()))})

    async def get(self, username: str) -> Operator:
        async with transaction(self._db) as tx:
            row = await tx.operators.by_username(username)
        if row is None:
            raise NotFound(f"no operator {username!r}")
        return self._assess(Operator.from_row(row))

    async def list_operators(self) -> list[Operator]:
        async with transaction(self._db) as tx:
            return [self._assess(Operator.from_row(r)) for r in await tx.operators.all()]

    async def add(
        self, actor: Principal, username: str, display_name: str, password: str
    ) -> tuple[Operator, str]:
        """A new operator with password and TOTP; returns the TOTP provisioning URI (shown
        once, to be scanned into the operator's authenticator)."""
        if actor.realm is not Realm.SYSTEM:
            raise Invalid("operators are added from the host console")
        username = username.strip().lower()
        if not username.isidentifier() and not username.replace("-", "").isalnum():
            raise Invalid(f"operator name {username!r}: letters, digits, '-' and '_' only")
        operator_id = str(uuid.uuid4())
        secret = pyotp.random_base32()
        password_hash = await passwords.hash_password_async(password)  # before the write lock
        async with transaction(self._db, write=True) as tx:
            if await tx.operators.by_username(username):
                raise Conflict(f"operator {username!r} already exists")
            await tx.operators.add(
                id=operator_id,
                username=username,
                display_name=display_name or username,
                status="active",
                password_hash=password_hash,
                totp_secret=self._keys.seal_secret("operator-totp", operator_id, secret.encode()),
                created_at=clock.now(),
            )
            await self._audit.record(
                tx, AuditEvent.by(actor, "operator.add", f"operator:{username}")
            )
        uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name="Enclave operators")
        return await self.get(username), uri

    async def screen(self, actor: Principal, username: str, **values: Any) -> Operator:
        """Record screening attributes (host console only: it is the vetting authority's act)."""
        if actor.realm is not Realm.SYSTEM:
            raise Invalid("screening is recorded from the host console")
        changes = {k: v for k, v in values.items() if k in SCREENING_FIELDS and v is not None}
        if "citizenship" in changes:
            changes["citizenship"] = str(changes["citizenship"]).upper()
        if not changes:
            raise Invalid("nothing to change")
        async with transaction(self._db, write=True) as tx:
            row = await tx.operators.by_username(username)
            if row is None:
                raise NotFound(f"no operator {username!r}")
            await tx.operators.change(row["id"], **changes)
            await self._audit.record(
                tx,
                AuditEvent.by(
                    actor,
                    "operator.screen",
                    f"operator:{username}",
                    reason=", ".join(f"{k}={v}" for k, v in sorted(changes.items())),
                ),
            )
        return await self.get(username)

    async def set_status(self, actor: Principal, username: str, status: str) -> Operator:
        if actor.realm is not Realm.SYSTEM:
            raise Invalid("operator accounts are managed from the host console")
        async with transaction(self._db, write=True) as tx:
            row = await tx.operators.by_username(username)
            if row is None:
                raise NotFound(f"no operator {username!r}")
            await tx.operators.change(row["id"], status=status)
            await tx.sessions.revoke_subject(Realm.OPERATOR.value, row["id"], clock.now())
            await self._audit.record(
                tx, AuditEvent.by(actor, f"operator.{status}", f"operator:{username}")
            )
        return await self.get(username)

    async def eligibility_problem(self, principal: Principal) -> str | None:
        """The check at every use: the record is read afresh, the policy applied today."""
        async with transaction(self._db) as tx:
            row = await tx.operators.by_id(principal.id)
        if row is None:
            return "operator account no longer exists"
        problems = self.policy.problems(Operator.from_row(row), _today())
        return "; ".join(problems) if problems else None


def _today() -> date:
    return clock.now().date()
