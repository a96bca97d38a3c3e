"""RFC 5321 path syntax (``smtp.address``), with byte-free strings: what a MAIL FROM may be."""

from __future__ import annotations

import pytest

from enclave.smtp.address import mailbox_ok, reverse_path_ok

VALID = [
    "root@vm",  # a single-label domain: syntax allows it, SPF/DMARC judge it
    "user@example.org",
    "first.last+tag@sub.example.co.uk",
    "x@a-b.c1",
    "o'brien@example.org",
    '"john doe"@example.org',
    '"a\\"b"@example.org',
    "user@[127.0.0.1]",
    "user@[IPv6:2001:db8::1]",
    "SRS0=HHH=TT=example.org=" + "a" * 60 + "@forwarder.example",  # over 64: still accepted
]
INVALID = [
    "justalocalpart",
    "@example.org",
    "user@",
    "user@-vm",
    "user@vm-",
    "user@exa_mple.org",
    "user@example..org",
    "user@.example.org",
    "us er@example.org",
    "user.@example.org",
    ".user@example.org",
    "a..b@example.org",
    "user@[300.0.0.1]",
    "user@[IPv6:not-an-address]",
    "user@exa mple.org",
    '"unterminated@example.org',
    "user@" + "a" * 64 + ".example",  # a label over 63 octets
    "u@" + ".".join(["abcdefghi"] * 30),  # a path over 256 octets
    "j\udcf6rg@example.org",  # an undecodable byte (surrogate escape)
]


@pytest.mark.parametrize("address", VALID)
def test_valid_reverse_paths_are_accepted(address: str) -> None:
    assert reverse_path_ok(address, utf8=False), address


@pytest.mark.parametrize("address", INVALID)
def test_invalid_reverse_paths_are_refused(address: str) -> None:
    assert not reverse_path_ok(address, utf8=True), address


def test_null_reverse_path_is_valid_but_not_a_mailbox() -> None:
    assert reverse_path_ok("", utf8=False) and reverse_path_ok("<>", utf8=False)
    assert not mailbox_ok("", utf8=False)


def test_utf8_addresses_need_smtputf8() -> None:
    for address in ("jörg@example.org", "user@bücher.example", "用户@例子.广告"):
        assert mailbox_ok(address, utf8=True), address
        assert not mailbox_ok(address, utf8=False), address
