"""``enclave``: the command line."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path

import typer

from enclave.app import serve as serve_forever
from enclave.cli import audit, documents, mail, operators, tenants, users
from enclave.cli.common import EXIT, DataOption, fail, out, run, settings_for
from enclave.config import ConfigError, Settings, resolve_data_dir
from enclave.deployment import init_deployment

app = typer.Typer(
    help="Enclave: sovereign collaboration cloud. Administration commands.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(tenants.app, name="tenant")
app.add_typer(users.app, name="user")
app.add_typer(users.groups, name="group")
app.add_typer(operators.app, name="operator")
app.add_typer(audit.app, name="audit")
app.add_typer(audit.keys, name="key")
app.add_typer(mail.domains, name="domain")
app.add_typer(mail.aliases, name="alias")
app.add_typer(mail.queue, name="queue")
app.add_typer(documents.libraries, name="library")
app.add_typer(documents.labels, name="label")


@app.command("init")
def init(
    data: str | None = DataOption,
    hostname: list[str] = typer.Option(
        [], "--hostname", help="Host name for the TLS certificate (repeatable)."
    ),
) -> None:
    """Create a new deployment directory: configuration, keys, certificate, database."""
    try:
        settings = init_deployment(resolve_data_dir(data), hostname)
    except ConfigError as exc:
        fail(str(exc), EXIT[ConfigError])
    out.print(f"initialised {settings.data_dir}")
    out.print(f"  configuration  {settings.data_dir / 'enclave.toml'}")
    out.print(f"  master key     {settings.path(settings.keys.master_key_file)} (0600: back it up)")
    out.print(f"  certificate    {settings.path(settings.tls.cert_file)} (self-signed)")


def _with_overrides(settings: Settings, **ports: int | str | None) -> Settings:
    changes = {k: v for k, v in ports.items() if v is not None}
    if not changes:
        return settings
    listen = settings.listen.model_copy(update=changes)
    return settings.model_copy(update={"listen": listen})


def _event_loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it exists (every request's socket and task work costs less), else
    asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _serve(settings: Settings) -> None:
    try:
        with asyncio.Runner(loop_factory=_event_loop()) as runner:
            runner.run(serve_forever(settings))
    except OSError as exc:
        fail(f"cannot start listeners: {exc.strerror or exc}", 1)
    # Stopped cleanly: listeners closed, every acknowledged write committed, the database
    # closed. A worker thread still busy (a DNS lookup, a parse past its time limit) holds
    # nothing a client was promised; exiting must not wait for it (SIGTERM took over 10 s).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


BindOption = typer.Option(None, "--bind", help="Listen address for every listener.")
HttpPort = typer.Option(None, "--http-port", help="HTTP port.")
SmtpPort = typer.Option(None, "--smtp-port", help="Inbound SMTP (MX) port.")
SubmissionPort = typer.Option(None, "--submission-port", help="SMTP submission port.")
ImapPort = typer.Option(None, "--imap-port", help="IMAP port.")
ImapsPort = typer.Option(None, "--imaps-port", help="IMAP over implicit TLS port (0: off).")
SubmissionsPort = typer.Option(
    None, "--submissions-port", help="Submission over implicit TLS port (0: off)."
)


@app.command("serve")
def serve(
    data: str | None = DataOption,
    bind: str | None = BindOption,
    http_port: int | None = HttpPort,
    smtp_port: int | None = SmtpPort,
    submission_port: int | None = SubmissionPort,
    imap_port: int | None = ImapPort,
    imaps_port: int | None = ImapsPort,
    submissions_port: int | None = SubmissionsPort,
) -> None:
    """Run every listener in one process until SIGTERM."""
    settings = _with_overrides(
        settings_for(data),
        bind=bind,
        http_port=http_port,
        smtp_port=smtp_port,
        submission_port=submission_port,
        imap_port=imap_port,
        imaps_port=imaps_port,
        submissions_port=submissions_port,
    )
    _announce(settings)
    _serve(settings)


def _announce(settings: Settings) -> None:
    listen = settings.listen
    scheme = "https" if settings.http.tls else "http"
    out.print(f"Enclave serving {settings.data_dir}")
    out.print(
        f"  web, API   {scheme}://{listen.bind}:{listen.http_port}/  (/healthz, /metrics, /api/...)"
    )
    out.print(f"  SMTP (MX)  smtp://{listen.bind}:{listen.smtp_port}  (STARTTLS)")
    out.print(f"  submission smtp://{listen.bind}:{listen.submission_port}  (STARTTLS + AUTH)")
    out.print(f"  IMAP       imap://{listen.bind}:{listen.imap_port}  (STARTTLS + LOGIN)")
    if listen.submissions_port:
        out.print(
            f"  submissions submissions://{listen.bind}:{listen.submissions_port}"
            "  (implicit TLS + AUTH)"
        )
    if listen.imaps_port:
        out.print(f"  IMAPS      imaps://{listen.bind}:{listen.imaps_port}  (implicit TLS + LOGIN)")
    out.print(
        f"  WebDAV     {scheme}://{listen.bind}:{listen.http_port}/dav/  "
        "(files/EMAIL/, libraries/NAME/; Basic with the user's address)"
    )
    out.print("Stop with Ctrl-C or SIGTERM.")


DEMO_TENANT = "demo"
DEMO_DOMAIN = "demo.enclave.test"
DEMO_USERS = (("alice", "Alice Admin", True), ("bob", "Bob User", False))
DEMO_LIBRARY = "Team"
CREDENTIALS = "demo-credentials.txt"


def _welcome() -> bytes:
    """The first message in each demo user's INBOX."""
    return (
        f"From: Enclave <postmaster@{DEMO_DOMAIN}>\r\nTo: everyone@{DEMO_DOMAIN}\r\n"
        "Subject: Welcome to Enclave\r\nDate: Tue, 01 Dec 2026 09:00:00 +0000\r\n"
        f"Message-ID: <welcome@{DEMO_DOMAIN}>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "This is your mailbox. Read it here, or point Thunderbird, Apple Mail or any IMAP\r\n"
        "client at this server; your files are under WebDAV at /dav/.\r\n"
    ).encode()


def _demo_seed(data_dir: Path) -> list[str]:
    from enclave.core.passwords import random_password
    from enclave.core.principal import Role

    credentials = data_dir / CREDENTIALS
    if credentials.exists():
        return credentials.read_text().splitlines()
    lines = [f"tenant {DEMO_TENANT} (domain {DEMO_DOMAIN})"]

    async def seed(services, principal) -> None:  # type: ignore[no-untyped-def]
        await services.tenants.create(principal, DEMO_TENANT, [DEMO_DOMAIN])
        user_ids = []
        for local, name, admin in DEMO_USERS:
            password = random_password()
            email = f"{local}@{DEMO_DOMAIN}"
            user = await services.users.add(
                principal,
                email,
                display_name=name,
                password=password,
                role=Role.ADMIN if admin else Role.USER,
            )
            lines.append(f"{email}  password {password}" + ("  (tenant admin)" if admin else ""))
            user_ids.append(user.id)
        tenant = await services.tenants.get(DEMO_TENANT)
        await services.mail_store.deliver(tenant.id, user_ids, _welcome())
        team = await services.libraries.create(principal, tenant.id, DEMO_LIBRARY)
        await services.libraries.grant(principal, tenant.id, team.id, "", "tenant", None, "write")
        lines.append(f"shared library {DEMO_LIBRARY} (everyone in {DEMO_TENANT} may write)")
        password = random_password()
        _, uri = await services.operators.add(principal, "ops", "Demo operator", password)
        lines.append(f"operator ops  password {password}  TOTP {uri}")

    run(data_dir, seed)
    fd = os.open(credentials, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return lines


@app.command("demo")
def demo(
    data: Path = typer.Option(Path("var/demo"), "--data", help="Demo deployment directory."),
    bind: str | None = BindOption,
    http_port: int | None = HttpPort,
) -> None:
    """Initialise (once) and seed a demo deployment, print its credentials, and serve it."""
    data_dir = data.expanduser().resolve()
    if not (data_dir / "enclave.toml").exists():
        init_deployment(data_dir, ["localhost"])
    lines = _demo_seed(data_dir)
    settings = _with_overrides(settings_for(data_dir), bind=bind, http_port=http_port)
    out.rule("Enclave demo")
    for line in lines:
        out.print("  " + line, highlight=False)
    out.print(f"  (kept in {data_dir / CREDENTIALS})")
    base = f"http://{settings.listen.bind}:{settings.listen.http_port}"
    out.print(f"  open {base}/ in a browser and sign in as bob@{DEMO_DOMAIN}", highlight=False)
    out.print(f"  try: curl {base}/healthz", highlight=False)
    out.print(
        f'       curl -H \'content-type: application/json\' -d \'{{"email":"bob@{DEMO_DOMAIN}",'
        f'"password":"..."}}\' {base}/api/login',
        highlight=False,
    )
    out.print(
        f"       rclone lsd :webdav: --webdav-url {base}/dav/libraries/{DEMO_LIBRARY}/ "
        f'--webdav-user bob@{DEMO_DOMAIN} --webdav-pass "$(rclone obscure -)"',
        highlight=False,
    )
    out.rule()
    _announce(settings)
    _serve(settings)


@app.command("gc")
def gc(data: str | None = DataOption) -> None:
    """Collect unreferenced and orphaned stored objects, and expired sessions."""
    settings = settings_for(data)
    grace = settings.blobs.orphan_grace_seconds

    async def collect(services, _principal) -> tuple[int, int]:  # type: ignore[no-untyped-def]
        return (
            await services.content.collect_garbage(grace),
            await services.auth.purge_expired_sessions(),
        )

    removed, expired = run(data, collect)
    out.print(f"removed {removed} stored object(s) and {expired} expired session(s)")


def main() -> None:
    os.umask(0o077)  # everything a deployment writes is for its owner only
    app()
