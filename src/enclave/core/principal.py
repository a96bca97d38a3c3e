"""Who is acting: the value every core service checks before it does anything."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Realm(StrEnum):
    TENANT = "tenant"  # a tenant's own users
    OPERATOR = "operator"  # screened platform staff
    SYSTEM = "system"  # the host console: the CLI run on the machine that holds the keys


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"  # tenant administrator
    AUDITOR = "auditor"  # reads the tenant's audit log, nothing else


@dataclass(frozen=True)
class Principal:
    realm: Realm
    id: str
    name: str
    tenant_id: str | None = None
    roles: frozenset[Role] = field(default_factory=frozenset)
    # Lockbox grants (tenant id -> scope) arrive with the lockbox issue; operators hold none now.
    grants: tuple[str, ...] = ()
    # A session that must enrol a second factor before it may do anything else.
    restricted: bool = False

    @classmethod
    def system(cls, name: str) -> Principal:
        return cls(realm=Realm.SYSTEM, id=f"system:{name}", name=name)

    @property
    def label(self) -> str:
        return f"{self.realm.value}:{self.name}"
