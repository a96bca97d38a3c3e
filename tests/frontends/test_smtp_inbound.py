"""The inbound SMTP (MX) listener, end to end: a real ``enclave serve`` process on loopback
ports, the deployment prepared with the real ``enclave`` CLI, spoken to with ``smtplib`` (and
with a plain socket where ``smtplib`` would normalise what we want to send).

What the server stored is read back in-process from the deployment directory (SQLite in WAL
mode may be read while the server runs), decrypting the stored objects with the deployment's
own keys.

One deployment (``template``) is prepared once and never served; the module's main server runs
on a copy of it, and the crash test on another. Tests on the main server use distinct
recipients, so they do not depend on each other's order.
"""

from __future__ import annotations

import asyncio
import os
import re
import smtplib
import socket
import ssl
import threading
import time
import uuid
from base64 import b64encode
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from enclave.app import open_services
from enclave.backends.db.platform import transaction
from enclave.config import load_settings
from enclave.core.errors import NotFound
from enclave.core.identity import locate
from enclave.core.mail.store import StoredMessage
from tests.frontends.mailserver import MailServer
from tests.frontends.webserver import HOST, CliError, cli, cli_chains, copy_deployment, set_option

PASSWORD = "correct horse battery"
MX_HOST = "mx.test.example"
MAX_BYTES = 1_500_000  # [smtp] max_message_bytes of every server here (above the 1 MiB quota)
CLIENT = "client.test"
SENDER = "sender@example.org"

ALICE = "alice@acme.example"  # plain deliveries: exact bytes, UIDs 1, 2, 3, 4
BOB = "bob@acme.example"  # group member
CAROL = "carol@acme.example"  # group member; alias target; pipelining; mixed sends
ERIN = "erin@acme.example"  # group member, disabled
TEAM = "team@acme.example"  # group address: bob, carol, erin
INFO = "info@acme.example"  # alias of carol (added by the alias test, if the CLI has it)
QUINN = "quinn@acme.example"  # 1 MiB quota
SMUG = "smug@acme.example"  # must never receive anything (smuggling, size limit)
VICTIM = "victim@acme.example"  # the smuggled recipient: must never receive anything
CONC = "conc@acme.example"  # concurrency
GUS = "gus@globex.example"  # tenant globex (suspended for a while), 1 MiB quota
UNKNOWN = "nobody@acme.example"
FOREIGN = "someone@example.org"


# --- deployment and servers ---------------------------------------------------------------


def _add_user(email: str, *flags: str) -> tuple[tuple[str, ...], str]:
    return ("user", "add", email, *flags, "--password-stdin"), PASSWORD + "\n"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A deployment prepared with the CLI only: tenants acme and globex, users, a group."""
    data = tmp_path_factory.mktemp("smtp") / "template"
    cli(data, "init", "--hostname", MX_HOST)
    set_option(data, "smtp", "max_message_bytes", str(MAX_BYTES))
    cli(data, "tenant", "create", "acme", "--domain", "acme.example")
    cli_chains(
        data,
        [
            [
                (("tenant", "create", "globex", "--domain", "globex.example"), None),
                _add_user(GUS, "--quota", "1"),
                _add_user(ALICE),
            ],
            [
                (("group", "add", "acme", "team", "--address", TEAM), None),
                _add_user(BOB),
                (("group", "add-member", "acme", "team", BOB), None),
                _add_user(CAROL),
                (("group", "add-member", "acme", "team", CAROL), None),
            ],
            [
                _add_user(ERIN),
                (("group", "add-member", "acme", "team", ERIN), None),
                (("user", "disable", ERIN), None),
                _add_user(QUINN, "--quota", "1"),
            ],
            [_add_user(SMUG), _add_user(VICTIM), _add_user(CONC)],
        ],
    )
    return data


@pytest.fixture(scope="module")
def main(template: Path) -> Iterator[MailServer]:
    server = MailServer(copy_deployment(template, template.parent / "main")).start()
    try:
        yield server
    finally:
        server.stop()


# --- reading the store back -------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    message: StoredMessage
    raw: bytes
    meta: dict[str, Any]

    @property
    def message_id(self) -> str | None:
        return message_id_of(self.raw)


def message_id_of(raw: bytes) -> str | None:
    found = re.search(rb"^Message-ID: <([^>\r\n]+)>\r?$", raw, re.MULTILINE | re.IGNORECASE)
    return found.group(1).decode() if found else None


def _run(data: Path, work: Any) -> Any:
    # The session's test DNS (as the server has it), and no other ENCLAVE_* overrides.
    environ = {k: v for k, v in os.environ.items() if k.startswith("ENCLAVE_DNS__")}

    async def main() -> Any:
        async with open_services(load_settings(data, environ=environ)) as svc:
            return await work(svc)

    return asyncio.run(main())


def ids(data: Path, email: str) -> tuple[str, str]:
    """(tenant id, user id) of a user."""

    async def work(svc: Any) -> tuple[str, str]:
        async with transaction(svc.db) as tx:
            tenant, _, user = await locate(tx, email)
        return tenant.id, user["id"]

    result: tuple[str, str] = _run(data, work)
    return result


def inbox(data: Path, email: str) -> list[Stored]:
    """Every message in a user's INBOX, decrypted, in UID order ([] before the first
    delivery, when the user has no mailboxes yet)."""

    async def work(svc: Any) -> list[Stored]:
        async with transaction(svc.db) as tx:
            tenant, _, user = await locate(tx, email)
        try:
            messages = await svc.mail_store.messages(tenant.id, user["id"], "INBOX")
        except NotFound:
            return []
        return [
            Stored(
                m, await svc.mail_store.raw(tenant.id, m), await svc.mail_store.meta(tenant.id, m)
            )
            for m in sorted(messages, key=lambda m: m.uid)
        ]

    result: list[Stored] = _run(data, work)
    return result


def with_id(data: Path, email: str, message_id: str) -> list[Stored]:
    return [s for s in inbox(data, email) if s.message_id == message_id]


def blob_files(data: Path, tenant_id: str) -> set[str]:
    """The content objects on disk for a tenant (one file per stored object)."""
    return {p.name for p in (data / "blobs" / tenant_id).glob("*/*") if p.is_file()}


def staging_files(data: Path) -> list[Path]:
    return [p for p in (data / "blobs" / ".staging").iterdir() if p.is_file()]


def _header(name: bytes) -> re.Pattern[bytes]:
    """One header field (with its folded lines), matched where ``match`` is told to start."""
    return re.compile(rb"(" + name + rb": [^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*)")


RECEIVED = _header(b"Received")
AUTH_RESULTS = _header(b"Authentication-Results")


def _unfold(header: bytes) -> str:
    return re.sub(r"\r\n[ \t]+", " ", header.decode()).strip()


def split_trace(raw: bytes) -> tuple[str, str, bytes]:
    """What the server prepends to a message it accepts, its Received header and its
    Authentication-Results header (both unfolded), and the rest of the stored message."""
    received = RECEIVED.match(raw)
    assert received, f"stored message does not start with a Received header: {raw[:200]!r}"
    results = AUTH_RESULTS.match(raw, received.end())
    assert results, f"no Authentication-Results after Received: {raw[:400]!r}"
    assert results.group(1).startswith(f"Authentication-Results: {MX_HOST}".encode())
    return _unfold(received.group(1)), _unfold(results.group(1)), raw[results.end() :]


def sent_part(raw: bytes) -> bytes:
    """The stored message without the trace headers the server prepended."""
    return split_trace(raw)[2]


# --- building and sending mail ------------------------------------------------------------


def new_id(tag: str) -> str:
    return f"{tag}.{uuid.uuid4().hex}@test.example"


def message(to: str, subject: str, message_id: str, body: str = "", *, size: int = 0) -> bytes:
    """An RFC 5322 message with CRLF line endings (ending in CRLF, so ``smtplib`` sends it
    unchanged); ``size`` pads the body with 76-character lines to about that many bytes."""
    lines = [
        f"From: Sender <{SENDER}>",
        f"To: <{to}>",
        f"Subject: {subject}",
        f"Message-ID: <{message_id}>",
        f"Date: {format_datetime(datetime.now(UTC))}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "",
        *(body.splitlines() or ["Hello."]),
    ]
    raw = "\r\n".join(lines).encode() + b"\r\n"
    filler = b"x" * 76 + b"\r\n"
    if size > len(raw):
        raw += filler * ((size - len(raw)) // len(filler) + 1)
    return raw


def send(
    client: smtplib.SMTP,
    recipients: list[str],
    raw: bytes,
    *,
    sender: str = SENDER,
    options: tuple[str, ...] = (),
) -> tuple[int, str]:
    """MAIL, RCPT for each recipient (all must be accepted), DATA; the DATA reply."""
    code, reply = client.mail(sender, list(options))
    assert code == 250, reply
    for rcpt in recipients:
        code, reply = client.rcpt(rcpt)
        assert code == 250, (rcpt, reply)
    code, reply = client.data(raw)
    return code, reply.decode()


def queue_id(reply: str) -> str:
    found = re.search(r"queued as ([0-9A-Za-z]+)", reply)
    assert found, f"no 'queued as' in {reply!r}"
    return found.group(1)


def tls_context(data: Path) -> ssl.SSLContext:
    """Trusts exactly the deployment's (self-signed) certificate, and checks host names."""
    return ssl.create_default_context(cafile=str(data / "tls" / "cert.pem"))


def start_tls(
    client: smtplib.SMTP, context: ssl.SSLContext, server_hostname: str = "localhost"
) -> None:
    """``smtplib.SMTP.starttls`` verifying the certificate against ``server_hostname``
    (``starttls`` would use the address we connected to), then EHLO again."""
    client.ehlo_or_helo_if_needed()
    code, reply = client.docmd("STARTTLS")
    assert code == 220, reply
    client.sock = context.wrap_socket(client.sock, server_hostname=server_hostname)
    client.file = None
    client.helo_resp = client.ehlo_resp = None
    client.esmtp_features = {}
    client.does_esmtp = False
    code, reply = client.ehlo()
    assert code == 250, reply


class RawSmtp:
    """SMTP over a plain socket: exact bytes out, replies (multi-line aware) in."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=30)
        self._buffer = b""
        self.banner = self.reply()

    def __enter__(self) -> RawSmtp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _line(self) -> bytes:
        while b"\r\n" not in self._buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"server closed the connection; pending {self._buffer!r}")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\r\n")
        return line

    def reply(self) -> tuple[int, str]:
        lines = []
        while True:
            line = self._line()
            lines.append(line[4:].decode("utf-8", "replace"))
            if line[3:4] != b"-":
                return int(line[:3]), "\n".join(lines)

    def command(self, line: str | bytes) -> tuple[int, str]:
        self.send((line.encode() if isinstance(line, str) else line) + b"\r\n")
        return self.reply()


# --- 1. EHLO and STARTTLS -----------------------------------------------------------------

EXTENSIONS = ("8bitmime", "smtputf8", "pipelining", "enhancedstatuscodes")


def _assert_extensions(client: smtplib.SMTP, *, starttls: bool) -> None:
    features = client.esmtp_features
    assert features.get("size") == str(MAX_BYTES), features
    for name in EXTENSIONS:
        assert name in features, (name, features)
    assert ("starttls" in features) is starttls, features
    assert "auth" not in features, features
    assert client.ehlo_resp is not None
    lines = client.ehlo_resp.decode().splitlines()
    assert lines[0] == MX_HOST
    assert not any(line.upper().startswith("AUTH") for line in lines), lines


def test_greeting_names_the_server(main: MailServer) -> None:
    with RawSmtp(main.smtp_port) as raw:
        assert raw.banner[0] == 220
        assert raw.banner[1].startswith(f"{MX_HOST} "), raw.banner
        assert "ESMTP" in raw.banner[1]
        assert raw.command("QUIT")[0] == 221


def test_ehlo_advertises_extensions_and_no_auth_before_and_after_starttls(
    main: MailServer,
) -> None:
    with main.mx() as client:
        code, _ = client.ehlo()
        assert code == 250
        _assert_extensions(client, starttls=True)
        # No authentication on the MX port, not even when asked for.
        code, _ = client.docmd(
            "AUTH", "PLAIN " + b64encode(f"\0{ALICE}\0{PASSWORD}".encode()).decode()
        )
        assert code >= 500

        start_tls(client, tls_context(main.data))
        assert isinstance(client.sock, ssl.SSLSocket)
        assert client.sock.version() in ("TLSv1.2", "TLSv1.3")
        cert = client.sock.getpeercert()
        assert ("DNS", "localhost") in cert["subjectAltName"]
        _assert_extensions(client, starttls=False)

        code, _ = client.docmd(
            "AUTH", "PLAIN " + b64encode(f"\0{ALICE}\0{PASSWORD}".encode()).decode()
        )
        assert code >= 500, "the MX listener must not authenticate anyone"
        assert client.noop()[0] == 250


def test_starttls_certificate_is_really_verified(main: MailServer) -> None:
    """The positive check above means something: a wrong trust anchor or host name fails."""
    untrusting = ssl.create_default_context()  # system CAs only: the self-signed cert fails
    for context, name in ((untrusting, "localhost"), (tls_context(main.data), "wrong.example")):
        client = main.mx()
        try:
            with pytest.raises(ssl.SSLCertVerificationError):
                start_tls(client, context, name)
        finally:
            client.close()


# --- 2. delivery to a known user ------------------------------------------------------------


def test_accepted_message_is_stored_byte_for_byte_below_the_trace_headers(
    main: MailServer,
) -> None:
    body = (
        "Grüße aus Köln — ✓\r\n"
        ".a line that starts with a dot (dot-stuffed on the wire)\r\n"
        "..and one with two\r\n"
        ".\r\n"
        "trailing spaces   \r\n"
        "\tand a tab"
    )
    sent: list[tuple[bytes, str, str, str]] = []  # raw, subject, queue id, protocol
    with main.mx() as client:
        client.ehlo()
        for n in (1, 2):
            subject = f"Delivery {n}"
            raw = message(ALICE, subject, new_id("plain"), body)
            code, reply = send(client, [ALICE], raw)
            assert code == 250 and "queued as" in reply, reply
            assert reply.startswith("2.0.0"), reply
            sent.append((raw, subject, queue_id(reply), "ESMTP"))
        # An internationalised envelope sender (SMTPUTF8) and an 8-bit body (8BITMIME).
        raw = message(ALICE, "Delivery 3", new_id("utf8"), body)
        code, reply = send(
            client, [ALICE], raw, sender="jörg@exämple.org", options=("SMTPUTF8", "BODY=8BITMIME")
        )
        assert code == 250, reply
        sent.append((raw, "Delivery 3", queue_id(reply), "ESMTP"))
    with main.mx() as client:
        start_tls(client, tls_context(main.data))
        raw = message(ALICE, "Delivery 4 over TLS", new_id("tls"), body)
        code, reply = send(client, [ALICE], raw)
        assert code == 250, reply
        sent.append((raw, "Delivery 4 over TLS", queue_id(reply), "ESMTPS"))

    stored = inbox(main.data, ALICE)
    assert [s.message.uid for s in stored] == [1, 2, 3, 4]
    assert len({qid for _, _, qid, _ in sent}) == 4
    for item, (raw, subject, qid, protocol) in zip(stored, sent, strict=True):
        received, results, rest = split_trace(item.raw)
        assert rest == raw, "the stored message differs from what was sent"
        assert "spf=" in results and "dmarc=" in results, results
        assert received.startswith(f"Received: from {CLIENT} ([127.0.0.1])"), received
        assert f" by {MX_HOST} (Enclave) with {protocol} id {qid} " in received, received
        assert f"for <{ALICE}>;" in received, received
        assert item.message.size == len(item.raw)
        assert item.message.mailbox == "INBOX"
        assert item.meta["envelope"]["subject"] == subject
        assert item.meta["envelope"]["message-id"] == f"<{message_id_of(raw)}>"


# --- 3. unknown users and relaying ----------------------------------------------------------


def test_unknown_local_user_is_refused_at_rcpt(main: MailServer) -> None:
    with main.mx() as client:
        client.ehlo()
        assert client.mail(SENDER)[0] == 250
        code, reply = client.rcpt(UNKNOWN)
        assert code == 550 and reply.startswith(b"5.1.1"), reply
        # The percent hack is just an unknown local part here, not a route elsewhere.
        code, reply = client.rcpt("someone%example.org@acme.example")
        assert code == 550, reply


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "starttls"])
@pytest.mark.parametrize("sender", [SENDER, ALICE, "<>"], ids=["foreign", "local", "null"])
def test_no_relaying_to_foreign_domains(main: MailServer, tls: bool, sender: str) -> None:
    with main.mx() as client:
        if tls:
            start_tls(client, tls_context(main.data))
        else:
            client.ehlo()
        code, reply = client.docmd("MAIL", f"FROM:<{sender.strip('<>')}>")
        assert code == 250, reply
        for target in (FOREIGN, "x@sub.acme.example", "someone@acme.example.org"):
            code, reply = client.rcpt(target)
            assert code == 554 and reply.startswith(b"5.7.1"), (target, reply)
        # A source route to a foreign host through a local domain is still relaying.
        code, reply = client.docmd("RCPT", "TO:<@acme.example:someone@example.org>")
        assert code >= 500, reply
        code, reply = client.docmd("DATA")
        assert code == 503, "DATA with no accepted recipient must be refused"


def test_all_recipients_refused_raises_in_smtplib(main: MailServer) -> None:
    raw = message(FOREIGN, "relay?", new_id("relay"))
    with main.mx() as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.sendmail(ALICE, [FOREIGN, UNKNOWN], raw)
        codes = {rcpt: code for rcpt, (code, _) in refused.value.recipients.items()}
        assert codes == {FOREIGN: 554, UNKNOWN: 550}


def test_mixed_local_and_foreign_recipients_deliver_only_locally(main: MailServer) -> None:
    mid = new_id("mixed")
    raw = message(CAROL, "mixed", mid)
    with main.mx() as client:
        refused = client.sendmail(SENDER, [CAROL, FOREIGN], raw)
    assert set(refused) == {FOREIGN} and refused[FOREIGN][0] == 554
    [copy] = with_id(main.data, CAROL, mid)
    received, _, rest = split_trace(copy.raw)
    assert rest == raw
    assert f"for <{CAROL}>" in received


# --- 4. size limit ------------------------------------------------------------------------


def test_declared_size_over_the_limit_is_refused_at_mail(main: MailServer) -> None:
    with main.mx() as client:
        client.ehlo()
        code, reply = client.mail(SENDER, [f"SIZE={MAX_BYTES + 1}"])
        assert code == 552, reply
        code, reply = client.mail(SENDER, [f"SIZE={MAX_BYTES}"])  # exactly the limit: fine
        assert code == 250, reply
        assert client.rcpt(SMUG)[0] == 250
        assert client.rset()[0] == 250


def test_data_over_the_limit_is_refused_and_nothing_is_stored(main: MailServer) -> None:
    tenant_id, _ = ids(main.data, SMUG)
    before = blob_files(main.data, tenant_id)
    raw = message(SMUG, "too big", new_id("big"), size=MAX_BYTES + 20_000)
    with main.mx() as client:
        client.ehlo()
        assert client.mail(SENDER)[0] == 250  # no SIZE declared: found out during DATA
        assert client.rcpt(SMUG)[0] == 250
        code, reply = client.data(raw)
        assert code == 552, reply
        # The connection is still usable, and the transaction is gone.
        assert client.noop()[0] == 250
        assert client.docmd("DATA")[0] == 503
    assert inbox(main.data, SMUG) == []
    assert blob_files(main.data, tenant_id) == before
    assert staging_files(main.data) == []


# --- 5. SMTP smuggling -----------------------------------------------------------------------

SMUGGLED = (
    b"MAIL FROM:<" + ALICE.encode() + b">\r\n"
    b"RCPT TO:<" + VICTIM.encode() + b">\r\n"
    b"DATA\r\n"
    b"From: <" + ALICE.encode() + b">\r\n"
    b"To: <" + VICTIM.encode() + b">\r\n"
    b"Subject: smuggled\r\n"
    b"\r\n"
    b"This message was smuggled inside another one.\r\n"
    b".\r\n"
)


def _smuggle(server: MailServer, body: bytes) -> tuple[int, str]:
    """One transaction to SMUG whose DATA is ``body`` (sent exactly as given, then the real
    end of data); the reply to DATA. Checks that no other reply follows it."""
    with RawSmtp(server.smtp_port) as raw:
        assert raw.command("EHLO attacker.example")[0] == 250
        assert raw.command("MAIL FROM:<attacker@example.org>")[0] == 250
        assert raw.command(f"RCPT TO:<{SMUG}>")[0] == 250
        assert raw.command("DATA")[0] == 354
        raw.send(body + b"\r\n.\r\n")
        reply = raw.reply()
        # The smuggled commands were data, not commands: the next reply answers our NOOP.
        assert raw.command("NOOP")[0] == 250
        assert raw.command("QUIT")[0] == 221
    return reply


def _assert_nothing_stored(server: MailServer, before: set[str], tenant_id: str) -> None:
    assert inbox(server.data, VICTIM) == [], "the smuggled message was delivered"
    assert inbox(server.data, SMUG) == [], "the carrier message was delivered"
    assert blob_files(server.data, tenant_id) == before, "an object was stored"
    assert staging_files(server.data) == []


@pytest.mark.parametrize(
    "end", [b"\n.\n", b"\r\n.\n", b"\n.\r\n"], ids=["LF.LF", "CRLF.LF", "LF.CRLF"]
)
def test_smtp_smuggling_bare_lf_is_rejected(main: MailServer, end: bytes) -> None:
    tenant_id, _ = ids(main.data, VICTIM)
    before = blob_files(main.data, tenant_id)
    carrier = b"From: <attacker@example.org>\r\nTo: <" + SMUG.encode() + b">\r\n"
    carrier += b"Subject: carrier\r\n\r\nInnocent text." + end + SMUGGLED
    code, reply = _smuggle(main, carrier.removesuffix(b"\r\n.\r\n"))
    assert code == 550 and reply.startswith("5.6.11"), reply
    _assert_nothing_stored(main, before, tenant_id)


@pytest.mark.parametrize(
    "body",
    [
        b"Subject: lone CR\r\n\r\nA lone \r carriage return.",
        b"Subject: CR dot\r\n\r\nInnocent text.\r\n.\r" + SMUGGLED.removesuffix(b"\r\n.\r\n"),
        b"Subject: CR dot CR\r\n\r\nInnocent text.\r.\r" + SMUGGLED.removesuffix(b"\r\n.\r\n"),
    ],
    ids=["lone-CR", "CRLF.CR", "CR.CR"],
)
def test_bare_cr_is_rejected(main: MailServer, body: bytes) -> None:
    tenant_id, _ = ids(main.data, VICTIM)
    before = blob_files(main.data, tenant_id)
    code, reply = _smuggle(main, body)
    assert code == 550 and reply.startswith("5.6.11"), reply
    _assert_nothing_stored(main, before, tenant_id)


# --- 6. groups and aliases ------------------------------------------------------------------


def test_group_address_delivers_one_stored_object_to_each_active_member(
    main: MailServer,
) -> None:
    tenant_id, _ = ids(main.data, BOB)
    mid = new_id("team")
    raw = message(TEAM, "to the team", mid)
    with main.mx() as client:
        client.ehlo()
        # bob is addressed twice (directly and through the group): one copy is enough.
        code, reply = send(client, [TEAM, BOB], raw)
        assert code == 250, reply
    [for_bob] = with_id(main.data, BOB, mid)
    [for_carol] = with_id(main.data, CAROL, mid)
    assert with_id(main.data, ERIN, mid) == [], "a disabled member got a copy"
    assert for_bob.raw == for_carol.raw
    assert sent_part(for_bob.raw) == raw
    assert for_bob.message.blob == for_carol.message.blob
    assert for_bob.message.id != for_carol.message.id
    # On disk, an object is the file "<name>.<object id>": exactly one for this message.
    prefix = for_bob.message.blob + "."
    files = [name for name in blob_files(main.data, tenant_id) if name.startswith(prefix)]
    assert len(files) == 1, files


def test_alias_delivers_to_its_user(main: MailServer) -> None:
    try:
        cli(main.data, "alias", "add", INFO, CAROL)
    except CliError as exc:
        if "No such command" in str(exc):
            pytest.skip("'enclave alias add' does not exist yet: alias delivery not tested")
        raise
    mid = new_id("alias")
    raw = message(INFO, "via the alias", mid)
    with main.mx() as client:
        client.ehlo()
        code, reply = send(client, [INFO], raw)
        assert code == 250, reply
    [copy] = with_id(main.data, CAROL, mid)
    received, _, rest = split_trace(copy.raw)
    assert rest == raw
    assert f"for <{INFO}>" in received


# --- 7. quota -----------------------------------------------------------------------------


def test_quota_refuses_what_does_not_fit(main: MailServer) -> None:
    tenant_id, _ = ids(main.data, QUINN)
    fits = message(QUINN, "fits", new_id("fits"), size=300_000)
    with main.mx() as client:
        client.ehlo()
        code, reply = send(client, [QUINN], fits, options=(f"SIZE={len(fits)}",))
        assert code == 250, reply
        assert len(inbox(main.data, QUINN)) == 1
        before = blob_files(main.data, tenant_id)

        too_much = message(QUINN, "does not fit", new_id("over"), size=800_000)
        assert len(fits) + len(too_much) > 1024 * 1024 > len(too_much)
        # Declared: refused at RCPT, temporarily (the user may make room).
        assert client.mail(SENDER, [f"SIZE={len(too_much)}"])[0] == 250
        code, reply = client.rcpt(QUINN)
        assert code == 452 and reply.startswith(b"4.2.2"), reply
        assert client.rset()[0] == 250
        # Not declared: found out at DATA.
        assert client.mail(SENDER)[0] == 250
        assert client.rcpt(QUINN)[0] == 250
        code, reply = client.data(too_much)
        assert code == 552 and reply.startswith(b"5.2.2"), reply
        assert client.noop()[0] == 250
    stored = inbox(main.data, QUINN)
    assert [s.meta["envelope"]["subject"] for s in stored] == ["fits"]
    assert blob_files(main.data, tenant_id) == before
    assert staging_files(main.data) == []


def test_quota_refusal_at_data_stores_no_copy_for_anyone(main: MailServer) -> None:
    """One DATA reply answers for every recipient: if it is a refusal, no recipient may
    have the message (the sender bounces it, and a retry would duplicate it)."""
    mid = new_id("split")
    raw = message(CAROL, "over gus's quota", mid, size=1_200_000)
    with main.mx() as client:
        client.ehlo()
        assert client.mail(SENDER)[0] == 250
        assert client.rcpt(CAROL)[0] == 250  # acme, no quota
        assert client.rcpt(GUS)[0] == 250  # globex, 1 MiB quota
        code, reply = client.data(raw)
    assert code == 552, reply
    assert with_id(main.data, GUS, mid) == []
    assert with_id(main.data, CAROL, mid) == [], (
        "refused with 552, yet carol (the other tenant's recipient) got a copy"
    )


# --- 8. disabled users and suspended tenants ---------------------------------------------


def test_disabled_user_is_refused_at_rcpt(main: MailServer) -> None:
    with main.mx() as client:
        client.ehlo()
        assert client.mail(SENDER)[0] == 250
        code, reply = client.rcpt(ERIN)
        assert code == 550, reply


def test_suspended_tenant_receives_nothing_until_resumed(main: MailServer) -> None:
    def rcpt_code() -> int:
        with main.mx() as client:
            client.ehlo()
            assert client.mail(SENDER)[0] == 250
            return client.rcpt(GUS)[0]

    assert rcpt_code() == 250
    cli(main.data, "tenant", "suspend", "globex")
    try:
        assert rcpt_code() == 550
    finally:
        cli(main.data, "tenant", "resume", "globex")
    assert rcpt_code() == 250


# --- 9. pipelining --------------------------------------------------------------------------


def test_pipelined_commands_are_answered_in_order(main: MailServer) -> None:
    mid = new_id("pipe")
    raw = message(CAROL, "pipelined", mid)
    with RawSmtp(main.smtp_port) as conn:
        assert conn.command(f"EHLO {CLIENT}")[0] == 250
        conn.send(
            f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{CAROL}>\r\nRCPT TO:<{UNKNOWN}>\r\n"
            f"RCPT TO:<{FOREIGN}>\r\nDATA\r\n".encode()
        )
        replies = [conn.reply() for _ in range(5)]
        assert [code for code, _ in replies] == [250, 250, 550, 554, 354], replies
        assert replies[2][1].startswith("5.1.1") and UNKNOWN in replies[2][1]
        conn.send(raw + b".\r\n" + b"NOOP\r\nQUIT\r\n")
        code, reply = conn.reply()
        assert code == 250 and "queued as" in reply, reply
        assert conn.reply()[0] == 250
        assert conn.reply()[0] == 221
    [copy] = with_id(main.data, CAROL, mid)
    assert sent_part(copy.raw) == raw


# --- 10. malformed commands -----------------------------------------------------------------

MALFORMED = {
    "rcpt-null": ([f"MAIL FROM:<{SENDER}>"], "RCPT TO:<>"),
    "mail-not-an-address": ([], "MAIL FROM:<not an address"),
    "mail-no-domain": ([], "MAIL FROM:<justalocalpart>"),
    "mail-no-from": ([], f"MAIL <{SENDER}>"),
    "mail-nested": ([f"MAIL FROM:<{SENDER}>"], f"MAIL FROM:<{SENDER}>"),
    "mail-unknown-parameter": ([], f"MAIL FROM:<{SENDER}> FROBNICATE=yes"),
    "rcpt-overlong": ([f"MAIL FROM:<{SENDER}>"], "RCPT TO:<" + "a" * 600 + "@acme.example>"),
    "noop-overlong": ([], "NOOP " + "x" * 5000),
    "unknown-verb": ([], "FROB the widgets"),
    "rcpt-before-mail": ([], f"RCPT TO:<{ALICE}>"),
    "data-without-rcpt": ([f"MAIL FROM:<{SENDER}>"], "DATA"),
}


@pytest.mark.parametrize(("setup", "bad"), list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_command_is_refused_and_the_connection_stays_usable(
    main: MailServer, setup: list[str], bad: str
) -> None:
    with RawSmtp(main.smtp_port) as conn:
        assert conn.command(f"EHLO {CLIENT}")[0] == 250
        for line in setup:
            assert conn.command(line)[0] == 250, line
        code, reply = conn.command(bad)
        assert 500 <= code < 600, f"{bad[:60]!r} got {code} {reply}"
        assert conn.command("NOOP")[0] == 250
        assert conn.command("RSET")[0] == 250
        assert conn.command(f"MAIL FROM:<{SENDER}>")[0] == 250


@pytest.mark.parametrize("sender", ["root@vm", "root@[127.0.0.1]", '"john doe"@example.org'])
def test_mail_from_single_label_domain_is_accepted(main: MailServer, sender: str) -> None:
    """Any syntactically valid reverse path (RFC 5321 4.1.2) is taken; SPF and DMARC judge
    whether the sender may use it. The MX used to answer 501 to ``root@vm``."""
    mid = new_id("single-label")
    with main.mx(CLIENT) as client:
        client.ehlo()
        code, reply = send(client, [CAROL], message(CAROL, "from a VM", mid), sender=sender)
    assert code == 250, reply
    assert len(with_id(main.data, CAROL, mid)) == 1


# --- 10b. CHUNKING and BINARYMIME (RFC 3030) ------------------------------------------------


def ehlo_lines(port: int) -> list[str]:
    with RawSmtp(port) as conn:
        code, text = conn.command(f"EHLO {CLIENT}")
        assert code == 250, text
        return [line.upper() for line in text.splitlines()]


def test_mx_offers_chunking_and_binarymime(main: MailServer) -> None:
    lines = ehlo_lines(main.smtp_port)
    assert "CHUNKING" in lines and "BINARYMIME" in lines, lines
    assert "CHUNKING" not in ehlo_lines(main.submission_port)  # the MX only


def bdat_transaction(conn: RawSmtp, chunks: list[bytes], *, body: str = "") -> list[str]:
    """MAIL, RCPT, and one BDAT per chunk (the last with LAST), all pipelined; the replies
    to the BDATs."""
    params = f" BODY={body}" if body else ""
    wire = f"MAIL FROM:<{SENDER}>{params}\r\nRCPT TO:<{CAROL}>\r\n".encode()
    for n, chunk in enumerate(chunks):
        last = " LAST" if n == len(chunks) - 1 else ""
        wire += f"BDAT {len(chunk)}{last}\r\n".encode() + chunk
    conn.send(wire)
    assert conn.reply()[0] == 250  # MAIL
    assert conn.reply()[0] == 250  # RCPT
    return [f"{code} {text}" for code, text in (conn.reply() for _ in chunks)]


def test_bdat_chunks_are_stored_byte_for_byte(main: MailServer) -> None:
    mid = new_id("bdat")
    raw = message(CAROL, "in chunks", mid, ".a line that DATA would dot-stuff\n.\nend")
    cut = [raw[:7], raw[7:300], b"", raw[300:]]  # a header split mid-line, an empty chunk
    with RawSmtp(main.smtp_port) as conn:
        assert conn.command(f"EHLO {CLIENT}")[0] == 250
        answers = bdat_transaction(conn, cut)
        assert all(a.startswith("250 2.0.0") for a in answers), answers
        assert "queued as" in answers[-1], answers
        assert conn.command("NOOP")[0] == 250
    [copy] = with_id(main.data, CAROL, mid)
    assert sent_part(copy.raw) == raw


def test_binarymime_body_is_stored_as_sent(main: MailServer) -> None:
    mid = new_id("binary")
    head = message(CAROL, "binary body", mid).split(b"\r\n\r\n")[0]
    head = head.replace(b"Content-Transfer-Encoding: 8bit", b"Content-Transfer-Encoding: binary")
    raw = head + b"\r\n\r\n" + bytes(range(256)) + b"\nbare LF, bare CR\r, NUL \x00\r\n"
    with RawSmtp(main.smtp_port) as conn:
        assert conn.command(f"EHLO {CLIENT}")[0] == 250
        answers = bdat_transaction(conn, [raw[:100], raw[100:]], body="BINARYMIME")
        assert "queued as" in answers[-1], answers
        # DATA cannot carry BINARYMIME, and a BDAT transaction takes no DATA
        assert conn.command(f"MAIL FROM:<{SENDER}> BODY=BINARYMIME")[0] == 250
        assert conn.command(f"RCPT TO:<{CAROL}>")[0] == 250
        code, text = conn.command("DATA")
        assert code == 503 and text.startswith("5.5.1"), (code, text)
    [copy] = with_id(main.data, CAROL, mid)
    assert sent_part(copy.raw) == raw


def test_bdat_before_rcpt_is_refused_and_its_octets_are_not_commands(main: MailServer) -> None:
    """A refused chunk is still read in full (RFC 3030 2): what it holds is data, never
    commands, and the session stays in step."""
    smuggled = f"RCPT TO:<{VICTIM}>\r\nDATA\r\n".encode()
    with RawSmtp(main.smtp_port) as conn:
        assert conn.command(f"EHLO {CLIENT}")[0] == 250
        conn.send(f"BDAT {len(smuggled)} LAST\r\n".encode() + smuggled)
        code, text = conn.reply()
        assert code == 503, text
        assert conn.command(f"MAIL FROM:<{SENDER}>")[0] == 250
        conn.send(f"BDAT {len(smuggled)}\r\n".encode() + smuggled)
        code, text = conn.reply()
        assert code == 503 and "RCPT" in text, text
        assert conn.command("NOOP")[0] == 250
    assert inbox(main.data, VICTIM) == []


def test_bdat_over_the_size_limit_is_refused_and_the_session_goes_on(main: MailServer) -> None:
    chunk = b"x" * 76 + b"\r\n"
    big = chunk * (MAX_BYTES // len(chunk) + 10)
    with RawSmtp(main.smtp_port) as conn:
        assert conn.command(f"EHLO {CLIENT}")[0] == 250
        assert conn.command(f"MAIL FROM:<{SENDER}>")[0] == 250
        assert conn.command(f"RCPT TO:<{SMUG}>")[0] == 250
        conn.send(f"BDAT {len(big)} LAST\r\n".encode() + big)
        code, text = conn.reply()
        assert code == 552 and text.startswith("5.3.4"), (code, text)
        assert conn.command("NOOP")[0] == 250
        assert conn.command(f"RCPT TO:<{SMUG}>")[0] == 503  # the transaction is gone
    assert inbox(main.data, SMUG) == []


@pytest.mark.parametrize("arg", ["", "ten", "-1", "10 FIRST", "1" * 30])
def test_bdat_with_a_bad_size_closes_the_connection(main: MailServer, arg: str) -> None:
    """Without a size nothing can be skipped: 501, then the connection is closed."""
    with RawSmtp(main.smtp_port) as conn:
        assert conn.command(f"EHLO {CLIENT}")[0] == 250
        code, _ = conn.command(f"BDAT {arg}".strip())
        assert code == 501
        with pytest.raises((ConnectionError, OSError)):
            conn.command("NOOP")


# --- 11. crash safety ---------------------------------------------------------------------


@pytest.mark.parametrize("senders", [1, 6], ids=["alone", "group-commits"])
def test_every_acknowledged_message_survives_sigkill(template: Path, senders: int) -> None:
    """With several senders at once their deliveries share group commits (each in its own
    savepoint, answered only after the group's commit): the kill lands while groups are in
    flight, and still every 250 is in the mailbox after the restart."""
    data = copy_deployment(template, template.parent / f"crash-{senders}")
    server = MailServer(data).start()
    acknowledged: list[str] = []
    attempted: list[str] = []
    stop = threading.Event()

    def sender() -> None:
        client = smtplib.SMTP(HOST, server.smtp_port, local_hostname=CLIENT, timeout=10)
        try:
            client.ehlo()
            while not stop.is_set():
                mid = new_id(f"crash{len(attempted)}")
                attempted.append(mid)
                raw = message(ALICE, f"crash {len(attempted)}", mid, size=20_000)
                try:
                    code, _ = send(client, [ALICE], raw)
                except (OSError, smtplib.SMTPException):
                    return
                if code == 250:
                    acknowledged.append(mid)
        except (OSError, smtplib.SMTPException):
            return
        finally:
            client.close()

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(2.0)
        server.kill()
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=20)
        server.stop()
    assert not any(thread.is_alive() for thread in threads)
    assert len(acknowledged) >= 5 * senders, f"only {len(acknowledged)} messages went through"

    restarted = MailServer(data).start()
    try:
        stored = inbox(data, ALICE)  # opens the store: every object decrypts, meta opens
        found = {s.message_id for s in stored}
        lost = [mid for mid in acknowledged if mid not in found]
        assert not lost, f"{len(lost)} of {len(acknowledged)} acknowledged messages lost"
        assert found <= set(attempted)
        uids = [s.message.uid for s in stored]
        assert len(set(uids)) == len(uids)
        for item in stored:
            assert item.meta["envelope"]["message-id"] == f"<{item.message_id}>"
        # The restarted server carries on: a new message, a new (higher) UID.
        mid = new_id("after")
        with restarted.mx() as client:
            client.ehlo()
            code, reply = send(client, [ALICE], message(ALICE, "after the crash", mid))
            assert code == 250, reply
        [after] = with_id(data, ALICE, mid)
        assert after.message.uid > max(uids)
    finally:
        restarted.stop()


def _processes_below(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _gone(pids: set[int], within: float) -> set[int]:
    """Those of ``pids`` still running after ``within`` seconds (zombies count as gone)."""
    deadline = time.monotonic() + within
    while True:
        left = set()
        for pid in pids:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state != "Z":
                left.add(pid)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_worker_processes_end_with_the_server(template: Path, how: str) -> None:
    """The CPU worker processes and their fork server leave with the server, whether it
    stops cleanly or is killed (they held their task queues open and outlived it)."""
    data = copy_deployment(template, template.parent / f"workers-{how}")
    server = MailServer(data).start()
    try:
        assert server.process is not None
        helpers = _processes_below(server.process.pid)
        assert len(helpers) >= 2, helpers  # the fork server and at least one worker
    finally:
        code = server.kill() if how == "sigkill" else server.terminate()
    assert code == (-9 if how == "sigkill" else 0)
    assert _gone(helpers, within=10.0) == set()


# --- 12. concurrency ----------------------------------------------------------------------


def test_concurrent_clients_all_get_stored_with_distinct_uids(main: MailServer) -> None:
    clients, each = 10, 5
    start = threading.Barrier(clients)

    def client_run(n: int) -> list[tuple[str, int, str]]:
        results = []
        with main.mx() as client:
            client.ehlo()
            start.wait(timeout=30)
            for i in range(each):
                mid = new_id(f"conc{n}-{i}")
                code, reply = send(client, [CONC], message(CONC, f"{n}/{i}", mid))
                results.append((mid, code, reply))
        return results

    with ThreadPoolExecutor(max_workers=clients) as pool:
        outcomes = [
            r for f in [pool.submit(client_run, n) for n in range(clients)] for r in f.result()
        ]
    assert len(outcomes) == clients * each
    assert [code for _, code, _ in outcomes] == [250] * (clients * each), outcomes
    assert len({queue_id(reply) for _, _, reply in outcomes}) == clients * each

    stored = inbox(main.data, CONC)
    assert sorted(s.message.uid for s in stored) == list(range(1, clients * each + 1))
    assert {s.message_id for s in stored} == {mid for mid, _, _ in outcomes}
