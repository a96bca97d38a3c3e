"""Dovecot's imaptest scripted suite against a fresh deployment, through bench/imaptest_run.py
(its STARTTLS relay and its suite runner). Skipped where imaptest is not installed."""

from __future__ import annotations

import imaplib
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.frontends.mailserver import MailServer
from tests.frontends.webserver import HOST, cli

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
imaptest_run = importlib.import_module("imaptest_run")

BINARY = imaptest_run.find_imaptest()
TESTS_DIR = imaptest_run.find_tests_dir(BINARY) if BINARY else None


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailServer]:
    data = tmp_path_factory.mktemp("imaptest") / "deployment"
    cli(data, "init")
    cli(data, "tenant", "create", "bench", "--domain", imaptest_run.USERS[0].partition("@")[2])
    for user in imaptest_run.USERS:
        cli(data, "user", "add", user, "--password-stdin", stdin=imaptest_run.PASSWORD + "\n")
    running = MailServer(data).start()
    try:
        yield running
    finally:
        running.stop()


def test_relay_hides_starttls_and_passes_login(server: MailServer) -> None:
    """The runner's relay: a plain client sees no STARTTLS/LOGINDISABLED and may LOGIN."""
    cafile = server.data / "tls" / "cert.pem"
    with imaptest_run.StartTlsRelay(server.imap_port, cafile) as relay:
        client = imaplib.IMAP4(HOST, relay.port, timeout=30)
        assert "STARTTLS" not in client.capabilities
        assert "LOGINDISABLED" not in client.capabilities and "IMAP4REV1" in client.capabilities
        client.login(imaptest_run.USERS[0], imaptest_run.PASSWORD)
        client.select("INBOX")
        client.logout()
    assert relay.connections == 1 and relay.errors == []


@pytest.mark.skipif(TESTS_DIR is None, reason="imaptest is not installed (see bench/README.md)")
def test_imaptest_scripted_suite_passes(server: MailServer) -> None:
    """Every group passes, except those Dovecot also skips for a capability (URLAUTH,
    CONTEXT=SORT). Through the STARTTLS relay, so STARTTLS is what this covers; the IMAPS
    port is what bench/imaptest_run.py uses."""
    cafile = server.data / "tls" / "cert.pem"
    with imaptest_run.StartTlsRelay(server.imap_port, cafile) as relay:
        endpoint = imaptest_run.Endpoint(HOST, relay.port, tls=False)
        suite = imaptest_run.run_suite(BINARY, TESTS_DIR, endpoint)
    failed = [g for g in suite.groups if g.status in ("failed", "error")]
    assert not failed, "\n\n".join(f"{g.name}:\n{g.output}" for g in failed)
    assert set(suite.named("skipped")) <= imaptest_run.EXPECTED_SKIPS
    assert len(suite.named("passed")) > 60
