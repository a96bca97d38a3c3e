"""Real IMAP clients against Enclave: mbsync (isync) two-way sync of a varied mailbox."""

from __future__ import annotations

import email
import imaplib
import random
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest

from tests.frontends.mailserver import MailServer
from tests.frontends.webserver import cli, set_option

PASSWORD = "sync password 12"
USER = "carol@acme.example"
MBSYNC = shutil.which("mbsync")


def varied_messages(count: int, seed: int = 7) -> list[bytes]:
    """Plain, non-ASCII headers, HTML alternatives, attachments, nested multiparts."""
    rng = random.Random(seed)
    names = ["Zoë Müller", "Ødegård", "李雷", "Ana O'Neil", "plain"]
    out = []
    for n in range(count):
        msg = EmailMessage(policy=SMTP)
        msg["From"] = f"{rng.choice(names)} <sender{n}@remote.example>"
        msg["To"] = USER
        msg["Subject"] = f"Message {n} - {rng.choice(names)} ok"
        msg["Message-ID"] = f"<sync-{n}@remote.example>"
        msg["Date"] = "Sat, 28 Nov 2026 10:00:00 +0000"
        text = f"Body of message {n}.\n" + "Grüße aus Köln. " * rng.randint(1, 40)
        msg.set_content(text)
        kind = n % 4
        if kind >= 1:
            msg.add_alternative(f"<p>{text}</p>", subtype="html")
        if kind >= 2:
            msg.add_attachment(rng.randbytes(rng.randint(100, 30_000)), maintype="application",
                               subtype="octet-stream", filename=f"data-{n}.bin")  # fmt: skip
        if kind == 3:
            inner = EmailMessage(policy=SMTP)
            inner["Subject"] = f"Forwarded {n}"
            inner.set_content("inner text")
            msg.add_attachment(inner)
        out.append(msg.as_bytes())
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailServer]:
    data = tmp_path_factory.mktemp("sync") / "deployment"
    cli(data, "init")
    set_option(data, "auth", "failure_delay_ms", "50")
    cli(data, "tenant", "create", "acme", "--domain", "acme.example")
    cli(data, "user", "add", USER, "--password-stdin", stdin=PASSWORD + "\n")
    running = MailServer(data).start()
    try:
        yield running
    finally:
        running.stop()


def imap(server: MailServer) -> imaplib.IMAP4:
    client = imaplib.IMAP4("localhost", server.imap_port, timeout=60)
    client.starttls(
        ssl_context=ssl.create_default_context(cafile=str(server.data / "tls" / "cert.pem"))
    )
    client.login(USER, PASSWORD)
    return client


def mbsync(config: Path) -> None:
    assert MBSYNC is not None
    done = subprocess.run(
        [MBSYNC, "-c", str(config), "all"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "error" not in done.stderr.lower(), done.stderr


def maildir_messages(folder: Path) -> dict[bytes, bytes]:
    found = {}
    for path in [*folder.glob("cur/*"), *folder.glob("new/*")]:
        raw = path.read_bytes()
        found[email.message_from_bytes(raw)["Message-ID"].encode()] = raw
    return found


@pytest.mark.skipif(MBSYNC is None, reason="mbsync (Debian package isync) is not installed")
def test_mbsync_two_way_sync_keeps_content_identical(server: MailServer, tmp_path: Path) -> None:
    messages = varied_messages(200)
    client = imap(server)
    client.create("Archive/2026")
    for n, raw in enumerate(messages):
        client.append(
            "INBOX" if n % 5 else "Archive/2026", "(\\Seen)" if n % 3 else None, None, raw
        )
    client.logout()

    secret = tmp_path / "secret"
    secret.write_text(PASSWORD + "\n")
    mail = tmp_path / "mail"
    mail.mkdir()
    config = tmp_path / "mbsyncrc"
    config.write_text(
        f"IMAPAccount enclave\nHost localhost\nPort {server.imap_port}\nUser {USER}\n"
        f'PassCmd "cat {secret}"\nSSLType STARTTLS\nCertificateFile {server.data}/tls/cert.pem\n\n'
        "IMAPStore remote\nAccount enclave\n\n"
        f"MaildirStore local\nPath {mail}/\nInbox {mail}/INBOX\nSubFolders Verbatim\n\n"
        "Channel all\nFar :remote:\nNear :local:\nPatterns *\nCreate Both\nExpunge Both\n"
        "SyncState *\n"
    )
    mbsync(config)
    # Down: every message arrives byte for byte (mbsync stores LF line endings and adds its
    # own X-TUID tracking header).
    expected = {email.message_from_bytes(raw)["Message-ID"].encode(): raw for raw in messages}
    local = maildir_messages(mail / "INBOX") | maildir_messages(mail / "Archive" / "2026")
    assert set(local) == set(expected)
    for key, raw in expected.items():
        mine = b"\n".join(ln for ln in local[key].split(b"\n") if not ln.startswith(b"X-TUID: "))
        assert mine == raw.replace(b"\r\n", b"\n"), key

    # Both ways: a new local message goes up, a local deletion expunges on the server, and a
    # flag set on the server comes down.
    (mail / "INBOX" / "new" / "1.local.enclave").write_bytes(
        b"Subject: written offline\nMessage-ID: <offline@acme.example>\n\nhello\n"
    )
    doomed = next(iter((mail / "INBOX" / "cur").glob("*")))
    doomed_id = email.message_from_bytes(doomed.read_bytes())["Message-ID"]
    doomed.unlink()
    client = imap(server)
    client.select("INBOX")
    client.store("1", "+FLAGS", "(\\Flagged)")
    client.logout()
    mbsync(config)
    client = imap(server)
    client.select("INBOX")
    assert client.search(None, "HEADER", "Message-ID", "offline@acme.example")[1] != [b""]
    assert client.search(None, "HEADER", "Message-ID", doomed_id.strip("<>"))[1] == [b""]
    client.logout()
    flagged = [
        p for p in (mail / "INBOX").glob("*/*") if ":2," in p.name and "F" in p.name.split(":2,")[1]
    ]
    assert len(flagged) == 1
