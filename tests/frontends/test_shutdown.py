"""SIGTERM stops ``enclave serve`` within seconds even while clients are connected (an IMAP
client in IDLE, an SMTP client that says nothing, a browser's live event stream) and exits 0:
nothing left running (a session, a stream, a worker thread) keeps the process alive."""

from __future__ import annotations

import imaplib
import smtplib
import ssl
import time
from pathlib import Path

import httpx
import pytest

from tests.frontends.mailserver import MailServer
from tests.frontends.webserver import cli, set_option

PASSWORD = "shutdown password 7"


def test_sigterm_stops_serve_with_mail_clients_connected(tmp_path: Path) -> None:
    data = tmp_path / "deployment"
    cli(data, "init")
    set_option(data, "auth", "failure_delay_ms", "50")
    cli(data, "tenant", "create", "acme", "--domain", "acme.example")
    cli(data, "user", "add", "ida@acme.example", "--password-stdin", stdin=PASSWORD + "\n")
    server = MailServer(data).start()
    context = ssl.create_default_context(cafile=str(data / "tls" / "cert.pem"))
    idle = imaplib.IMAP4_SSL("localhost", server.imaps_port, ssl_context=context, timeout=30)
    idle.login("ida@acme.example", PASSWORD)
    idle.select("INBOX")
    tag = idle._new_tag().decode()  # imaplib has no IDLE of its own
    idle.send(f"{tag} IDLE\r\n".encode())
    assert idle.readline().startswith(b"+ ")
    quiet = smtplib.SMTP("localhost", server.smtp_port, timeout=30)  # connected, says nothing
    quiet.ehlo("client.test")
    browser = httpx.Client(base_url=server.url, timeout=30)
    signed = browser.post("/api/login", json={"email": "ida@acme.example", "password": PASSWORD})
    assert signed.status_code == 200, signed.text
    stream = browser.stream("GET", "/live")
    live = stream.__enter__()
    lines = live.iter_lines()
    assert live.status_code == 200 and next(lines).startswith("retry:")
    assert next(lines) == "" and next(lines).startswith(":")  # a heartbeat: the stream waits
    started = time.monotonic()
    try:
        code = server.terminate(timeout=20)
    except Exception as exc:
        pytest.fail(f"serve did not stop: {exc}")
    finally:
        quiet.close()
        idle.shutdown()
        stream.__exit__(None, None, None)
        browser.close()
    assert code == 0
    assert time.monotonic() - started < 12
