"""What every command shares: loading the deployment, running a service call, errors and
exit codes, password input, list output."""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from enclave.app import open_services
from enclave.config import ConfigError, Settings, load_settings, resolve_data_dir
from enclave.core import errors
from enclave.core.principal import Principal
from enclave.services import Services

T = TypeVar("T")
# No markup: names and messages come from users and must print literally.
out = Console(soft_wrap=True, markup=False, highlight=False)
err = Console(stderr=True, soft_wrap=True, markup=False, highlight=False)

DataOption = typer.Option(
    None, "--data", envvar="ENCLAVE_DATA", help="Deployment directory (default: $ENCLAVE_DATA)."
)

# Exit codes: one per kind of failure, so scripts can tell them apart.
EXIT: dict[type[Exception], int] = {
    errors.Invalid: 2,
    ConfigError: 3,
    errors.NotFound: 4,
    errors.Conflict: 5,
    errors.Forbidden: 6,
    errors.AuthenticationFailed: 7,
    errors.IntegrityError: 8,
    errors.EnclaveError: 1,
}


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(Text("error: ", style="bold red") + Text(message))
    raise typer.Exit(code)


def exit_code(exc: Exception) -> int:
    for cls in type(exc).__mro__:
        if cls in EXIT:
            return EXIT[cls]
    return 1


def settings_for(data: str | Path | None) -> Settings:
    try:
        return load_settings(resolve_data_dir(data))
    except ConfigError as exc:
        fail(str(exc), EXIT[ConfigError])


def console_principal() -> Principal:
    return Principal.system(getpass.getuser())


def run(data: str | Path | None, call: Callable[[Services, Principal], Awaitable[T]]) -> T:
    """Open the deployment, run one service call as the host console, close, map errors."""
    settings = settings_for(data)

    async def main() -> T:
        async with open_services(settings) as services:
            return await call(services, console_principal())

    try:
        return asyncio.run(main())
    except (errors.EnclaveError, ConfigError) as exc:
        fail(str(exc), exit_code(exc))
    except PermissionError as exc:
        fail(str(exc), 3)


def read_password(password_file: Path | None, password_stdin: bool, prompt: str) -> str:
    """From a file, from standard input, or typed twice at a prompt; never from an argument."""
    if password_file is not None and password_stdin:
        fail("use either --password-file or --password-stdin", 2)
    if password_file is not None:
        try:
            value = (
                password_file.read_text().splitlines()[0] if password_file.stat().st_size else ""
            )
        except OSError as exc:
            fail(f"cannot read {password_file}: {exc.strerror}", 2)
    elif password_stdin:
        value = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        value = typer.prompt(prompt, hide_input=True, confirmation_prompt=True)
    else:
        fail("no password given: use a prompt, --password-file F or --password-stdin", 2)
    if not value:
        fail("the password is empty", 2)
    return value


def show(rows: list[dict[str, Any]], columns: list[str], as_json: bool, title: str) -> None:
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(Text("" if row.get(c) is None else str(row.get(c))) for c in columns))
    out.print(table)
