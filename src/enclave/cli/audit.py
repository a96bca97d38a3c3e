"""enclave audit ... and enclave key ..."""

from __future__ import annotations

import base64
import contextlib
import os
import sys
from pathlib import Path

import typer

from enclave.cli.common import DataOption, err, fail, out, run
from enclave.core import audit_chain

app = typer.Typer(help="Export and verify tamper-evident audit logs.", no_args_is_help=True)
keys = typer.Typer(help="Tenant keys.", no_args_is_help=True)


@app.command("export")
def export(
    tenant: str | None = typer.Option(None, "--tenant", help="Tenant (default: platform log)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="File (default: stdout)."),
    data: str | None = DataOption,
) -> None:
    """Write a log as JSON lines with its signed checkpoints (the head is signed first)."""
    handle = sys.stdout
    if output is not None:  # open first: a bad path fails before anything is recorded
        try:
            fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError as exc:
            fail(f"cannot write {output}: {exc.strerror}", 2)
        handle = os.fdopen(fd, "w", encoding="utf-8")
    lines = run(data, lambda s, p: s.audit_access.export(p, tenant))
    with handle if output is not None else contextlib.nullcontext(handle):
        handle.write("\n".join(lines) + "\n")
    if output is not None:
        err.print(f"wrote {len(lines) - 1} records to {output}")


@app.command("verify")
def verify(
    file: Path,
    public_key: str | None = typer.Option(
        None, "--public-key", help="Expected signer (base64, from 'enclave audit pubkey')."
    ),
) -> None:
    """Check an export offline: hash chain, order, completeness and signatures."""
    trusted = None
    if public_key:
        try:
            trusted = base64.b64decode(public_key, validate=True)
        except ValueError:
            fail("--public-key is not base64", 2)
    try:
        with file.open(encoding="utf-8") as handle:
            verdict = audit_chain.verify(handle, trusted)
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}", 2)
    except UnicodeDecodeError:
        fail(f"{file} is not UTF-8 text", 8)
    if not verdict.ok:
        fail(f"{file}: NOT valid: {verdict.first_problem}", 8)
    out.print(
        f"{file}: valid. {verdict.entries} entries, {verdict.checkpoints} signed checkpoints, "
        f"signer key {verdict.key_id}" + ("" if trusted else " (not pinned: compare it)")
    )


@app.command("pubkey")
def pubkey(data: str | None = DataOption) -> None:
    """Print the deployment's audit signing public key (publish it for verifiers)."""

    async def read(services, _principal) -> str:  # type: ignore[no-untyped-def]
        return base64.b64encode(services.audit.public_key).decode()

    typer.echo(run(data, read))


@app.command("checkpoint")
def checkpoint(
    tenant: str | None = typer.Option(None, "--tenant", help="Tenant (default: platform log)."),
    data: str | None = DataOption,
) -> None:
    """Sign the current head of a log now."""
    seq = run(data, lambda s, p: s.audit_access.checkpoint(p, tenant))
    out.print(f"signed {tenant or 'platform'} log at entry {seq}")


@keys.command("rotate")
def rotate(
    tenant: str = typer.Option(..., "--tenant", help="Tenant name."),
    data: str | None = DataOption,
) -> None:
    """Rotate a tenant's key: data keys are re-wrapped, content is not re-encrypted."""
    version = run(data, lambda s, p: s.tenants.rotate_key(p, tenant))
    out.print(f"{tenant} now uses key version {version}; the previous key is destroyed")
