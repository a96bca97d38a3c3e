"""Pure mail helpers on bytes: smuggling check, trace header, forged results, DSN."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email.policy import default

from enclave.core.mail import dsn
from enclave.core.mail.parse import bare_line_ending, summarise
from enclave.smtp.authentication import strip_forged
from enclave.smtp.received import received_header

WHEN = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_bare_line_endings_are_detected() -> None:
    assert not bare_line_ending(b"a\r\nb\r\n\r\nc\r\n")
    assert bare_line_ending(b"a\r\nb\n.\nMAIL FROM:<x@y>\r\n")
    assert bare_line_ending(b"a\r\nb\r.\r\n")
    assert bare_line_ending(b"a\nb")


def test_received_header_is_clean_and_folded() -> None:
    header = received_header(
        helo="evil)(\r\nInjected: yes", peer="192.0.2.7", by="mx.example.org",
        protocol="ESMTPS", queue_id="ABC", recipient="a@b.example", when=WHEN,
    )  # fmt: skip
    text = header.decode()
    assert text.startswith("Received: from evil")
    assert "Injected: yes" not in text.replace("\r\n\t", " ").split("\r\n")[1:]
    assert text.count("\r\n") == 3 and text.endswith("+0000\r\n")
    assert "with ESMTPS id ABC" in text and "for <a@b.example>" in text


def test_forged_authentication_results_are_removed() -> None:
    raw = (
        b"Authentication-Results: mx.example.org; dkim=pass\r\n\theader.d=bank.example\r\n"
        b"Authentication-Results: MX.EXAMPLE.ORG; spf=pass\r\n"
        b"Authentication-Results: other.example; spf=fail\r\n"
        b"Subject: hi\r\n\r\nAuthentication-Results: mx.example.org; in the body stays\r\n"
    )
    cleaned = strip_forged(raw, "mx.example.org")
    assert cleaned == (
        b"Authentication-Results: other.example; spf=fail\r\nSubject: hi\r\n\r\n"
        b"Authentication-Results: mx.example.org; in the body stays\r\n"
    )


def test_failure_report_is_a_valid_rfc3464_message() -> None:
    raw = dsn.failure_report(
        reporting_mta="mx.example.org",
        sender="alice@acme.example",
        failures=[("bob@remote.example", "5.1.1", "550 5.1.1 no such user")],
        original_headers=b"Subject: hello\r\nMessage-ID: <m@acme.example>\r\n",
        arrival=WHEN,
        now=WHEN,
    )
    message = email.message_from_bytes(raw, policy=default)
    assert message.get_content_type() == "multipart/report"
    assert message.get_param("report-type") == "delivery-status"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == [
        "text/plain", "message/delivery-status", "text/rfc822-headers",
    ]  # fmt: skip
    status = raw.decode()
    assert "Final-Recipient: rfc822; bob@remote.example" in status
    assert "Action: failed\r\nStatus: 5.1.1" in status
    assert "Subject: hello" in status and message["Auto-Submitted"] == "auto-replied"
    assert not bare_line_ending(raw)


def test_status_codes() -> None:
    assert dsn.status_code(550, "5.1.1 user unknown") == "5.1.1"
    assert dsn.status_code(554, "rejected") == "5.0.0"
    assert dsn.status_code(451, "later") == "4.0.0"
    assert dsn.status_code(451, "4.7.1 greylisted", expired=True) == "4.4.7"


def test_summary_keeps_raw_header_values() -> None:
    summary = summarise(
        b"Subject: =?utf-8?b?w6TDtsO8?=\r\nFrom: A <a@x.example>\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nline1\r\nline2\r\n"
    )
    assert summary["envelope"]["subject"] == "=?utf-8?b?w6TDtsO8?="
    assert summary["structure"]["params"] == {"charset": "utf-8"}
    assert summary["structure"]["lines"] == 2
