"""Implicit TLS (RFC 8314) on a real ``enclave serve``: IMAP over TLS with imaplib and mbsync,
submission over TLS with smtplib, what ``serve`` prints, and the autoconfig document that
tells mail clients which ports to use."""

from __future__ import annotations

import imaplib
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from defusedxml import ElementTree as ET

from tests.frontends.mailserver import MailServer
from tests.frontends.webserver import HOST, cli, cli_chains, set_option

PASSWORD = "implicit tls 42"
USER = "tess@acme.example"
OTHER = "ulf@acme.example"
MBSYNC = shutil.which("mbsync")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailServer]:
    data = tmp_path_factory.mktemp("implicit") / "deployment"
    cli(data, "init")
    set_option(data, "auth", "failure_delay_ms", "50")
    cli(data, "tenant", "create", "acme", "--domain", "acme.example")
    add = [[(("user", "add", who, "--password-stdin"), PASSWORD + "\n")] for who in (USER, OTHER)]
    cli_chains(data, add)
    running = MailServer(data).start()
    try:
        yield running
    finally:
        running.stop()


def tls(server: MailServer) -> ssl.SSLContext:
    """Trusts the deployment's self-signed certificate (issued for localhost)."""
    return ssl.create_default_context(cafile=str(server.data / "tls" / "cert.pem"))


def imaps(server: MailServer) -> imaplib.IMAP4_SSL:
    return imaplib.IMAP4_SSL("localhost", server.imaps_port, ssl_context=tls(server), timeout=30)


def submissions(server: MailServer) -> smtplib.SMTP_SSL:
    return smtplib.SMTP_SSL(
        "localhost", server.submissions_port, context=tls(server), timeout=30,
        local_hostname="client.test",
    )  # fmt: skip


def note(subject: str, sender: str = USER, to: str = USER) -> bytes:
    return (
        f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@client.test>\r\n\r\nOver implicit TLS.\r\n"
    ).encode()


def wait_for(server: MailServer, subject: str, who: str = USER) -> bytes:
    """The raw message with this subject in the user's INBOX, read over IMAPS."""
    deadline = time.monotonic() + 15
    with imaps(server) as client:
        client.login(who, PASSWORD)
        while True:
            client.select("INBOX")
            typ, found = client.search(None, "SUBJECT", f'"{subject}"')
            assert typ == "OK", found
            if found[0]:
                number = found[0].split()[-1]
                typ, parts = client.fetch(number, "(BODY.PEEK[])")
                assert typ == "OK", parts
                raw = parts[0]
                assert isinstance(raw, tuple), parts
                return raw[1]
            assert time.monotonic() < deadline, f"{subject!r} did not arrive"
            time.sleep(0.2)


def test_serve_announces_the_implicit_tls_listeners(server: MailServer) -> None:
    printed = server.output()
    assert f"imaps://{HOST}:{server.imaps_port}" in printed, printed
    assert f"submissions://{HOST}:{server.submissions_port}" in printed, printed


def test_imaps_login_select_fetch_with_imaplib(server: MailServer) -> None:
    subject = f"appended {uuid.uuid4().hex[:8]}"
    with imaps(server) as client:
        capabilities = {c.upper() for c in client.capabilities}
        assert "STARTTLS" not in capabilities and "LOGINDISABLED" not in capabilities
        assert client.login(USER, PASSWORD)[0] == "OK"
        assert client.append("INBOX", None, None, note(subject))[0] == "OK"
        typ, data = client.select("INBOX")
        assert typ == "OK" and int(data[0] or 0) >= 1, data
        last = (data[0] or b"1").decode()
        typ, data = client.fetch(last, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert typ == "OK", data
        assert subject.encode() in data[0][1], data  # type: ignore[index]
        client.logout()


def test_imaps_refuses_starttls_inside_tls(server: MailServer) -> None:
    with imaps(server) as client:
        with pytest.raises(imaplib.IMAP4.error, match="BAD"):
            client._simple_command("STARTTLS")  # imaplib.starttls() would not even send it
        assert client.noop()[0] == "OK"


def test_submissions_auth_and_send_with_smtplib(server: MailServer) -> None:
    subject = f"submitted {uuid.uuid4().hex[:8]}"
    with submissions(server) as client:
        code, _ = client.ehlo()
        assert code == 250
        assert not client.has_extn("starttls"), client.esmtp_features
        mechanisms = set(client.esmtp_features.get("auth", "").upper().split())
        assert {"PLAIN", "LOGIN"} <= mechanisms, client.esmtp_features
        code, text = client.docmd("STARTTLS")
        assert code == 554 and text.startswith(b"5.5.1"), (code, text)
        code, text = client.mail(USER)
        assert code == 530, text  # AUTH first
        client.rset()
        client.login(USER, PASSWORD)
        assert client.sendmail(USER, [OTHER], note(subject, to=OTHER)) == {}
    raw = wait_for(server, subject, OTHER)
    received = raw.split(b"\r\n\r\n")[0]
    assert re.search(rb"with ESMTPSA id", received), received  # TLS and AUTH in the trace


def test_submissions_wrong_password_is_535(server: MailServer) -> None:
    with submissions(server) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            client.login(USER, "not the password")
        assert refused.value.smtp_code == 535
        client.login(USER, PASSWORD)  # the session goes on


@pytest.mark.parametrize("listener", ["imaps", "submissions"])
def test_plain_text_on_an_implicit_tls_port_is_an_ordinary_disconnect(
    server: MailServer, listener: str
) -> None:
    """A client speaking plain text to a TLS port gets no greeting and a closed connection;
    the log shows no error, and the port goes on serving."""
    port = server.imaps_port if listener == "imaps" else server.submissions_port
    before = len(server.output())
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall(b"EHLO client.test\r\na1 LOGIN tess secret\r\n")
        sock.settimeout(10)
        try:
            assert sock.recv(1024) == b""  # closed, nothing in clear
        except ConnectionResetError:
            pass
    if listener == "imaps":
        with imaps(server) as client:
            assert client.noop()[0] == "OK"
    else:
        with submissions(server) as client:
            assert client.noop()[0] == 250
    time.sleep(0.3)
    logged = server.output()[before:]
    assert "Traceback" not in logged, logged
    assert not [ln for ln in logged.splitlines() if re.search(r"\berror\b", ln, re.I)], logged


# --- mbsync over IMAPS -----------------------------------------------------------------------


@pytest.mark.skipif(MBSYNC is None, reason="mbsync (Debian package isync) is not installed")
def test_mbsync_over_imaps(server: MailServer, tmp_path: Path) -> None:
    subjects = [f"mbsync imaps {n} {uuid.uuid4().hex[:6]}" for n in range(5)]
    with imaps(server) as client:
        client.login(USER, PASSWORD)
        client.create("Projects")
        for n, subject in enumerate(subjects):
            client.append("INBOX" if n % 2 else "Projects", None, None, note(subject))
    secret = tmp_path / "secret"
    secret.write_text(PASSWORD + "\n")
    mail = tmp_path / "mail"
    mail.mkdir()
    config = tmp_path / "mbsyncrc"
    config.write_text(
        f"IMAPAccount enclave\nHost localhost\nPort {server.imaps_port}\nUser {USER}\n"
        f'PassCmd "cat {secret}"\nSSLType IMAPS\nCertificateFile {server.data}/tls/cert.pem\n\n'
        "IMAPStore remote\nAccount enclave\n\n"
        f"MaildirStore local\nPath {mail}/\nInbox {mail}/INBOX\nSubFolders Verbatim\n\n"
        "Channel all\nFar :remote:\nNear :local:\nPatterns *\nCreate Both\nExpunge Both\n"
        "SyncState *\n"
    )

    def run() -> None:
        done = subprocess.run(
            [str(MBSYNC), "-c", str(config), "all"], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "error" not in done.stderr.lower(), done.stderr

    run()
    local = b"".join(p.read_bytes() for p in mail.glob("*/*/*") if p.is_file())
    for subject in subjects:
        assert subject.encode() in local, subject
    # and up again: a message written locally reaches the server over IMAPS
    upload = f"written offline {uuid.uuid4().hex[:6]}"
    (mail / "INBOX" / "new" / "1.local.enclave").write_bytes(
        f"Subject: {upload}\nMessage-ID: <{uuid.uuid4().hex}@local>\n\nhello\n".encode()
    )
    run()
    assert upload.encode() in wait_for(server, upload)


# --- autoconfig --------------------------------------------------------------------------------


def parse(body: bytes) -> list[tuple[str, str, int, str]]:
    """(tag, type, port, socketType) of every server, in document order."""
    root = ET.fromstring(body)
    assert root.tag == "clientConfig" and root.get("version") == "1.1"
    provider = root.find("emailProvider")
    assert provider is not None and provider.get("id") == "acme.example"
    assert provider.findtext("domain") == "acme.example"
    servers = []
    for node in provider:
        if node.tag in ("incomingServer", "outgoingServer"):
            assert node.findtext("hostname") == "localhost"
            assert node.findtext("username") == "%EMAILADDRESS%"
            assert node.findtext("authentication") == "password-cleartext"
            servers.append(
                (node.tag, node.get("type") or "", int(node.findtext("port") or 0),
                 node.findtext("socketType") or "")
            )  # fmt: skip
    return servers


@pytest.mark.parametrize(
    "path", ["/.well-known/autoconfig/mail/config-v1.1.xml", "/mail/config-v1.1.xml"]
)
def test_autoconfig_lists_implicit_tls_first(server: MailServer, path: str) -> None:
    with server.client() as http:
        answer = http.get(path, params={"emailaddress": USER})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/xml")
    assert parse(answer.content) == [
        ("incomingServer", "imap", server.imaps_port, "SSL"),
        ("incomingServer", "imap", server.imap_port, "STARTTLS"),
        ("outgoingServer", "smtp", server.submissions_port, "SSL"),
        ("outgoingServer", "smtp", server.submission_port, "STARTTLS"),
    ]


def test_autoconfig_answers_only_for_hosted_domains(server: MailServer) -> None:
    with server.client() as http:
        path = "/mail/config-v1.1.xml"
        assert http.get(path, params={"emailaddress": "x@elsewhere.example"}).status_code == 404
        assert http.get(path).status_code == 404  # Host: 127.0.0.1 is no mail domain
        by_host = http.get(path, headers={"Host": "autoconfig.acme.example"})
        assert by_host.status_code == 200, by_host.text
        assert parse(by_host.content)[0] == ("incomingServer", "imap", server.imaps_port, "SSL")


def test_logout_over_imaps_hangs_for_a_client_that_sends_no_close_notify(
    server: MailServer,
) -> None:
    """After LOGOUT the server closes the TCP connection within seconds even when the client
    never answers TLS's close_notify (imaptest does not; asyncio waited 30 s for it)."""
    raw = socket.create_connection((HOST, server.imaps_port), timeout=30)
    wrapped = tls(server).wrap_socket(raw, server_hostname="localhost")
    reader = wrapped.makefile("rb")
    assert reader.readline().startswith(b"* OK")
    wrapped.sendall(b"a LOGOUT\r\n")
    assert reader.readline().startswith(b"* BYE")
    assert reader.readline().startswith(b"a OK")
    started = time.monotonic()
    wrapped.settimeout(30)
    try:
        while wrapped.recv(4096):  # the close_notify ends the TLS stream
            pass
    except (ssl.SSLError, OSError):
        pass
    # The TCP stream itself must end too, without our close_notify: read the raw socket.
    plain = socket.fromfd(wrapped.fileno(), socket.AF_INET, socket.SOCK_STREAM)
    plain.settimeout(30)
    try:
        while plain.recv(4096):
            pass
    except OSError:
        pass
    finally:
        plain.close()
        wrapped.close()
    assert time.monotonic() - started < 10
