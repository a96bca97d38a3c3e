"""enclave domain ... and enclave alias ..."""

from __future__ import annotations

from dataclasses import asdict

import typer

from enclave.cli.common import DataOption, out, run, show

domains = typer.Typer(help="Mail domains of tenants.", no_args_is_help=True)
queue = typer.Typer(help="The outbound mail queue.", no_args_is_help=True)
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


@domains.command("dkim")
def domain_dkim(domain: str, data: str | None = DataOption) -> None:
    """Print the DKIM record to publish in DNS for a domain (the key is made on first use)."""
    name, value = run(data, lambda s, p: s.dkim.dns_record(domain))
    chunks = " ".join(f'"{value[i : i + 250]}"' for i in range(0, len(value), 250))
    typer.echo(f"{name}. IN TXT {chunks}")


@queue.command("list")
def queue_list(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."), data: str | None = DataOption
) -> None:
    """Messages waiting for remote delivery, one line per recipient."""
    items = run(data, lambda s, p: s.queue.list_items(p))
    show(
        [asdict(i) for i in items],
        [
            "queue_id",
            "id",
            "tenant",
            "mail_from",
            "recipient",
            "status",
            "attempts",
            "next_attempt_at",
            "last_error",
        ],
        as_json,
        "Outbound queue",
    )


@queue.command("retry")
def queue_retry(
    key: str = typer.Argument(..., help="Queue id or row id."), data: str | None = DataOption
) -> None:
    """Try again now."""
    count = run(data, lambda s, p: s.queue.retry(p, key))
    out.print(f"{count} recipient(s) will be tried again now")


@queue.command("delete")
def queue_delete(
    key: str = typer.Argument(..., help="Queue id or row id."), data: str | None = DataOption
) -> None:
    """Drop queued mail without notifying the sender."""
    count = run(data, lambda s, p: s.queue.delete(p, key))
    out.print(f"deleted {count} queued recipient(s)")


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
