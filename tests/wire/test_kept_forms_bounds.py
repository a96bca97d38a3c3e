"""The forms IMAP keeps at delivery stay bounded whatever the message (``imap.fetch``):
ENVELOPE names at most MAX_ADDRESSES addresses per field name, the kept header block is cut
to MAX_KEPT_HEADER (and says so), and a message whose structure cannot be rendered still
gets forms. The message itself is always stored whole; these are only its summary."""

from __future__ import annotations

from enclave.imap import fetch
from enclave.imap.wire.message import Message


def folded_to(count: int) -> bytes:
    addresses = ",\r\n ".join(f"user{n}@example.org" for n in range(count))
    return (
        b"From: sender@remote.example\r\nTo: " + addresses.encode()
        + b"\r\nSubject: many\r\nMessage-ID: <m@x>\r\n\r\nhello\r\n"
    )  # fmt: skip


def test_envelope_of_300000_folded_addresses_names_the_first_thousand() -> None:
    raw = folded_to(300_000)
    forms = fetch.derive(raw)
    envelope = forms["envelope"].encode("latin-1")
    assert envelope.count(b'"user') == fetch.MAX_ADDRESSES
    assert b'"user999" "example.org"' in envelope and b'"user1000"' not in envelope
    assert b'"many"' in envelope and b"<m@x>" in envelope
    # The header block is too large to keep: what fits is kept (for SEARCH), marked partial.
    assert forms["partial"] == "1"
    header = fetch.kept_header(forms)
    assert header is not None and b"Subject: many\r\n" in header and b"user0@" not in header
    assert len(header) <= fetch.MAX_KEPT_HEADER


def test_address_budget_spans_fields_of_one_name() -> None:
    fields = b"".join(
        b"Cc: " + b", ".join(b"c%d.%d@example.org" % (f, n) for n in range(10)) + b"\r\n"
        for f in range(30_000)
    )
    raw = b"From: a@example.org\r\n" + fields + b"Subject: s\r\n\r\nbody\r\n"
    envelope = fetch.derive(raw)["envelope"].encode("latin-1")
    assert envelope.count(b'"c') == fetch.MAX_ADDRESSES


def test_small_messages_keep_exact_forms() -> None:
    raw = (
        b'From: "Doe, Jane" <jane@example.org>\r\nTo: a@b.example, (x, y) c@d.example\r\n\r\nhi\r\n'
    )
    message = Message(raw)
    forms = fetch.derive(raw)
    assert forms["envelope"].encode("latin-1") == message.envelope()
    assert forms["header"].encode("latin-1") == message.section("HEADER")
    assert "partial" not in forms


def test_first_addresses_cuts_only_between_addresses() -> None:
    value = b'"Doe, Jane" <jane@example.org>, (a, comment) bob@example.org, <@r1,@r2:c@d>, e@f'
    assert fetch.first_addresses(value, 1) == (b'"Doe, Jane" <jane@example.org>', 1)
    assert fetch.first_addresses(value, 2)[0].endswith(b"bob@example.org")
    assert fetch.first_addresses(value, 3)[0].endswith(b"<@r1,@r2:c@d>")
    assert fetch.first_addresses(value, 4) == (value, 4)


def test_minimal_forms_for_a_message_that_could_not_be_summarised() -> None:
    raw = folded_to(10) + b"x" * 1000
    forms = fetch.minimal(raw)
    assert forms["imap"] == fetch.FORMS_VERSION
    assert b'"many"' in forms["envelope"].encode("latin-1")
    assert forms["body"].startswith('("TEXT" "PLAIN"')
    assert forms["bodystructure"].endswith("NIL NIL NIL NIL)")
