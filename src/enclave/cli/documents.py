"""enclave library ... and enclave label ...: document libraries and classification labels."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

import typer

from enclave.cli.common import DataOption, out, run, show
from enclave.core.bounds import INT64_MAX
from enclave.core.documents.libraries import MAX_KEEP_DAYS
from enclave.core.principal import Principal
from enclave.services import Services

libraries = typer.Typer(help="Document libraries of tenants.", no_args_is_help=True)
labels = typer.Typer(help="Classification labels of tenants.", no_args_is_help=True)

TenantOption = typer.Option(..., "--tenant", help="Tenant name.")


@libraries.command("create")
def library_create(
    name: str,
    tenant: str = TenantOption,
    quota: int | None = typer.Option(
        None, "--quota-bytes", min=0, max=INT64_MAX, help="Size limit, all versions."
    ),
    keep_versions: int | None = typer.Option(
        None, "--keep-versions", min=1, max=INT64_MAX, help="Keep N versions."
    ),
    keep_days: int | None = typer.Option(
        None, "--keep-days", min=1, max=MAX_KEEP_DAYS, help="Keep versions D days."
    ),
    data: str | None = DataOption,
) -> None:
    """Create a shared library."""

    async def create(s: Services, p: Principal) -> Any:
        found = await s.tenants.get(tenant)
        return await s.libraries.create(
            p, found.id, name, quota_bytes=quota, keep_versions=keep_versions, keep_days=keep_days
        )

    library = run(data, create)
    out.print(f"library {library.name} created ({library.id})")


@libraries.command("list")
def library_list(
    tenant: str = TenantOption,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    data: str | None = DataOption,
) -> None:
    """List a tenant's libraries (personal ones are named by their owner)."""

    async def listing(s: Services, p: Principal) -> Any:
        return await s.libraries.all_of(p, (await s.tenants.get(tenant)).id)

    rows = [asdict(lib) | {"personal": lib.personal} for lib in run(data, listing)]
    for row in rows:
        row.pop("level")
    show(rows, ["name", "personal", "quota_bytes", "keep_versions", "keep_days", "id"], as_json,
         "Libraries")  # fmt: skip


@libraries.command("grant")
def library_grant(
    library: str,
    level: str = typer.Argument(..., help="read, write or manage."),
    tenant: str = TenantOption,
    path: str = typer.Option("", "--path", help="A folder (default: the whole library)."),
    user: str | None = typer.Option(None, "--user", help="A user's address."),
    group: str | None = typer.Option(None, "--group", help="A group's name."),
    everyone: bool = typer.Option(False, "--everyone", help="Everyone in the tenant."),
    data: str | None = DataOption,
) -> None:
    """Give a user, a group or everyone access to a library or one of its folders."""
    chosen = [kind for kind, on in (("user", user), ("group", group), ("tenant", everyone)) if on]
    if len(chosen) != 1:
        raise typer.BadParameter("name exactly one of --user, --group, --everyone")

    async def grant(s: Services, p: Principal) -> Any:
        tenant_id = (await s.tenants.get(tenant)).id
        found = await s.libraries.named(p, tenant_id, library)
        return await s.libraries.grant(
            p, tenant_id, found.id, path, chosen[0], user or group, level
        )

    run(data, grant)
    out.print(f"{chosen[0]} {user or group or '*'} has {level} on {library}/{path}")


@libraries.command("hold")
def library_hold(
    library: str,
    path: str = typer.Argument("", help="Document or folder (default: the whole library)."),
    tenant: str = TenantOption,
    on: bool | None = typer.Option(None, "--on/--off", help="Set or lift a legal hold."),
    until: datetime | None = typer.Option(None, "--retain-until", help="Retention date (UTC)."),
    data: str | None = DataOption,
) -> None:
    """Put a legal hold or a retention date on a document or folder."""
    if on is None and until is None:
        raise typer.BadParameter("give --on/--off or --retain-until")
    when = until.astimezone() if until and until.tzinfo is None else until

    async def hold(s: Services, p: Principal) -> Any:
        tenant_id = (await s.tenants.get(tenant)).id
        found = await s.libraries.named(p, tenant_id, library)
        await s.libraries.hold(p, tenant_id, found.id, path, legal_hold=on, retain_until=when)

    run(data, hold)
    out.print(f"{library}/{path}: hold updated")


@labels.command("define")
def label_define(
    name: str,
    rank: int = typer.Option(
        ..., "--rank", min=-INT64_MAX - 1, max=INT64_MAX, help="Higher is more sensitive."
    ),
    tenant: str = TenantOption,
    managed_only: bool = typer.Option(
        False, "--managed-download-only", help="Downloads only to managed clients."
    ),
    share_group: str | None = typer.Option(None, "--share-group", help="Share only within it."),
    data: str | None = DataOption,
) -> None:
    """Add or change a classification label."""

    async def define(s: Services, p: Principal) -> Any:
        tenant_id = (await s.tenants.get(tenant)).id
        return await s.labels.define(
            p, tenant_id, name, rank, managed_download_only=managed_only, share_group=share_group
        )

    run(data, define)
    out.print(f"label {name} defined")


@labels.command("remove")
def label_remove(name: str, tenant: str = TenantOption, data: str | None = DataOption) -> None:
    """Remove a label no document carries."""

    async def remove(s: Services, p: Principal) -> Any:
        await s.labels.remove(p, (await s.tenants.get(tenant)).id, name)

    run(data, remove)
    out.print(f"label {name} removed")
