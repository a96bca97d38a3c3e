"""IMAP URLs (RFC 5092) as CATENATE (RFC 4469) takes them, on strings."""

from __future__ import annotations

import pytest

from enclave.imap.wire.imapurl import BadUrl, ImapUrl, parse, response_code


def test_path_on_this_server() -> None:
    assert parse("/INBOX;UIDVALIDITY=123/;UID=4/;SECTION=1.MIME") == ImapUrl(
        mailbox="INBOX", uid=4, uidvalidity=123, section="1.MIME"
    )
    assert parse(b"/imaptest/;uid=7/;section=header") == ImapUrl("imaptest", 7, section="HEADER")
    assert parse("/a/b/;UID=1/;PARTIAL=100000.1").partial == (100000, 1)
    assert parse("/a/b/;UID=1/;PARTIAL=5").partial == (5, None)
    assert parse("/a/b/;UID=1").mailbox == "a/b"  # the hierarchy is part of the name


def test_names_and_sections_are_percent_decoded_utf8() -> None:
    url = parse("/K%C3%B6ln%20Team/;UID=2/;SECTION=HEADER.FIELDS%20(Subject)")
    assert url.mailbox == "Köln Team" and url.section == "HEADER.FIELDS (SUBJECT)"
    with pytest.raises(BadUrl):
        parse("/K%F6ln/;UID=2")  # latin-1, not UTF-8


def test_relative_to_the_selected_mailbox() -> None:
    assert parse(";UID=4/;SECTION=1.MIME") == ImapUrl(mailbox=None, uid=4, section="1.MIME")
    assert parse(";uid=9") == ImapUrl(None, 9)


def test_absolute_url_keeps_user_and_host_for_the_session_to_judge() -> None:
    url = parse("imap://alice%40acme.example;AUTH=*@Mail.Acme.Example:993/INBOX/;UID=3")
    assert (url.user, url.host, url.port, url.mailbox, url.uid) == (
        "alice@acme.example", "mail.acme.example", 993, "INBOX", 3,
    )  # fmt: skip
    assert parse("imap://[::1]/INBOX/;UID=1").host == "[::1]"
    assert parse("imap://host/INBOX/;UID=1").user is None


def test_urlauth_is_noticed() -> None:
    assert parse("/INBOX/;UID=1;URLAUTH=anonymous:internal:0123").urlauth
    assert parse("/INBOX/;UID=1;EXPIRE=2030-01-01T00:00:00Z;URLAUTH=user+bob").urlauth
    assert not parse("/INBOX/;UID=1").urlauth


@pytest.mark.parametrize(
    "text",
    [
        "",
        "INBOX/;UID=1",  # neither a path nor relative
        "/INBOX",  # a mailbox, not a message
        "/;UID=1",  # no mailbox
        "/INBOX/;UID=0",
        "/INBOX/;UID=99999999999",
        "/INBOX/;UID=x",
        "/INBOX;UID=1",  # UID comes after a "/"
        "/INBOX/;UIDVALIDITY=1/;UID=1",  # UIDVALIDITY goes with the name
        "/INBOX/;SECTION=1/;UID=1",  # out of order
        "/INBOX/;UID=1/;UID=2",
        "/INBOX/;UID=1/",
        "/INBOX/;UID=1/;SECTION=",
        "/INBOX/;UID=1/;PARTIAL=1.0",
        "/INBOX/;UID=1/;PARTIAL=-1",
        "/INBOX/;UID=1/;TYPE=LIST",
        ";UIDVALIDITY=1/;UID=1",
        "imap://host",
        "imap://user@/INBOX/;UID=1",
        "imap://host:x/INBOX/;UID=1",
        "/IN BOX/;UID=1",
        "/INBOX/;UID=1\r\n",
        "http://host/INBOX/;UID=1",
    ],
)
def test_not_a_message_url(text: str) -> None:
    with pytest.raises(BadUrl):
        parse(text)


def test_non_ascii_bytes_are_no_url() -> None:
    with pytest.raises(BadUrl):
        parse("/Köln/;UID=1".encode())


def test_cut_to_the_partial_range() -> None:
    assert parse("/I/;UID=1/;PARTIAL=2.3").cut(b"abcdefg") == b"cde"
    assert parse("/I/;UID=1/;PARTIAL=2").cut(b"abcdefg") == b"cdefg"
    assert parse("/I/;UID=1/;PARTIAL=100000.1").cut(b"abc") == b""


def test_badurl_response_code_is_safe_to_send() -> None:
    assert response_code(b"/INBOX/;UID=1") == "BADURL /INBOX/;UID=1"
    assert response_code(b"/a]b\r\n c\xff") == "BADURL /abc"
    assert response_code(b"") == "BADURL"
