"""Who may do what in a library. Pure: the caller reads the rows, this decides.

Levels are ordered: ``read`` (list, download, see versions), ``write`` (upload, create, rename,
move, delete to trash, restore versions) and ``manage`` (grants, holds, purge, break locks). A
grant on a folder covers everything below it; on the library (no node), the whole tree. The
level a principal has at a node is the highest of its grants along the path to the root.

Nobody has standing access to a personal library but its owner: a tenant administrator manages
shared libraries, not colleagues' files, and reaches a personal library only through a grant
like anyone else.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum
from typing import Any

from enclave.core.errors import Invalid
from enclave.core.principal import Principal, Realm, Role


class Level(IntEnum):
    NONE = 0
    READ = 1
    WRITE = 2
    MANAGE = 3

    @classmethod
    def named(cls, name: str) -> Level:
        try:
            level = cls[name.upper()]
        except KeyError:
            raise Invalid(f"no access level {name!r} (read, write, manage)") from None
        if level is cls.NONE:
            raise Invalid("a grant needs a level (read, write, manage)")
        return level


def applies(grant: Any, principal: Principal, groups: Iterable[str]) -> bool:
    kind, subject = grant["subject_kind"], grant["subject_id"]
    return (
        kind == "tenant"
        or (kind == "user" and subject == principal.id)
        or (kind == "group" and subject in set(groups))
    )


def standing(principal: Principal, library: Any) -> Level | None:
    """The principal's level everywhere in the library when no grant can change it (none
    for another tenant or a restricted session, manage for a personal library's owner and
    for a tenant administrator in a shared one); None when the grants decide."""
    if (
        principal.realm is not Realm.TENANT
        or principal.tenant_id != library["tenant_id"]
        or principal.restricted
    ):
        return Level.NONE
    if library["owner_id"] is not None and library["owner_id"] == principal.id:
        return Level.MANAGE
    if library["owner_id"] is None and Role.ADMIN in principal.roles:
        return Level.MANAGE
    return None


def needs_groups(grants: Iterable[Any]) -> bool:
    """Whether any of these grants names a group (only then do the principal's groups count)."""
    return any(grant["subject_kind"] == "group" for grant in grants)


def level_at(
    principal: Principal,
    library: Any,
    chain: list[str],
    grants: Iterable[Any],
    groups: Iterable[str],
) -> Level:
    """The principal's level at a node, given the node ids from the root down to it."""
    fixed = standing(principal, library)
    if fixed is not None:
        return fixed
    on_path = set(chain)
    group_ids = list(groups)
    best = Level.NONE
    for grant in grants:
        if (grant["node_id"] is None or grant["node_id"] in on_path) and applies(
            grant, principal, group_ids
        ):
            best = max(best, Level.named(grant["level"]))
    return best
