"""enclave operator ..."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from pathlib import Path

import typer

from enclave.cli.common import DataOption, out, read_password, run, show
from enclave.cli.users import PasswordFile, PasswordStdin

app = typer.Typer(help="Platform operators and their screening.", no_args_is_help=True)


@app.command("add")
def add(
    username: str,
    name: str = typer.Option("", "--name", help="Display name."),
    password_file: Path | None = PasswordFile,
    password_stdin: bool = PasswordStdin,
    data: str | None = DataOption,
) -> None:
    """Add an operator with a password and a TOTP second factor (shown once)."""
    password = read_password(password_file, password_stdin, "Operator password")
    operator, uri = run(data, lambda s, p: s.operators.add(p, username, name, password))
    out.print(f"added operator {operator.username}. Scan into their authenticator:")
    typer.echo(uri)
    if operator.problems:
        out.print("Not yet eligible to operate: " + "; ".join(operator.problems))


@app.command("list")
def list_(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    data: str | None = DataOption,
) -> None:
    """List operators with their screening and whether they meet the policy today."""
    operators = run(data, lambda s, p: s.operators.list_operators())
    rows = [asdict(o) | {"eligible": not o.problems} for o in operators]
    if not as_json:
        rows = [row | {"problems": "; ".join(row["problems"])} for row in rows]
    show(
        rows,
        [
            "username",
            "status",
            "citizenship",
            "check_level",
            "check_date",
            "training_date",
            "eligible",
            "problems",
        ],
        as_json,
        "Operators",
    )


def _date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


@app.command("screen")
def screen(
    username: str,
    citizenship: str | None = typer.Option(None, help="ISO country code, e.g. US."),
    check_level: str | None = typer.Option(None, help="Background check level, e.g. tier3."),
    check_date: str | None = typer.Option(None, help="Date of the last check (YYYY-MM-DD)."),
    training_date: str | None = typer.Option(None, help="Date of the last training."),
    data: str | None = DataOption,
) -> None:
    """Record an operator's screening attributes."""
    operator = run(
        data,
        lambda s, p: s.operators.screen(
            p,
            username,
            citizenship=citizenship,
            check_level=check_level,
            check_date=_date(check_date),
            training_date=_date(training_date),
        ),
    )
    verdict = (
        "eligible" if not operator.problems else "NOT eligible: " + "; ".join(operator.problems)
    )
    out.print(f"{operator.username}: {verdict}")


@app.command("suspend")
def suspend(username: str, data: str | None = DataOption) -> None:
    """Suspend an operator (sessions end at once)."""
    run(data, lambda s, p: s.operators.set_status(p, username, "suspended"))
    out.print(f"suspended {username}")


@app.command("activate")
def activate(username: str, data: str | None = DataOption) -> None:
    """Re-activate a suspended operator."""
    run(data, lambda s, p: s.operators.set_status(p, username, "active"))
    out.print(f"activated {username}")
