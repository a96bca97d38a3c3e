"""enclave user ... and enclave group ..."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import typer

from enclave.cli.common import DataOption, out, read_password, run, show
from enclave.core.principal import Role

app = typer.Typer(help="Manage tenant users.", no_args_is_help=True)
app_passwords = typer.Typer(
    help="App passwords for mail, calendar and file clients.", no_args_is_help=True
)
mfa = typer.Typer(help="Second factor (TOTP).", no_args_is_help=True)
groups = typer.Typer(help="Groups: distribution lists and permission sets.", no_args_is_help=True)
app.add_typer(app_passwords, name="app-password")
app.add_typer(mfa, name="mfa")

PasswordFile = typer.Option(None, "--password-file", help="Read the password from this file.")
PasswordStdin = typer.Option(False, "--password-stdin", help="Read the password from stdin.")


@app.command("add")
def add(
    email: str,
    name: str = typer.Option("", "--name", help="Display name."),
    admin: bool = typer.Option(False, "--admin", help="Tenant administrator."),
    auditor: bool = typer.Option(False, "--auditor", help="Tenant auditor (audit log only)."),
    quota: int | None = typer.Option(None, help="Quota in MiB (default: the tenant's)."),
    no_password: bool = typer.Option(False, "--no-password", help="Set the password later."),
    password_file: Path | None = PasswordFile,
    password_stdin: bool = PasswordStdin,
    data: str | None = DataOption,
) -> None:
    """Add a user; the tenant is the one that owns the address's domain."""
    role = Role.ADMIN if admin else Role.AUDITOR if auditor else Role.USER
    password = None if no_password else read_password(password_file, password_stdin, "Password")
    quota_bytes = quota * 1024 * 1024 if quota is not None else None
    user = run(
        data,
        lambda s, p: s.users.add(
            p, email, display_name=name, password=password, role=role, quota_bytes=quota_bytes
        ),
    )
    out.print(f"added {user.email} ({user.role})")


@app.command("list")
def list_(
    tenant: str = typer.Option(..., "--tenant", help="Tenant name."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    data: str | None = DataOption,
) -> None:
    """List a tenant's users."""
    users = run(data, lambda s, p: s.users.list_users(p, tenant))
    show(
        [asdict(u) for u in users],
        ["email", "display_name", "role", "status", "mfa"],
        as_json,
        f"Users of {tenant}",
    )


@app.command("disable")
def disable(email: str, data: str | None = DataOption) -> None:
    """Disable a user: sign-ins refused, sessions ended; nothing deleted."""
    run(data, lambda s, p: s.users.set_status(p, email, "disabled"))
    out.print(f"disabled {email}")


@app.command("enable")
def enable(email: str, data: str | None = DataOption) -> None:
    """Re-enable a disabled user."""
    run(data, lambda s, p: s.users.set_status(p, email, "active"))
    out.print(f"enabled {email}")


@app.command("passwd")
def passwd(
    email: str,
    password_file: Path | None = PasswordFile,
    password_stdin: bool = PasswordStdin,
    data: str | None = DataOption,
) -> None:
    """Set a user's password (their sessions end)."""
    password = read_password(password_file, password_stdin, "New password")
    run(data, lambda s, p: s.users.set_password(p, email, password))
    out.print(f"password changed for {email}")


@app_passwords.command("add")
def app_password_add(
    email: str,
    name: str = typer.Option(..., "--name", help="Which client or device it is for."),
    data: str | None = DataOption,
) -> None:
    """Create an app password; it is shown once."""
    app_pw, secret = run(data, lambda s, p: s.users.add_app_password(p, email, name))
    out.print(f"app password {app_pw.name!r} ({app_pw.id[:8]}) for {email}, shown once:")
    typer.echo(secret)


@app_passwords.command("list")
def app_password_list(
    email: str,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    data: str | None = DataOption,
) -> None:
    """List a user's app passwords (never their secrets)."""
    apps = run(data, lambda s, p: s.users.list_app_passwords(p, email))
    show(
        [asdict(a) for a in apps],
        ["id", "name", "created_at", "last_used_at"],
        as_json,
        f"App passwords of {email}",
    )


@app_passwords.command("revoke")
def app_password_revoke(
    email: str,
    app_id: str = typer.Argument(..., help="Id (or its first 8 characters) or name."),
    data: str | None = DataOption,
) -> None:
    """Revoke an app password: clients using it are refused from now on."""
    run(data, lambda s, p: s.users.revoke_app_password(p, email, app_id))
    out.print(f"revoked {app_id}")


@mfa.command("enroll")
def mfa_enroll(
    email: str,
    code: str | None = typer.Option(None, "--code", help="A code from the authenticator."),
    data: str | None = DataOption,
) -> None:
    """Enrol a TOTP authenticator: shows the secret, then asks for a code to confirm it."""
    enrolment = run(data, lambda s, p: s.users.begin_mfa(p, email))
    out.print("Add this to the authenticator app (or scan the URI as a QR code):")
    typer.echo(f"secret: {enrolment.secret}")
    typer.echo(f"uri:    {enrolment.uri}")
    typed = code or typer.prompt("Code from the authenticator")
    codes = run(data, lambda s, p: s.users.confirm_mfa(p, email, typed))
    out.print("Second factor enabled. Recovery codes (each works once; keep them safe):")
    for recovery in codes:
        typer.echo(f"  {recovery}")


@mfa.command("reset")
def mfa_reset(email: str, data: str | None = DataOption) -> None:
    """Remove a user's second factor (lost device); they must enrol again."""
    run(data, lambda s, p: s.users.reset_mfa(p, email))
    out.print(f"second factor removed for {email}")


@groups.command("add")
def group_add(
    tenant: str,
    name: str,
    address: str | None = typer.Option(None, "--address", help="Distribution address."),
    data: str | None = DataOption,
) -> None:
    """Create a group in a tenant."""
    run(data, lambda s, p: s.users.add_group(p, tenant, name, address))
    out.print(f"group {name} created in {tenant}")


@groups.command("add-member")
def group_add_member(tenant: str, name: str, email: str, data: str | None = DataOption) -> None:
    """Add a user to a group."""
    run(data, lambda s, p: s.users.add_member(p, tenant, name, email))
    out.print(f"{email} is now in {name}")


@groups.command("list")
def group_list(
    tenant: str,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    data: str | None = DataOption,
) -> None:
    """List a tenant's groups and members."""
    found = run(data, lambda s, p: s.users.groups(p, tenant))
    rows = [g | {"members": ", ".join(g["members"])} for g in found] if not as_json else found
    show(rows, ["name", "address", "members"], as_json, f"Groups of {tenant}")
