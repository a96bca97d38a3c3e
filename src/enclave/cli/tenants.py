"""enclave tenant ..."""

from __future__ import annotations

from dataclasses import asdict

import typer

from enclave.cli.common import DataOption, out, run, show
from enclave.core.tenancy import ACTIVE, SUSPENDED

app = typer.Typer(help="Create, list, suspend and delete tenants.", no_args_is_help=True)


@app.command("create")
def create(
    name: str,
    domain: list[str] = typer.Option(..., "--domain", help="Mail domain (repeatable)."),
    quota: int | None = typer.Option(None, help="Default per-user quota in MiB."),
    data: str | None = DataOption,
) -> None:
    """Create a tenant with its own keys and one or more mail domains."""
    quota_bytes = quota * 1024 * 1024 if quota is not None else None
    tenant = run(data, lambda s, p: s.tenants.create(p, name, domain, quota_bytes))
    out.print(f"created tenant {tenant.name} ({tenant.id}) for {', '.join(tenant.domains)}")


@app.command("list")
def list_(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    data: str | None = DataOption,
) -> None:
    """List tenants."""
    tenants = run(data, lambda s, p: s.tenants.list_tenants(p))
    rows = [asdict(t) | {"domains": ", ".join(t.domains)} for t in tenants]
    if as_json:
        rows = [asdict(t) for t in tenants]
    show(rows, ["name", "id", "status", "domains", "users", "require_mfa"], as_json, "Tenants")


@app.command("suspend")
def suspend(name: str, data: str | None = DataOption) -> None:
    """Suspend a tenant: its users can no longer sign in; nothing is deleted."""
    run(data, lambda s, p: s.tenants.set_status(p, name, SUSPENDED))
    out.print(f"suspended {name}")


@app.command("resume")
def resume(name: str, data: str | None = DataOption) -> None:
    """Lift a suspension."""
    run(data, lambda s, p: s.tenants.set_status(p, name, ACTIVE))
    out.print(f"resumed {name}")


@app.command("add-domain")
def add_domain(name: str, domain: str, data: str | None = DataOption) -> None:
    """Give a tenant another mail domain."""
    run(data, lambda s, p: s.tenants.add_domain(p, name, domain))
    out.print(f"{domain} now belongs to {name}")


@app.command("require-mfa")
def require_mfa(
    name: str,
    required: bool = typer.Option(True, "--on/--off", help="Require a second factor."),
    data: str | None = DataOption,
) -> None:
    """Require (or stop requiring) a second factor for every user of the tenant."""
    run(data, lambda s, p: s.tenants.require_mfa(p, name, required))
    out.print(f"second factor {'required' if required else 'optional'} for {name}")


@app.command("delete")
def delete(
    name: str,
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
    data: str | None = DataOption,
) -> None:
    """Delete a tenant: its keys are destroyed first (crypto-shredding), then its data."""
    if not yes:
        typer.confirm(
            f"Destroy tenant {name} and all of its data? This cannot be undone", abort=True
        )
    run(data, lambda s, p: s.tenants.delete(p, name))
    out.print(f"deleted {name}; its keys are destroyed")
