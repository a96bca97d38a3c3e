"""enclave domain ... and enclave alias ..."""

from __future__ import annotations

import typer

from enclave.cli.common import DataOption, out, run, show

domains = typer.Typer(help="Mail domains of tenants.", no_args_is_help=True)
aliases = typer.Typer(help="Extra addresses that deliver to a user.", no_args_is_help=True)


@domains.command("add")
def domain_add(
    domain: str, tenant: str = typer.Option(..., "--tenant"), data: str | None = DataOption
) -> None:
    """Give a tenant another mail domain."""
    run(data, lambda s, p: s.tenants.add_domain(p, tenant, domain))
    out.print(f"{domain} now belongs to {tenant}")


@domains.command("list")
def domain_list(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."), data: str | None = DataOption
) -> None:
    """List every mail domain and its tenant."""
    tenants = run(data, lambda s, p: s.tenants.list_tenants(p))
    rows = [{"domain": d, "tenant": t.name} for t in tenants for d in t.domains]
    show(rows, ["domain", "tenant"], as_json, "Domains")


@aliases.command("add")
def alias_add(alias: str, email: str, data: str | None = DataOption) -> None:
    """Deliver mail for ALIAS to the user EMAIL (same tenant)."""
    run(data, lambda s, p: s.mail_router.add_alias(p, alias, email))
    out.print(f"{alias} -> {email}")


@aliases.command("list")
def alias_list(
    tenant: str = typer.Option(..., "--tenant"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    data: str | None = DataOption,
) -> None:
    """List a tenant's aliases."""
    found = run(data, lambda s, p: s.mail_router.aliases(p, tenant))
    show([{"alias": a, "user": u} for a, u in found], ["alias", "user"], as_json, "Aliases")


@aliases.command("remove")
def alias_remove(alias: str, data: str | None = DataOption) -> None:
    """Remove an alias."""
    run(data, lambda s, p: s.mail_router.remove_alias(p, alias))
    out.print(f"removed {alias}")
