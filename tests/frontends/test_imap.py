"""The IMAP listener with Python's imaplib (and raw sockets for exact bytes) over loopback."""

from __future__ import annotations

import imaplib
import re
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.frontends.mailserver import MailServer
from tests.frontends.webserver import HOST, cli, set_option

PASSWORD = "imap password 123"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailServer]:
    data = tmp_path_factory.mktemp("imap") / "deployment"
    cli(data, "init")
    set_option(data, "auth", "failure_delay_ms", "50")
    cli(data, "tenant", "create", "acme", "--domain", "acme.example")
    for user in ("alice", "bob"):
        cli(data, "user", "add", f"{user}@acme.example", "--password-stdin", stdin=PASSWORD + "\n")
    running = MailServer(data).start()
    try:
        yield running
    finally:
        running.stop()


def tls_context(data: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(data / "tls" / "cert.pem"))
    return context


def connect(server: MailServer, user: str = "alice") -> imaplib.IMAP4:
    client = imaplib.IMAP4("localhost", server.imap_port, timeout=30)
    client.starttls(ssl_context=tls_context(server.data))
    client.login(f"{user}@acme.example", PASSWORD)
    return client


def deliver(server: MailServer, to: str, subject: str, body: str = "hello") -> None:
    with server.mx() as mx:
        mx.sendmail(
            "sender@remote.example", [to],
            f"From: sender@remote.example\r\nTo: {to}\r\nSubject: {subject}\r\n\r\n{body}\r\n",
        )  # fmt: skip


def test_capabilities_and_tls_before_login(server: MailServer) -> None:
    client = imaplib.IMAP4("localhost", server.imap_port, timeout=30)
    assert {"STARTTLS", "LOGINDISABLED", "IDLE", "UIDPLUS", "MOVE", "CONDSTORE"} <= set(
        client.capabilities
    )
    with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
        client.login("alice@acme.example", PASSWORD)
    client.starttls(ssl_context=tls_context(server.data))
    _, caps = client.capability()
    assert b"AUTH=PLAIN" in caps[0] and b"LOGINDISABLED" not in caps[0]
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        client.login("alice@acme.example", "wrong password!")
    client.authenticate("PLAIN", lambda _: f"\0alice@acme.example\0{PASSWORD}".encode())
    assert client.state == "AUTH"
    client.logout()


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "imaps"])
def test_tls_sends_nothing_after_the_handshake_until_the_client_speaks(
    server: MailServer, implicit: bool
) -> None:
    """No TLS 1.3 session tickets: they came unasked after the handshake, just as the client
    sent its first command, and imaplib2 (offlineimap) reads them on its reader thread while
    its writer thread writes on the same SSL object, which OpenSSL forbids: about one STARTTLS
    in eight lost the client's CAPABILITY and waited 60 s for the server's login timeout."""
    sock = socket.create_connection((HOST, server.imaps_port if implicit else server.imap_port))
    sock.settimeout(30)
    if not implicit:
        plain = sock.makefile("rb")
        assert plain.readline().startswith(b"* OK")
        sock.sendall(b"s STARTTLS\r\n")
        assert plain.readline().startswith(b"s OK")
    secure = tls_context(server.data).wrap_socket(sock, server_hostname="localhost")
    assert secure.version() == "TLSv1.3"
    reader = secure.makefile("rb")
    if implicit:
        assert reader.readline().startswith(b"* OK")  # the greeting came after any ticket
    else:  # nothing at all: the client may write its first command in peace
        assert select.select([secure], [], [], 0.5)[0] == []
    secure.sendall(b"a CAPABILITY\r\n")
    assert reader.readline().startswith(b"* CAPABILITY")
    assert reader.readline() == b"a OK CAPABILITY completed\r\n"
    assert secure.session is not None and not secure.session.has_ticket
    secure.close()


def test_mailboxes_append_fetch_store_search(server: MailServer) -> None:
    client = connect(server)
    typ, listed = client.list('""', "*")
    assert typ == "OK"
    names = {line.split(b' "/" ')[1] for line in listed}
    assert {b'"INBOX"', b'"Sent"', b'"Drafts"', b'"Trash"', b'"Junk"', b'"Archive"'} <= names
    assert any(b"\\Sent" in line for line in listed)
    client.create("Projekte/Entw&APw-rfe")  # modified UTF-7 on the wire
    typ, listed = client.list('""', "Projekte/*")
    assert listed == [b'(\\HasNoChildren) "/" "Projekte/Entw&APw-rfe"']
    typ, data = client.append("Drafts", "(\\Draft)", None, b"Subject: draft\r\n\r\nbody\r\n")
    assert typ == "OK" and b"APPENDUID" in data[0]
    typ, data = client.select("Drafts")
    assert (typ, data) == ("OK", [b"1"])
    typ, data = client.fetch("1", "(FLAGS RFC822.SIZE UID)")
    assert data == [  # \\Recent: the first session to select Drafts since the APPEND
        b"1 (FLAGS (\\Draft \\Recent) RFC822.SIZE %d UID 1)"
        % len(b"Subject: draft\r\n\r\nbody\r\n")
    ]
    typ, data = client.store("1", "+FLAGS", "(\\Seen $Label1)")
    assert data == [b"1 (FLAGS ($Label1 \\Draft \\Recent \\Seen))"]
    assert client.search(None, "SEEN")[1] == [b"1"]
    assert client.search(None, "UNSEEN")[1] == [b""]
    assert client.uid("SEARCH", "KEYWORD", "$Label1")[1] == [b"1"]
    typ, data = client.status("Drafts", "(MESSAGES UNSEEN UIDNEXT)")
    assert data == [b'"Drafts" (MESSAGES 1 UNSEEN 0 UIDNEXT 2)']
    client.logout()


def test_copy_move_expunge_with_uidplus(server: MailServer) -> None:
    client = connect(server, "bob")
    for n in range(3):
        client.append("INBOX", None, None, f"Subject: m{n}\r\n\r\nbody {n}\r\n".encode())
    client.select("INBOX")
    typ, _ = client.uid("COPY", "1:2", "Archive")
    assert typ == "OK" and client.response("COPYUID")[1][0].split()[1:] == [b"1:2", b"1:2"]
    typ, _ = client.uid("MOVE", "3", "Trash")
    assert typ == "OK" and client.response("COPYUID")[1][0].split()[1:] == [b"3", b"1"]
    assert client.response("EXPUNGE")[1] == [b"3"]
    client.store("1", "+FLAGS", "(\\Deleted)")
    typ, data = client.expunge()
    assert data == [b"1"]
    assert client.select("INBOX")[1] == [b"1"]
    assert client.select("Archive")[1] == [b"2"]
    assert client.select("Trash")[1] == [b"1"]
    client.logout()


def test_other_sessions_see_changes_and_idle_wakes_within_a_second(server: MailServer) -> None:
    first, second = connect(server), connect(server)
    first.select("INBOX")
    second.select("INBOX")
    deliver(server, "alice@acme.example", "seen by noop")
    second.noop()
    assert second.response("EXISTS")[1][-1] is not None
    first.send(b"I1 IDLE\r\n")
    assert first.readline().startswith(b"+ ")
    started = time.monotonic()
    threading.Timer(0.3, deliver, args=(server, "alice@acme.example", "idle")).start()
    lines = [first.readline()]  # the message second's NOOP saw first, then the new one
    while not lines[-1].endswith(b"EXISTS\r\n") or time.monotonic() - started < 0.3:
        lines.append(first.readline())
    elapsed = time.monotonic() - started
    assert elapsed < 0.3 + 1.0 + 0.5  # delivery time + 1 s
    first.send(b"DONE\r\n")
    rest = [first.readline()]
    while not rest[-1].startswith(b"I1 "):
        rest.append(first.readline())
    assert rest[-1] == b"I1 OK IDLE terminated\r\n"
    assert all(line.endswith(b" RECENT\r\n") for line in rest[:-1])  # each EXISTS has one
    # A flag change in one session reaches the other as an untagged FETCH.
    first.store("1", "+FLAGS", "(\\Flagged)")
    second.noop()
    assert any(b"\\Flagged" in (item or b"") for item in second.response("FETCH")[1])
    first.logout()
    second.logout()


def test_malformed_commands_get_bad_and_the_connection_stays_usable(server: MailServer) -> None:
    raw = socket.create_connection((HOST, server.imap_port), timeout=10)
    reader = raw.makefile("rb")
    assert reader.readline().startswith(b"* OK ")
    for line, expected in [
        (b"a1 FROBNICATE\r\n", b"a1 BAD unknown command FROBNICATE"),
        (b"a2 FETCH 1 FLAGS\r\n", b"a2 BAD FETCH not allowed when not authenticated"),
        (b'a3 LOGIN "unterminated\r\n', b"a3 BAD"),
        (b"a4 SELECT\r\n", b"a4 BAD"),
        (b"a5 APPEND INBOX {999999999}\r\n", b"a5 NO [TOOBIG]"),
        (b"a6 NOOP\r\n", b"a6 OK NOOP completed"),
    ]:
        raw.sendall(line)
        assert reader.readline().startswith(expected), line
    raw.close()


def test_users_cannot_reach_each_others_mail(server: MailServer) -> None:
    alice, bob = connect(server, "alice"), connect(server, "bob")
    alice.create("Private")
    alice.append("Private", None, None, b"Subject: secret\r\n\r\nalice only\r\n")
    assert all(b"Private" not in line for line in bob.list('""', "*")[1])
    typ, _ = bob.select("Private")
    assert typ == "NO"
    alice.logout()
    bob.logout()


MULTIPART = (
    b"From: Alice <alice@acme.example>\r\nTo: bob@acme.example\r\n"
    b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nMessage-ID: <m1@acme.example>\r\n"
    b"Date: Sat, 28 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n'
    b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello Bob\r\n"
    b"--XX\r\nContent-Type: application/pdf; name=a.pdf\r\n"
    b"Content-Disposition: attachment; filename=a.pdf\r\nContent-Transfer-Encoding: base64\r\n"
    b"\r\nJVBERi0xLjQK\r\n--XX--\r\n"
)


def test_fetch_content_envelope_structure_sections(server: MailServer) -> None:
    client = connect(server, "bob")
    client.create("Content")
    client.append("Content", None, None, MULTIPART)
    client.select("Content")
    _, data = client.fetch("1", "(ENVELOPE)")
    envelope = data[0]
    assert b'"=?utf-8?q?Gr=C3=BC=C3=9Fe?="' in envelope
    assert b'(("Alice" NIL "alice" "acme.example"))' in envelope
    assert b'"<m1@acme.example>"' in envelope
    _, data = client.fetch("1", "(BODYSTRUCTURE)")
    structure = data[0].upper()
    assert b'"TEXT" "PLAIN" ("CHARSET" "UTF-8")' in structure and b'"MIXED"' in structure
    assert b'"APPLICATION" "PDF"' in structure and b'"ATTACHMENT" ("FILENAME" "A.PDF")' in structure
    _, data = client.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert data[0][1] == b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\n"
    _, data = client.fetch("1", "(FLAGS)")
    assert b"\\Seen" not in data[0]  # PEEK leaves it unread
    _, data = client.fetch("1", "(BODY[1])")
    assert data[0][1] == b"Hello Bob"
    assert b"\\Seen" in b"".join(part if isinstance(part, bytes) else part[0] for part in data)
    _, data = client.fetch("1", "(BODY.PEEK[]<0.20>)")
    assert data[0][0].endswith(b"BODY[]<0> {20}") and data[0][1] == MULTIPART[:20]
    _, data = client.uid("FETCH", "1", "(RFC822)")
    assert data[0][1] == MULTIPART
    client.literal = "Grüße".encode()
    assert client.uid("SEARCH", "CHARSET", "UTF-8", "SUBJECT") == ("OK", [b"1"])
    assert client.search(None, "BODY", "Hello")[1] == [b"1"]
    assert client.search(None, "BODY", "absent")[1] == [b""]
    client.logout()


def test_condstore_changedsince_reports_only_changes_within_the_set(server: MailServer) -> None:
    client = connect(server, "bob")
    client.create("Resync")
    for n in range(1, 6):
        client.append("Resync", None, None, f"Subject: resync {n}\r\n\r\nbody {n}\r\n".encode())
    _, data = client.select("Resync (CONDSTORE)")
    _, [highest] = client.response("HIGHESTMODSEQ")
    base = int(highest)
    client.store("2,4", "+FLAGS", "(\\Flagged)")
    client.uid("STORE", "5", "+FLAGS", "(\\Seen)")
    _, data = client.uid("FETCH", "1:*", "(FLAGS)", f"(CHANGEDSINCE {base})")
    changed = {int(m.group(1)) for line in data if (m := re.search(rb"UID (\d+)", line or b""))}
    assert changed == {2, 4, 5}
    assert all(b"MODSEQ (" in line for line in data if line)
    _, data = client.fetch("3:4", f"(FLAGS) (CHANGEDSINCE {base})")
    assert [line.split()[0] for line in data if line] == [b"4"]
    _, data = client.uid("FETCH", "1:3", "(FLAGS)", f"(CHANGEDSINCE {base + 100})")
    assert data == [None]
    client.logout()
