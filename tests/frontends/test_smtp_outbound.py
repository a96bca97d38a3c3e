"""Submission and outbound delivery, end to end: a real ``enclave serve`` process (prepared
with the real CLI), real ``smtplib`` clients over loopback, a loopback DNS server for the
zone, and an aiosmtpd "remote MX" sink in this process that records what it receives.

The sink refuses recipients whose local part starts with ``reject`` (550 5.1.1) and defers
those starting with ``later`` (451 4.2.0) until told otherwise; it takes its time over DATA
for ``slow`` ones; stopping it makes the remote host unreachable. What the server stored is read back in-process from the deployment
directory with the deployment's own keys.

One server serves the whole module; tests use distinct recipients and subjects so they do
not read each other's mail. The persistence test restarts it (SIGTERM, same settings); the
last two tests (expiry, DMARC quarantine) share one more restart with other settings.
Failed logins lock accounts in-process, so the lockout test has an account of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import smtplib
import socket
import ssl
import subprocess
import threading
import time
import uuid
from base64 import b64encode
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, message_from_string
from email.message import Message
from email.policy import compat32
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import dkim
import pyotp
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as AioSMTP
from aiosmtpd.smtp import Envelope, Session

from enclave.app import open_services
from enclave.config import load_settings
from enclave.core.errors import NotFound
from enclave.core.principal import Principal
from enclave.tlscert import write_self_signed
from tests.dnsserver import DnsServer
from tests.frontends.mailserver import MailServer
from tests.frontends.webserver import (
    ENCLAVE,
    HOST,
    _env,
    cli,
    cli_chains,
    copy_deployment,
    free_port,
    set_option,
)

PASSWORD = "correct horse battery"
ALICE = "alice@acme.example"  # the main sender
BOB = "bob@acme.example"  # local recipient
DAVE = "dave@acme.example"  # locked out by failed logins
ERIN = "erin@acme.example"  # enrols a second factor
SALES = "sales@acme.example"  # alias of alice
HOSTNAME = "localhost"  # the first (default) --hostname of init: the SMTP host name
ACCOUNT_FAILURES = 3
WAIT = 15.0  # seconds to wait for asynchronous deliveries (they take one or two)


# --- the remote MX ---------------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    tls: bool
    smtputf8: bool = False


@dataclass
class SinkHandler:
    """aiosmtpd hooks: 550 for reject*, 451 for later* (unless accept_later), else 250; DATA
    for slow* recipients takes ``slow_seconds``."""

    received: list[Received] = field(default_factory=list)
    refused: list[tuple[str, int]] = field(default_factory=list)
    accept_later: bool = False
    slow_seconds: float = 3.0  # how long DATA takes for slow* recipients
    in_data: list[bytes] = field(default_factory=list)  # slow messages whose DATA has begun
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: AioSMTP, session: Session, envelope: Envelope, address: str,
        rcpt_options: list[str],
    ) -> str:  # fmt: skip
        local = address.partition("@")[0].lower()
        if local.startswith("reject"):
            with self.lock:
                self.refused.append((address, 550))
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if local.startswith("later") and not self.accept_later:
            with self.lock:
                self.refused.append((address, 451))
            return f"451 4.2.0 <{address}>: Try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: AioSMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        if any(r.partition("@")[0].lower().startswith("slow") for r in envelope.rcpt_tos):
            with self.lock:
                self.in_data.append(content)
            await asyncio.sleep(self.slow_seconds)
        with self.lock:
            self.received.append(
                Received(
                    mail_from=envelope.mail_from or "",
                    rcpt_tos=list(envelope.rcpt_tos),
                    content=content,
                    tls=session.ssl is not None,
                    smtputf8=bool(envelope.smtp_utf8),
                )
            )
        return "250 2.0.0 OK: accepted"

    def find(self, needle: bytes) -> list[Received]:
        with self.lock:
            return [r for r in self.received if needle in r.content]

    def sending(self, needle: bytes) -> bool:
        with self.lock:
            return any(needle in c for c in self.in_data)

    def attempts_for(self, address: str) -> int:
        with self.lock:
            return sum(1 for a, _ in self.refused if a == address)


class Sink:
    """The remote MX on 127.0.0.1:port, offering STARTTLS with a throwaway certificate.
    aiosmtpd closes a controller's loop on stop, so each start makes a new controller."""

    def __init__(self, port: int, tls: ssl.SSLContext) -> None:
        self.port = port
        self.tls = tls
        self.handler = SinkHandler()
        self.smtputf8 = False  # offer SMTPUTF8 (RFC 6531) from the next start on
        self._controller: Controller | None = None

    def start(self) -> None:
        assert self._controller is None
        self._controller = Controller(
            self.handler,
            hostname=HOST,
            port=self.port,
            ready_timeout=10.0,
            tls_context=self.tls,
            require_starttls=False,
            decode_data=False,
            enable_SMTPUTF8=self.smtputf8,
            ident="remote MX",
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None


# --- the deployment --------------------------------------------------------------------------


@dataclass
class Deployment:
    data: Path
    apps: dict[str, str]  # email -> app password
    dkim_name: str  # <selector>._domainkey.acme.example
    dkim_value: str  # v=DKIM1; k=rsa; p=...
    dkim_strings: str  # the TXT rdata as printed: "..." "..."

    def dnsfunc(self, name: Any, timeout: float = 5) -> bytes | None:
        """dkimpy's DNS hook: the published record for our selector, nothing else."""
        text = name.decode() if isinstance(name, bytes) else str(name)
        if text.rstrip(".").lower() == self.dkim_name.lower():
            return self.dkim_value.encode()
        return None


def _dkim_record(printed: str) -> tuple[str, str, str]:
    """``name. IN TXT "a" "b"`` -> (name, "ab", '"a" "b"')."""
    line = next(x for x in printed.splitlines() if "._domainkey." in x)
    name, _, rest = line.partition(" IN TXT ")
    strings = re.findall(r'"([^"]*)"', rest)
    assert strings and all(len(s) <= 255 for s in strings), line
    return name.strip().rstrip("."), "".join(strings), " ".join(f'"{s}"' for s in strings)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    data = tmp_path_factory.mktemp("outbound") / "deployment"
    cli(data, "init")
    set_option(data, "auth", "account_failures", str(ACCOUNT_FAILURES))
    set_option(data, "auth", "address_failures", "1000")  # every client is 127.0.0.1
    set_option(data, "auth", "failure_delay_ms", "50")
    cli(data, "tenant", "create", "acme", "--domain", "acme.example")

    def add(email: str) -> tuple[tuple[str, ...], str]:
        return ("user", "add", email, "--password-stdin"), PASSWORD + "\n"

    def app_password(email: str) -> tuple[tuple[str, ...], None]:
        return ("user", "app-password", "add", email, "--name", "mail client"), None

    alice, erin, _, dkim_out = cli_chains(
        data,
        [
            [add(ALICE), app_password(ALICE), (("alias", "add", SALES, ALICE), None)],
            [add(ERIN), app_password(ERIN)],
            [add(BOB), add(DAVE)],
            [(("domain", "dkim", "acme.example"), None)],
        ],
    )
    apps = {ALICE: alice[1].strip().splitlines()[-1], ERIN: erin[1].strip().splitlines()[-1]}
    name, value, strings = _dkim_record(dkim_out[0])
    assert name.endswith("._domainkey.acme.example"), name
    assert value.startswith("v=DKIM1; k=rsa; p="), value
    return Deployment(data, apps, name, value, strings)


@pytest.fixture(scope="module")
def dns_server(deployment: Deployment) -> Iterator[DnsServer]:
    zone = {
        ("remote.example", "MX"): ["10 mx.remote.example."],
        ("mx.remote.example", "A"): ["127.0.0.1"],
        ("remote.example", "TXT"): ['"v=spf1 ip4:127.0.0.1 -all"'],
        ("strict.example", "TXT"): ['"v=spf1 -all"'],
        ("_dmarc.strict.example", "TXT"): ['"v=DMARC1; p=reject"'],
        (deployment.dkim_name, "TXT"): [deployment.dkim_strings],
    }
    with DnsServer(zone) as server:
        yield server


@pytest.fixture(scope="module")
def sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sink]:
    where = tmp_path_factory.mktemp("sink")
    write_self_signed(where / "cert.pem", where / "key.pem", ["mx.remote.example"])
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(where / "cert.pem", where / "key.pem")
    found = Sink(free_port(), tls)
    found.start()
    yield found
    found.stop()


def base_env(dns_server: DnsServer, sink: Sink) -> dict[str, str]:
    return {
        "ENCLAVE_DNS__NAMESERVERS": '["127.0.0.1"]',
        "ENCLAVE_DNS__PORT": str(dns_server.port),
        "ENCLAVE_DNS__TIMEOUT_SECONDS": "2",
        "ENCLAVE_QUEUE__MX_PORT": str(sink.port),
        "ENCLAVE_QUEUE__POLL_SECONDS": "0.3",
        "ENCLAVE_QUEUE__RETRY_SCHEDULE_SECONDS": "[1]",
    }


@pytest.fixture(scope="module")
def server(deployment: Deployment, dns_server: DnsServer, sink: Sink) -> Iterator[MailServer]:
    running = MailServer(deployment.data, base_env(dns_server, sink)).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def fresh_sink(sink: Sink) -> Sink:
    """The sink running, deferring later* recipients."""
    if not sink.running:
        sink.start()
    sink.handler.accept_later = False
    return sink


@pytest.fixture
def utf8_sink(sink: Sink) -> Iterator[Sink]:
    """The sink restarted offering SMTPUTF8, and back to plain afterwards."""
    sink.stop()
    sink.smtputf8 = True
    sink.start()
    sink.handler.accept_later = False
    try:
        yield sink
    finally:
        sink.stop()
        sink.smtputf8 = False
        sink.start()


# --- helpers ---------------------------------------------------------------------------------


def client_tls(deployment: Deployment) -> ssl.SSLContext:
    """Verifies the deployment's self-signed certificate (the client connects to localhost)."""
    return ssl.create_default_context(cafile=str(deployment.data / "tls" / "cert.pem"))


def secure(server: MailServer, deployment: Deployment) -> smtplib.SMTP:
    client = server.submission()
    client.ehlo()
    client.starttls(context=client_tls(deployment))
    client.ehlo()
    return client


def login(client: smtplib.SMTP, user: str, secret: str, mechanism: str = "PLAIN") -> None:
    client.user, client.password = user, secret
    method = client.auth_plain if mechanism == "PLAIN" else client.auth_login
    client.auth(mechanism, method)


def try_login(
    server: MailServer, deployment: Deployment, user: str, secret: str, mechanism: str = "PLAIN"
) -> tuple[int, bytes]:
    """AUTH on a new secure connection: (reply code, text)."""
    with secure(server, deployment) as client:
        try:
            login(client, user, secret, mechanism)
        except smtplib.SMTPAuthenticationError as exc:
            return exc.smtp_code, exc.smtp_error
        return 235, b""


def message(sender: str, to: str, subject: str, body: str = "Hello there.\r\n") -> bytes:
    return (
        f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
        f"Date: {format_datetime(datetime.now(UTC))}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@test>\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=us-ascii\r\n\r\n{body}"
    ).encode()


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:10]}"


def submit(
    server: MailServer, deployment: Deployment, user: str, recipients: list[str], subject: str
) -> dict[str, tuple[int, bytes]]:
    """Log in with the user's password and send; returns sendmail's refused recipients."""
    with secure(server, deployment) as client:
        login(client, user, PASSWORD)
        return client.sendmail(user, recipients, message(user, recipients[0], subject))


def stored(data: Path, email: str, mailbox: str) -> list[tuple[tuple[str, ...], bytes]]:
    """(flags, raw) of every message in a user's mailbox."""

    async def read() -> list[tuple[tuple[str, ...], bytes]]:
        async with open_services(load_settings(data)) as svc:
            target = await svc.mail_router.resolve(email)
            assert target is not None, email
            tenant, user = target.tenant_id, target.user_ids[0]
            found = await svc.mail_store.messages(tenant, user, mailbox)
            return [(m.flags, await svc.mail_store.raw(tenant, m)) for m in found]

    result: list[tuple[tuple[str, ...], bytes]] = asyncio.run(read())
    return result


def wait_for_mail(
    data: Path, email: str, mailbox: str, needle: bytes, timeout: float = WAIT
) -> tuple[tuple[str, ...], bytes]:
    deadline = time.monotonic() + timeout
    while True:
        found = [m for m in stored(data, email, mailbox) if needle in m[1]]
        if found:
            assert len(found) == 1, f"{len(found)} copies of {needle!r} in {email}/{mailbox}"
            return found[0]
        assert time.monotonic() < deadline, f"{needle!r} did not reach {email}/{mailbox}"
        time.sleep(0.2)


def queued(data: Path) -> list[dict[str, Any]]:
    """The queue, in-process (fast, for polling); the CLI is used for the assertions."""

    async def read() -> list[dict[str, Any]]:
        async with open_services(load_settings(data)) as svc:
            items = await svc.queue.list_items(Principal.system("tester"))
            return [vars(i) for i in items]

    result: list[dict[str, Any]] = asyncio.run(read())
    return result


def queue_cli(data: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(cli(data, "queue", "list", "--json"))
    return rows


def wait_until(condition: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def headers(raw: bytes, name: str) -> list[str]:
    """Every value of a header, unfolded."""
    parsed = message_from_bytes(raw, policy=compat32)
    return [re.sub(r"\r?\n[ \t]+", " ", str(v)) for v in parsed.get_all(name) or []]


def dsn_recipients(raw: bytes) -> list[Message]:
    """The per-recipient blocks of a delivery-status report (asserting its structure)."""
    report = message_from_bytes(raw, policy=compat32)
    assert report.get_content_type() == "multipart/report", report.get_content_type()
    assert report.get_param("report-type") == "delivery-status"
    kinds = ("message/delivery-status", "message/global-delivery-status")  # RFC 3464, 6533
    parts = [p for p in report.walk() if p.get_content_type() in kinds]
    assert len(parts) == 1, [p.get_content_type() for p in report.walk()]
    if parts[0].get_content_type() == kinds[1]:  # the email package does not know it
        text = raw.decode("utf-8").partition(f"Content-Type: {kinds[1]}")[2]
        fields = text.partition("\r\n\r\n")[2].partition("\r\n--")[0]
        blocks = [message_from_string(b, policy=compat32) for b in fields.split("\r\n\r\n")]
    else:
        blocks = parts[0].get_payload()
    assert isinstance(blocks, list) and len(blocks) >= 2, blocks
    assert blocks[0]["Reporting-MTA"] == f"dns; {HOSTNAME}"
    return blocks[1:]


def verify_dkim(deployment: Deployment, raw: bytes) -> bool:
    return bool(dkim.verify(raw, dnsfunc=deployment.dnsfunc))


# --- 1. STARTTLS before AUTH -----------------------------------------------------------------


def test_submission_offers_auth_only_after_starttls(
    server: MailServer, deployment: Deployment
) -> None:
    blob = b64encode(f"\0{ALICE}\0{PASSWORD}".encode()).decode()
    with server.submission() as client:
        code, _ = client.ehlo()
        assert code == 250
        assert client.has_extn("starttls")
        assert not client.has_extn("auth"), client.esmtp_features
        code, text = client.docmd("AUTH", "PLAIN " + blob)
        assert code == 530, text
        code, text = client.docmd("MAIL", f"FROM:<{ALICE}>")
        assert code == 530, text
        client.starttls(context=client_tls(deployment))
        client.ehlo()
        mechanisms = client.esmtp_features.get("auth", "").upper().split()
        assert {"PLAIN", "LOGIN"} <= set(mechanisms), client.esmtp_features
        code, text = client.docmd("MAIL", f"FROM:<{ALICE}>")
        assert code == 530, text  # still: AUTH first
        assert text.startswith(b"5.7.0"), text


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
@pytest.mark.parametrize("which", ["password", "app password"])
def test_submission_auth_with_password_and_app_password(
    server: MailServer, deployment: Deployment, mechanism: str, which: str
) -> None:
    secret = PASSWORD if which == "password" else deployment.apps[ALICE]
    assert try_login(server, deployment, ALICE, secret, mechanism) == (235, b"")


def test_submission_wrong_password_is_535(server: MailServer, deployment: Deployment) -> None:
    code, text = try_login(server, deployment, BOB, "not the password")
    assert code == 535, text
    assert text.startswith(b"5.7.8"), text
    code, text = try_login(server, deployment, "nobody@acme.example", PASSWORD, "LOGIN")
    assert (code, text[:5]) == (535, b"5.7.8")
    assert try_login(server, deployment, BOB, PASSWORD) == (235, b"")


MALFORMED_AUTH = {
    "plain-not-base64": ["AUTH PLAIN !!!!"],
    "plain-no-separators": ["AUTH PLAIN AAAA"],  # three NULs: four fields, not three
    "plain-lone-padding": ["AUTH PLAIN ="],
    "plain-two-fields": ["AUTH PLAIN " + b64encode(b"user\0pass").decode()],
    "plain-continuation-garbage": ["AUTH PLAIN", "!!!!"],
    "plain-continuation-no-separators": ["AUTH PLAIN", "AAAA"],
    "plain-continuation-aborted": ["AUTH PLAIN", "*"],
    "login-initial-not-base64": ["AUTH LOGIN !!!!"],
    "login-username-not-base64": ["AUTH LOGIN", "!!!!"],
    "login-password-not-base64": ["AUTH LOGIN", b64encode(ALICE.encode()).decode(), "!!!!"],
    "login-aborted": ["AUTH LOGIN", "*"],
    "login-too-many-values": ["AUTH LOGIN a b"],
}


@pytest.mark.parametrize("steps", list(MALFORMED_AUTH.values()), ids=list(MALFORMED_AUTH))
def test_malformed_auth_always_gets_a_reply(
    server: MailServer, deployment: Deployment, steps: list[str]
) -> None:
    """Every step of a malformed AUTH is answered (334 to go on, then 501 or 535), so client
    and server stay in step: the session goes on and a good AUTH still works. The server
    used to send nothing for an undecodable initial response."""
    client = server.submission(timeout=5)  # a missing reply fails fast, as a timeout
    with client:
        client.ehlo()
        client.starttls(context=client_tls(deployment))
        client.ehlo()
        for step in steps[:-1]:
            code, text = client.docmd(step)
            assert code == 334, (step, code, text)
        code, text = client.docmd(steps[-1])
        assert code in (501, 535), (steps, code, text)
        assert text[:5] in (b"5.5.2", b"5.7.8", b"5.7.0", b"5.5.4"), text
        assert client.docmd("NOOP")[0] == 250
        login(client, ALICE, PASSWORD)  # the same session can still log in


def abandon_starttls(port: int, how: str) -> None:
    """EHLO, STARTTLS, 220, then walk away: close at once, send plain text instead of a
    ClientHello, or refuse the certificate half-way through the handshake."""
    with socket.create_connection((HOST, port), timeout=10) as sock:
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"220")
        sock.sendall(b"EHLO client.test\r\n")
        while (line := reader.readline())[3:4] == b"-":
            pass
        assert line.startswith(b"250"), line
        sock.sendall(b"STARTTLS\r\n")
        assert reader.readline().startswith(b"220"), "STARTTLS refused"
        if how == "garbage":
            sock.sendall(b"MAIL FROM:<nobody@example.org>\r\n" * 3)
            with contextlib.suppress(OSError):
                sock.recv(1024)  # the server gives up on the handshake and closes
        elif how == "distrust":
            strict = ssl.create_default_context()  # the self-signed certificate fails here
            with pytest.raises(ssl.SSLCertVerificationError):
                strict.wrap_socket(sock, server_hostname="localhost")


@pytest.mark.parametrize("how", ["close", "garbage", "distrust"])
@pytest.mark.parametrize("listener", ["mx", "submission"])
def test_abandoned_starttls_is_an_ordinary_disconnect(
    server: MailServer, listener: str, how: str
) -> None:
    """A client that gives up during the STARTTLS handshake is a disconnect like any other:
    no error and no traceback in the log, and the listener goes on serving. It used to be
    logged as an error with a traceback."""
    port = server.smtp_port if listener == "mx" else server.submission_port
    before = len(server.output())
    abandon_starttls(port, how)
    with server.mx() if listener == "mx" else server.submission() as client:
        assert client.ehlo()[0] == 250 and client.noop()[0] == 250
    time.sleep(0.3)  # the log line, if any, is written as the connection is torn down
    logged = server.output()[before:]
    assert "Traceback" not in logged, logged
    assert not [ln for ln in logged.splitlines() if re.search(r"\berror\b", ln, re.I)], logged


# --- 2. failures are limited and audited -----------------------------------------------------


def test_failed_submission_logins_lock_the_account_and_are_audited(
    server: MailServer, deployment: Deployment, tmp_path: Path
) -> None:
    for _ in range(ACCOUNT_FAILURES):
        assert try_login(server, deployment, DAVE, "guess")[0] == 535
    code, text = try_login(server, deployment, DAVE, PASSWORD)
    assert code == 535, "the right password must be refused once the account is locked"
    assert text.startswith(b"5.7.8"), text
    assert try_login(server, deployment, BOB, PASSWORD)[0] == 235  # only dave is locked

    target = tmp_path / "audit.jsonl"
    cli(deployment.data, "audit", "export", "--tenant", "acme", "-o", str(target))
    entries = [json.loads(line) for line in target.read_text().splitlines() if line.strip()]
    dave = [
        e
        for e in entries
        if e.get("action") == "login.smtp" and e.get("target") == f"tenant:{DAVE}"
    ]
    failures = [e for e in dave if e["outcome"] == "failure"]
    assert len(failures) == ACCOUNT_FAILURES + 1, dave
    assert all(e["source"] == "127.0.0.1" for e in failures), failures
    assert any("locked" in (e.get("reason") or "") for e in failures), failures
    assert not [e for e in dave if e["outcome"] == "success"], dave


# --- 3. a second factor turns the main password off ------------------------------------------


def enroll_mfa(data: Path, email: str) -> str:
    """``enclave user mfa enroll EMAIL``, answering its prompt with a code for the printed
    secret; returns its output."""
    with subprocess.Popen(
        [str(ENCLAVE), "user", "mfa", "enroll", email, "--data", str(data)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    ) as proc:
        assert proc.stdin and proc.stdout and proc.stderr
        watchdog = threading.Timer(60, proc.kill)
        watchdog.start()
        try:
            seen, secret = [], ""
            while line := proc.stdout.readline():
                seen.append(line)
                if line.startswith("secret:"):
                    secret = line.partition(":")[2].strip()
                    break
            assert secret, "".join(seen)
            proc.stdin.write(pyotp.TOTP(secret).now() + "\n")
            proc.stdin.close()
            rest, err = proc.stdout.read(), proc.stderr.read()
            code = proc.wait()
        finally:
            watchdog.cancel()
    assert code == 0, "".join(seen) + rest + err
    return "".join(seen) + rest


def test_mfa_turns_the_main_password_off_for_submission(
    server: MailServer, deployment: Deployment
) -> None:
    assert try_login(server, deployment, ERIN, PASSWORD) == (235, b"")
    output = enroll_mfa(deployment.data, ERIN)
    assert "Second factor enabled" in output, output
    code, text = try_login(server, deployment, ERIN, PASSWORD)
    assert (code, text[:5]) == (535, b"5.7.8"), text
    for mechanism in ("PLAIN", "LOGIN"):
        got = try_login(server, deployment, ERIN, deployment.apps[ERIN], mechanism)
        assert got == (235, b""), got
    with secure(server, deployment) as client:  # and it can send
        login(client, ERIN, deployment.apps[ERIN])
        subject = unique("from erin")
        assert client.sendmail(ERIN, [BOB], message(ERIN, BOB, subject)) == {}
    wait_for_mail(deployment.data, BOB, "INBOX", subject.encode(), timeout=0)


# --- 4. the sender must be the user's own ----------------------------------------------------


def test_sender_must_be_own_address_or_alias(server: MailServer, deployment: Deployment) -> None:
    subject = unique("as sales")
    with secure(server, deployment) as client:
        login(client, ALICE, PASSWORD)
        for other in (BOB, "ceo@foreign.example", "alice@foreign.example"):
            code, text = client.mail(other)
            assert code == 553, (other, text)
            assert text.startswith(b"5.7.1"), text
            client.rset()
        code, text = client.mail(SALES)
        assert code == 250, text
        code, text = client.rcpt(BOB)
        assert code == 250, text
        code, text = client.data(message(SALES, BOB, subject))
        assert code == 250, text
    _, raw = wait_for_mail(deployment.data, BOB, "INBOX", subject.encode(), timeout=0)
    assert f"From: <{SALES}>".encode() in raw


def test_from_header_must_be_owned_too(server: MailServer, deployment: Deployment) -> None:
    """The envelope is alice's, the From a reader sees is bob's: refused, or DKIM would vouch
    for a spoof of a colleague."""
    subject = unique("header spoof")
    with secure(server, deployment) as client:
        login(client, ALICE, PASSWORD)
        assert client.mail(ALICE)[0] == 250
        assert client.rcpt(BOB)[0] == 250
        code, text = client.data(message(BOB, BOB, subject))
        assert code == 553 and b"From header" in text, text
    assert not [raw for _, raw in stored(deployment.data, BOB, "INBOX") if subject.encode() in raw]


# --- 5. local delivery -----------------------------------------------------------------------


def test_local_delivery_with_sent_copy_and_dkim(server: MailServer, deployment: Deployment) -> None:
    subject = unique("local")
    assert submit(server, deployment, ALICE, [BOB], subject) == {}
    # 250 comes after the commit: no waiting
    flags, raw = wait_for_mail(deployment.data, BOB, "INBOX", subject.encode(), timeout=0)
    assert "\\Seen" not in flags
    sent_flags, sent = wait_for_mail(deployment.data, ALICE, "Sent", subject.encode(), timeout=0)
    assert "\\Seen" in sent_flags
    assert sent == raw

    signatures = headers(raw, "DKIM-Signature")
    assert len(signatures) == 1, signatures
    tags = dict(
        (k.strip(), v.strip()) for k, _, v in (t.partition("=") for t in signatures[0].split(";"))
    )
    assert tags["d"] == "acme.example"
    assert f"{tags['s']}._domainkey.acme.example" == deployment.dkim_name
    assert "from" in tags["h"].lower() and "subject" in tags["h"].lower()
    assert verify_dkim(deployment, raw)
    head, sep, body = raw.partition(b"\r\n\r\n")
    assert not verify_dkim(deployment, head + sep + body.replace(b"Hello", b"Jello"))
    assert not verify_dkim(deployment, raw.replace(subject.encode(), b"changed subject"))


# --- 6. remote delivery ----------------------------------------------------------------------


def test_remote_delivery_signed_over_starttls(
    server: MailServer, deployment: Deployment, fresh_sink: Sink
) -> None:
    subject = unique("remote")
    recipient = f"carl.{uuid.uuid4().hex[:6]}@remote.example"
    assert submit(server, deployment, ALICE, [recipient], subject) == {}
    got = wait_until(lambda: fresh_sink.handler.find(subject.encode()), "the remote delivery")
    assert len(got) == 1, got
    delivery = got[0]
    assert delivery.mail_from == ALICE
    assert delivery.rcpt_tos == [recipient]
    assert delivery.tls, "the sink offers STARTTLS: the queue must use it"
    signatures = headers(delivery.content, "DKIM-Signature")
    assert len(signatures) == 1 and "d=acme.example" in signatures[0].replace(" ", "")
    assert verify_dkim(deployment, delivery.content)
    assert f"Subject: {subject}".encode() in delivery.content
    wait_until(lambda: not queued(deployment.data), "an empty queue")
    # the Sent copy is there as well
    wait_for_mail(deployment.data, ALICE, "Sent", subject.encode(), timeout=0)


# --- 7. bounces ------------------------------------------------------------------------------


def test_permanent_refusal_bounces_to_the_sender(
    server: MailServer, deployment: Deployment, fresh_sink: Sink
) -> None:
    """One transaction to the remote MX: one recipient refused (bounced), one accepted."""
    subject = unique("bounce")
    recipient = f"reject.{uuid.uuid4().hex[:6]}@remote.example"
    accepted = f"dora.{uuid.uuid4().hex[:6]}@remote.example"
    assert submit(server, deployment, ALICE, [recipient, accepted], subject) == {}
    _, raw = wait_for_mail(deployment.data, ALICE, "INBOX", subject.encode())
    delivered = fresh_sink.handler.find(subject.encode())
    assert [d.rcpt_tos for d in delivered] == [[accepted]]
    blocks = dsn_recipients(raw)
    assert len(blocks) == 1, blocks
    block = blocks[0]
    assert block["Final-Recipient"] == f"rfc822; {recipient}"
    assert block["Action"] == "failed"
    assert block["Status"] == "5.1.1"
    assert "550" in block["Diagnostic-Code"], block["Diagnostic-Code"]
    assert headers(raw, "To") == [f"<{ALICE}>"]
    assert headers(raw, "Auto-Submitted") == ["auto-replied"]
    assert fresh_sink.handler.attempts_for(recipient) == 1  # permanent: tried once
    assert queue_cli(deployment.data) == []


JOERG = "jörg@remote.example"  # an SMTPUTF8 address (RFC 6531): no ASCII form exists


def submit_utf8(server: MailServer, deployment: Deployment, recipient: str, subject: str) -> None:
    with secure(server, deployment) as client:
        login(client, ALICE, PASSWORD)
        raw = message(ALICE, "someone@remote.example", subject)
        assert client.sendmail(ALICE, [recipient], raw, mail_options=["SMTPUTF8"]) == {}


def test_smtputf8_recipient_bounces_when_next_hop_lacks_smtputf8(
    server: MailServer, deployment: Deployment, fresh_sink: Sink
) -> None:
    """The next hop does not offer SMTPUTF8: the message cannot go there and bounces at once
    with 5.6.7 and a reason a person can read. It used to crash the queue run
    (UnicodeEncodeError) and stay "sending" forever with 0 attempts."""
    assert not fresh_sink.smtputf8
    subject = unique("utf8 bounce")
    submit_utf8(server, deployment, JOERG, subject)
    _, raw = wait_for_mail(deployment.data, ALICE, "INBOX", subject.encode())
    [block] = dsn_recipients(raw)
    assert block["Final-Recipient"] == f"utf-8; {JOERG}"  # RFC 6533
    assert block["Action"] == "failed"
    assert block["Status"] == "5.6.7", block["Status"]
    assert "SMTPUTF8" in block["Diagnostic-Code"], block["Diagnostic-Code"]
    assert not fresh_sink.handler.find(subject.encode())
    wait_until(lambda: not queued(deployment.data), "an empty queue")


def test_smtputf8_recipient_delivered_when_next_hop_offers_it(
    server: MailServer, deployment: Deployment, utf8_sink: Sink
) -> None:
    subject = unique("utf8 delivered")
    submit_utf8(server, deployment, JOERG, subject)
    got = wait_until(lambda: utf8_sink.handler.find(subject.encode()), "the SMTPUTF8 delivery")
    assert [(r.rcpt_tos, r.smtputf8, r.tls) for r in got] == [([JOERG], True, True)]
    wait_until(lambda: not queued(deployment.data), "an empty queue")
    assert not [m for m in stored(deployment.data, ALICE, "INBOX") if subject.encode() in m[1]]


# --- DSN (RFC 3461) on submission --------------------------------------------------------------


def submit_dsn(
    server: MailServer, deployment: Deployment, recipients: list[str], subject: str,
    mail_options: list[str], rcpt_options: list[str], body: str = "Hello there.\r\n",
) -> None:  # fmt: skip
    with secure(server, deployment) as client:
        assert client.has_extn("dsn"), client.esmtp_features
        login(client, ALICE, PASSWORD)
        raw = message(ALICE, recipients[0], subject, body)
        refused = client.sendmail(ALICE, recipients, raw, mail_options, rcpt_options)
        assert refused == {}, refused


def reports(data: Path, needle: bytes) -> list[bytes]:
    return [raw for _, raw in stored(data, ALICE, "INBOX") if needle in raw]


def test_dsn_success_is_reported_relayed_when_the_next_hop_accepts(
    server: MailServer, deployment: Deployment, fresh_sink: Sink
) -> None:
    """NOTIFY=SUCCESS and a next hop without DSN: the sender hears "relayed", with ENVID
    and ORCPT given back and (RET=HDRS) the header only."""
    subject = unique("dsn relayed")
    recipient = f"carl.{uuid.uuid4().hex[:6]}@remote.example"
    submit_dsn(
        server, deployment, [recipient], subject, ["RET=HDRS", "ENVID=QQ+2B314"],
        ["NOTIFY=SUCCESS,FAILURE", f"ORCPT=rfc822;{recipient.upper()}"], body="SECRET BODY\r\n",
    )  # fmt: skip
    wait_until(lambda: fresh_sink.handler.find(subject.encode()), "the remote delivery")
    _, raw = wait_for_mail(deployment.data, ALICE, "INBOX", subject.encode())
    assert headers(raw, "Subject") == ["Successful Mail Delivery Report"]
    [block] = dsn_recipients(raw)
    assert block["Action"] == "relayed" and block["Status"] == "2.0.0"
    assert block["Final-Recipient"] == f"rfc822; {recipient}"
    assert block["Original-Recipient"] == f"rfc822; {recipient.upper()}"
    assert "Original-Envelope-Id: QQ+314" in raw.decode()  # xtext decoded
    assert b"SECRET BODY" not in raw and b"text/rfc822-headers" in raw


def test_dsn_never_suppresses_the_bounce(
    server: MailServer, deployment: Deployment, fresh_sink: Sink
) -> None:
    subject = unique("dsn never")
    recipient = f"reject.{uuid.uuid4().hex[:6]}@remote.example"
    submit_dsn(server, deployment, [recipient], subject, [], ["NOTIFY=NEVER"])
    wait_until(lambda: fresh_sink.handler.attempts_for(recipient), "the refused attempt")
    wait_until(lambda: not queued(deployment.data), "an empty queue")
    time.sleep(1.0)  # a report, if one were made, is stored right after the row settles
    assert reports(deployment.data, subject.encode()) == []


@pytest.mark.parametrize("ret", ["FULL", "HDRS"])
def test_dsn_ret_decides_what_a_bounce_returns(
    server: MailServer, deployment: Deployment, fresh_sink: Sink, ret: str
) -> None:
    subject = unique(f"dsn ret {ret}")
    recipient = f"reject.{uuid.uuid4().hex[:6]}@remote.example"
    body = f"the body {uuid.uuid4().hex}\r\n"
    submit_dsn(server, deployment, [recipient], subject, [f"RET={ret}"], ["NOTIFY=FAILURE"], body)
    _, raw = wait_for_mail(deployment.data, ALICE, "INBOX", subject.encode())
    [block] = dsn_recipients(raw)
    assert block["Action"] == "failed" and block["Status"] == "5.1.1"
    if ret == "FULL":
        assert body.encode() in raw and b"Content-Type: message/rfc822" in raw
    else:
        assert body.encode() not in raw and b"text/rfc822-headers" in raw


def test_dsn_delay_is_reported_once(
    server: MailServer, deployment: Deployment, fresh_sink: Sink
) -> None:
    subject = unique("dsn delay")
    recipient = f"later.{uuid.uuid4().hex[:6]}@remote.example"
    submit_dsn(server, deployment, [recipient], subject, [], ["NOTIFY=DELAY,FAILURE"])
    wait_until(lambda: fresh_sink.handler.attempts_for(recipient) >= 3, "three attempts")
    found = reports(deployment.data, subject.encode())
    assert len(found) == 1, found
    assert headers(found[0], "Subject") == ["Delayed Mail (still being retried)"]
    [block] = dsn_recipients(found[0])
    assert block["Action"] == "delayed" and block["Status"] == "4.2.0", block["Status"]
    [row] = [r for r in queued(deployment.data) if r["recipient"] == recipient]
    assert delete_queued(deployment.data, row["queue_id"]) == 1


def test_dsn_success_for_a_local_recipient_is_delivered(
    server: MailServer, deployment: Deployment
) -> None:
    subject = unique("dsn local")
    submit_dsn(server, deployment, [BOB], subject, ["ENVID=local1"], ["NOTIFY=SUCCESS"])
    wait_for_mail(deployment.data, BOB, "INBOX", subject.encode(), timeout=0)
    found = reports(deployment.data, subject.encode())
    assert len(found) == 1, found
    [block] = dsn_recipients(found[0])
    assert block["Action"] == "delivered" and block["Final-Recipient"] == f"rfc822; {BOB}"


MALFORMED_DSN = {
    "notify-never-and-more": ("RCPT", "NOTIFY=NEVER,SUCCESS"),
    "notify-unknown": ("RCPT", "NOTIFY=SOMETIMES"),
    "notify-twice": ("RCPT", "NOTIFY=SUCCESS NOTIFY=FAILURE"),
    "orcpt-no-type": ("RCPT", "ORCPT=bob@acme.example"),
    "orcpt-bad-xtext": ("RCPT", "ORCPT=rfc822;bob+zz@acme.example"),
    "ret-unknown": ("MAIL", "RET=EVERYTHING"),
    "envid-too-long": ("MAIL", "ENVID=" + "x" * 101),
}


@pytest.mark.parametrize(("verb", "param"), list(MALFORMED_DSN.values()), ids=list(MALFORMED_DSN))
def test_malformed_dsn_parameters_are_refused(
    server: MailServer, deployment: Deployment, verb: str, param: str
) -> None:
    with secure(server, deployment) as client:
        login(client, ALICE, PASSWORD)
        if verb == "RCPT":
            assert client.mail(ALICE)[0] == 250
            code, text = client.docmd("RCPT", f"TO:<{BOB}> {param}")
        else:
            code, text = client.docmd("MAIL", f"FROM:<{ALICE}> {param}")
        assert code == 501 and text.startswith(b"5.5.4"), (code, text)
        assert client.noop()[0] == 250


# --- 10. inbound authentication results (on the running server; quarantine at the end) ------


def mx_send(server: MailServer, sender: str, raw: bytes, helo: str = "mx.remote.example") -> None:
    with server.mx(helo) as client:
        client.sendmail(sender, [BOB], raw)


def test_inbound_spf_pass_and_forged_results_removed(
    server: MailServer, deployment: Deployment
) -> None:
    subject = unique("inbound spf")
    sender = "someone@remote.example"
    forged = (
        f"Authentication-Results: {HOSTNAME}; dkim=pass header.d=remote.example;\r\n"
        "\tdmarc=pass header.from=remote.example\r\n"
        "Authentication-Results: other.example; spf=neutral\r\n"
    ).encode()
    mx_send(server, sender, forged + message(sender, BOB, subject))
    _, raw = wait_for_mail(deployment.data, BOB, "INBOX", subject.encode(), timeout=0)
    results = headers(raw, "Authentication-Results")
    ours = [r for r in results if r.startswith(f"{HOSTNAME};") or r.startswith(f"{HOSTNAME} ")]
    assert len(ours) == 1, results
    assert re.search(r"\bspf=pass\b", ours[0]), ours[0]
    assert "dkim=pass" not in " ".join(results), results
    assert "dmarc=pass header.from=remote.example" not in raw.decode(), raw
    assert any(r.startswith("other.example;") for r in results), "others' results are kept"


@pytest.mark.parametrize(
    "forged",
    [
        pytest.param(f"Authentication-Results:\r\n\t{HOSTNAME}; dkim=pass", id="folded"),
        pytest.param(f"Authentication-Results: (ok) {HOSTNAME}; dkim=pass", id="comment"),
    ],
)
def test_inbound_forged_results_removed_in_any_syntax(
    server: MailServer, deployment: Deployment, forged: str
) -> None:
    """RFC 8601 allows folding white space and comments before the authserv-id; a forged
    header written that way claims to be ours just the same and must go too."""
    subject = unique("inbound forged")
    sender = "someone@remote.example"
    raw_in = f"{forged} header.d=remote.example\r\n".encode() + message(sender, BOB, subject)
    mx_send(server, sender, raw_in)
    _, raw = wait_for_mail(deployment.data, BOB, "INBOX", subject.encode(), timeout=0)
    results = headers(raw, "Authentication-Results")
    assert "dkim=pass" not in " ".join(results), results
    assert len(results) == 1 and results[0].startswith(f"{HOSTNAME};"), results


def test_inbound_dmarc_reject(server: MailServer, deployment: Deployment) -> None:
    subject = unique("dmarc reject")
    sender = "ceo@strict.example"
    with pytest.raises(smtplib.SMTPDataError) as refused:
        mx_send(server, sender, message(sender, BOB, subject))
    assert refused.value.smtp_code == 550
    assert refused.value.smtp_error.startswith(b"5.7.1"), refused.value.smtp_error
    for box in ("INBOX", "Junk"):
        assert not [m for m in stored(deployment.data, BOB, box) if subject.encode() in m[1]]


# --- 8. retries and persistence --------------------------------------------------------------


def test_deferred_mail_is_retried_and_survives_a_restart(
    server: MailServer, deployment: Deployment, fresh_sink: Sink
) -> None:
    subject = unique("later")
    recipient = f"later.{uuid.uuid4().hex[:6]}@remote.example"
    assert submit(server, deployment, ALICE, [recipient], subject) == {}

    def retried() -> list[dict[str, Any]]:
        return [
            i for i in queued(deployment.data) if i["recipient"] == recipient and i["attempts"] >= 2
        ]

    wait_until(retried, "two attempts")
    rows = [r for r in queue_cli(deployment.data) if r["recipient"] == recipient]
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["mail_from"] == ALICE and row["tenant"] == "acme"
    assert row["attempts"] >= 2
    assert row["last_error"].startswith("451 4.2.0"), row
    assert fresh_sink.handler.attempts_for(recipient) >= 2
    attempts = row["attempts"]

    server.restart()  # SIGTERM: exits 0, then starts again on the same data
    rows = [r for r in queue_cli(deployment.data) if r["recipient"] == recipient]
    assert len(rows) == 1 and rows[0]["queue_id"] == row["queue_id"], rows
    assert rows[0]["attempts"] >= attempts
    assert not fresh_sink.handler.find(subject.encode())

    fresh_sink.handler.accept_later = True
    got = wait_until(lambda: fresh_sink.handler.find(subject.encode()), "the retried delivery")
    assert len(got) == 1 and got[0].rcpt_tos == [recipient] and got[0].mail_from == ALICE
    wait_until(lambda: not queued(deployment.data), "an empty queue")
    assert not [m for m in stored(deployment.data, ALICE, "INBOX") if subject.encode() in m[1]]


def test_queue_retry_and_delete(
    server: MailServer, deployment: Deployment, fresh_sink: Sink
) -> None:
    subject = unique("later, deleted")
    recipient = f"later.{uuid.uuid4().hex[:6]}@remote.example"
    assert submit(server, deployment, ALICE, [recipient], subject) == {}
    rows = wait_until(
        lambda: [
            i for i in queued(deployment.data) if i["recipient"] == recipient and i["attempts"]
        ],
        "a first attempt",
    )
    assert len(rows) == 1, rows
    queue_id = rows[0]["queue_id"]

    out = cli(deployment.data, "queue", "retry", queue_id)  # fails the test on a non-zero exit
    assert "1 recipient(s)" in out, out
    before = fresh_sink.handler.attempts_for(recipient)
    wait_until(lambda: fresh_sink.handler.attempts_for(recipient) > before, "another attempt")

    out = cli(deployment.data, "queue", "delete", queue_id)
    assert "deleted 1" in out, out
    assert not [r for r in queued(deployment.data) if r["recipient"] == recipient]
    # nothing more happens to it: no delivery, no bounce
    fresh_sink.handler.accept_later = True
    time.sleep(1.5)
    assert not fresh_sink.handler.find(subject.encode())
    assert not [m for m in stored(deployment.data, ALICE, "INBOX") if subject.encode() in m[1]]


def readable_copies(data: Path, email: str, mailbox: str, needle: bytes) -> tuple[int, int]:
    """(copies whose content is readable and holds ``needle``, copies that cannot be read)."""

    async def count() -> tuple[int, int]:
        async with open_services(load_settings(data)) as svc:
            target = await svc.mail_router.resolve(email)
            assert target is not None, email
            tenant = target.tenant_id
            found, lost = 0, 0
            for m in await svc.mail_store.messages(tenant, target.user_ids[0], mailbox):
                try:
                    found += needle in await svc.mail_store.raw(tenant, m)
                except NotFound:
                    lost += 1
            return found, lost

    result: tuple[int, int] = asyncio.run(count())
    return result


def delete_queued(data: Path, queue_id: str) -> int:
    """``queue delete`` in-process (the CLI takes longer than the window this needs)."""

    async def delete() -> int:
        async with open_services(load_settings(data)) as svc:
            return await svc.queue.delete(Principal.system("tester"), queue_id)

    result: int = asyncio.run(delete())
    return result


def test_queue_delete_while_sending_keeps_the_senders_copy(
    server: MailServer, deployment: Deployment, fresh_sink: Sink
) -> None:
    """Deleting a queued message while it is being sent must not release its content twice:
    the sender's Sent copy is the same (content-addressed, reference-counted) object."""
    subject = unique("slow, deleted while sending")
    recipient = f"slow.{uuid.uuid4().hex[:6]}@remote.example"
    assert submit(server, deployment, BOB, [recipient], subject) == {}
    assert readable_copies(deployment.data, BOB, "Sent", subject.encode()) == (1, 0)
    wait_until(lambda: fresh_sink.handler.sending(subject.encode()), "DATA at the remote MX")
    rows = [i for i in queued(deployment.data) if i["recipient"] == recipient]
    assert [r["status"] for r in rows] == ["sending"], rows
    assert delete_queued(deployment.data, rows[0]["queue_id"]) == 1
    wait_until(lambda: fresh_sink.handler.find(subject.encode()), "the slow delivery")
    time.sleep(0.5)  # the worker settles the (already deleted) row
    assert queued(deployment.data) == []
    found, lost = readable_copies(deployment.data, BOB, "Sent", subject.encode())
    assert (found, lost) == (1, 0), "the Sent copy lost its content (released twice)"


# --- 9 and 10 (continued): the server restarted with other settings ------------------------


@pytest.fixture(scope="module")
def reconfigured(
    server: MailServer, deployment: Deployment, dns_server: DnsServer, sink: Sink
) -> MailServer:
    """For the module's last tests: queued mail expires after about a second, and mail that
    fails a DMARC reject policy is quarantined (``[smtp] dmarc_reject_action``)."""
    set_option(deployment.data, "smtp", "dmarc_reject_action", '"quarantine"')
    return server.restart(base_env(dns_server, sink) | {"ENCLAVE_QUEUE__MAX_AGE_HOURS": "0.0003"})


def test_unreachable_host_expires_with_a_4_4_7_report(
    reconfigured: MailServer, deployment: Deployment, fresh_sink: Sink
) -> None:
    assert queued(deployment.data) == []
    fresh_sink.stop()
    try:
        subject = unique("expiring")
        recipient = f"gone.{uuid.uuid4().hex[:6]}@remote.example"
        assert submit(reconfigured, deployment, ALICE, [recipient], subject) == {}
        _, raw = wait_for_mail(deployment.data, ALICE, "INBOX", subject.encode())
        blocks = dsn_recipients(raw)
        assert len(blocks) == 1, blocks
        assert blocks[0]["Final-Recipient"] == f"rfc822; {recipient}"
        assert blocks[0]["Action"] == "failed"
        assert blocks[0]["Status"] == "4.4.7"
        assert "cannot connect" in blocks[0]["Diagnostic-Code"], blocks[0]["Diagnostic-Code"]
        assert queued(deployment.data) == []
    finally:
        fresh_sink.start()


def test_inbound_dmarc_quarantine_files_in_junk(
    reconfigured: MailServer, deployment: Deployment
) -> None:
    subject = unique("dmarc quarantine")
    sender = "ceo@strict.example"
    mx_send(reconfigured, sender, message(sender, BOB, subject))
    _, raw = wait_for_mail(deployment.data, BOB, "Junk", subject.encode(), timeout=0)
    assert not [m for m in stored(deployment.data, BOB, "INBOX") if subject.encode() in m[1]]
    ours = [r for r in headers(raw, "Authentication-Results") if r.startswith(HOSTNAME)]
    assert len(ours) == 1, ours
    assert re.search(r"\bdmarc=fail\b", ours[0]) and re.search(r"\bspf=fail\b", ours[0]), ours


# --- smarthost ---------------------------------------------------------------------------------


def test_smarthost_relays_everything_without_mx_lookups(
    deployment: Deployment, sink: Sink, tmp_path: Path
) -> None:
    """With [queue] smarthost set, remote mail goes to that host, whatever the domain's MX
    (nowhere.example has no DNS records at all here)."""
    data = copy_deployment(deployment.data, tmp_path / "relay")
    env = {"ENCLAVE_QUEUE__SMARTHOST": f"{HOST}:{sink.port}", "ENCLAVE_QUEUE__POLL_SECONDS": "0.3"}
    relay = MailServer(data, env).start()
    try:
        subject = unique("via smarthost")
        before = len(sink.handler.received)
        with secure(relay, deployment) as client:
            login(client, ALICE, PASSWORD)
            client.sendmail(
                ALICE,
                ["someone@nowhere.example"],
                message(ALICE, "someone@nowhere.example", subject),
            )
        got = wait_until(
            lambda: [r for r in sink.handler.received[before:] if subject.encode() in r.content],
            "the smarthost received the message",
        )
        assert got[0].rcpt_tos == ["someone@nowhere.example"] and got[0].mail_from == ALICE
        assert queue_cli(data) == []
    finally:
        relay.stop()
