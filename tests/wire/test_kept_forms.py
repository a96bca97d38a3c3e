"""The forms IMAP keeps with each message at delivery answer exactly as the message would."""

from __future__ import annotations

import asyncio

import pytest

from enclave.imap import fetch
from enclave.imap.wire.headers import header_values
from tests.frontends.test_imap_clients import varied_messages
from tests.wire import test_imap_message as samples

HEADER_SECTIONS = [
    "HEADER",
    "HEADER.FIELDS (SUBJECT FROM)",
    "HEADER.FIELDS.NOT (SUBJECT)",
    'header.fields ("Message-ID" Date)',
]
CORPUS = [
    *varied_messages(12),
    samples.PLAIN, samples.NO_CONTENT_TYPE, samples.QUOTED_PRINTABLE, samples.EIGHT_BIT_SUBJECT,
    samples.GROUPS, samples.ODD_ADDRESSES, b"Subject: no body at all\r\n", b"",
]  # fmt: skip


class Loads:
    """Counts how often the whole message is read."""

    def __init__(self, raw: bytes) -> None:
        self.raw, self.count = raw, 0

    async def __call__(self) -> bytes:
        self.count += 1
        return self.raw


async def answers(source: fetch.Source) -> list[bytes | None]:
    forms: list[bytes | None] = [
        await source.form(n) for n in ("envelope", "body", "bodystructure")
    ]
    return forms + [await source.section(spec) for spec in HEADER_SECTIONS]


@pytest.mark.parametrize("raw", CORPUS)
def test_kept_forms_match_the_message_and_read_nothing(raw: bytes) -> None:
    kept, whole = Loads(raw), Loads(raw)
    from_kept = asyncio.run(answers(fetch.Source(fetch.derive(raw), kept)))
    from_whole = asyncio.run(answers(fetch.Source(None, whole)))
    assert from_kept == from_whole
    assert kept.count == 0 and whole.count == 1
    assert fetch.kept_header(fetch.derive(raw)) == from_whole[3]


def test_forms_of_another_version_are_ignored() -> None:
    raw = CORPUS[3]
    stale = fetch.derive(raw) | {"imap": "0", "envelope": "(stale)"}
    loads = Loads(raw)
    source = fetch.Source(stale, loads)
    assert asyncio.run(source.form("envelope")) != b"(stale)"
    assert loads.count == 1
    assert fetch.kept_header(stale) is None


def test_body_sections_still_read_the_message() -> None:
    raw = CORPUS[2]
    loads = Loads(raw)
    source = fetch.Source(fetch.derive(raw), loads)
    assert asyncio.run(source.section("1")) is not None
    assert asyncio.run(source.section("")) == raw
    assert loads.count == 1


def test_header_values_by_name_match_the_field_split() -> None:
    """SEARCH's scan for one field finds what splitting the header finds (folded lines, case,
    white space before the colon, a name that is a prefix of another)."""
    header = (
        b"Subject: first\r\n  folded\r\nX-Subject: not this\r\nsubject : second\r\n"
        b"Subjects: nor this\r\nTo: a@b\r\n\r\n"
    )
    assert header_values(header, "Subject") == [b"first  folded", b"second"]
    assert header_values(header, "to") == [b"a@b"]
    assert header_values(header, "cc") == []
    assert len(header_values(header, None)) == 5
