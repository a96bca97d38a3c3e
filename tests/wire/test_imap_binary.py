"""BINARY (RFC 3516) on byte strings: transfer decoding, the BINARY[section] forms, what an
APPEND of a literal8 stores; the literal8 framing, and the grammar of the BINARY FETCH items
and of APPEND with MULTIAPPEND (RFC 3502) and CATENATE (RFC 4469)."""

from __future__ import annotations

import pytest

from enclave.imap.wire import binary
from enclave.imap.wire.commands import AppendMessage, FetchItem, TaggedParseError, parse
from enclave.imap.wire.framing import Command, CommandFramer, NeedContinuation, Refused
from enclave.imap.wire.message import Message


def crlf(text: bytes) -> bytes:
    return text.replace(b"\n", b"\r\n")


def frame(data: bytes, **kw: int) -> list[object]:
    framer = CommandFramer(**kw)  # type: ignore[arg-type]
    framer.feed(data)
    events: list[object] = []
    while (event := framer.next_event()) is not None:
        events.append(event)
    return events


def one(data: bytes):  # type: ignore[no-untyped-def]
    [command] = [e for e in frame(data) if isinstance(e, Command)]
    return parse(command)


# imaptest's fetch-binary-mime-base64 and -qp messages (as its mbox gives them, CRLF).
BASE64_PARTS = (
    b"aGVs\nbG8gd29y\nbGQ=\n",
    b"  aGVs     \n bG8g   \n    d29y  \t  \n    bGQ=   \n\n",
    b"aGVsbG8g\ndG8geW91IHRv\nbw==\n",
    b"aGVsbG8gdG8gZXZlcnlvbmUh",
    b"YWJjZGVmZw1oaWprbA0KbW5vCnBxcnN0dXZxeHl6\n",
)
QP_BODY = crlf(
    b"hello  \nbar=\n\nfoo\t=\nbar\nfoo\t \t= \n=62\nfoo = \t\nbar\nfoo =\n=62\nfoo  \nbar=\n\n"
    b"foo_bar\n"
)
MULTIPART = crlf(
    b"From: user@domain.org\n"
    b"Mime-Version: 1.0\n"
    b'Content-Type: multipart/mixed; boundary="b"\n'
    b"\n"
    b"--b\n"
    b"Content-Type: text/plain\n"
    b"Content-Transfer-Encoding: base64\n"
    b"\n"
    b"aGVsbG8gd29ybGQ=\n"
    b"--b\n"
    b"Content-Type: text/plain\n"
    b"Content-Transfer-Encoding: quoted-printable\n"
    b"\n"
    b"caf=C3=A9\n"
    b"--b\n"
    b"Content-Type: text/plain\n"
    b"\n"
    b"plain\n"
    b"--b--\n"
)


# --- transfer decoding ------------------------------------------------------------------


def test_base64_is_decoded_leniently() -> None:
    decoded = [binary.decode(crlf(part), b"base64") for part in BASE64_PARTS]
    assert decoded == [
        b"hello world", b"hello world", b"hello to you too", b"hello to everyone!",
        b"abcdefg\rhijkl\r\nmno\npqrstuvqxyz",
    ]  # fmt: skip
    assert binary.decode_base64(b"aGk=aGk=") == b"hihi"  # padded runs one after another
    assert binary.decode_base64(b"aGVsbG8") == b"hello"  # padding left out
    assert binary.decode_base64(b"!!") == b""


def test_quoted_printable_drops_soft_breaks_and_trailing_white_space() -> None:
    decoded = binary.decode(QP_BODY, b"Quoted-Printable")
    assert decoded == crlf(b"hello\nbar\nfoo\tbar\nfoo\t \tb\nfoo bar\nfoo b\nfoo\nbar\nfoo_bar\n")
    assert len(decoded) == 65  # imaptest's BINARY.SIZE of that part
    # lower-case hex is read too; a broken escape stays as it is; a final "=" is a soft break
    assert binary.decode_qp(b"a=3Db=3d=ZZ=") == b"a=b==ZZ"


def test_identity_encodings_are_kept_and_unknown_ones_raise() -> None:
    for name in (b"7bit", b"8BIT", b"binary", b""):
        assert binary.decode(b"\x00x", name) == b"\x00x"
    with pytest.raises(binary.UnknownCTE) as raised:
        binary.decode(b"x", b"x-uuencode")
    assert raised.value.encoding == b"x-uuencode"


# --- BINARY[section] ----------------------------------------------------------------------


def test_binary_section_decodes_the_part() -> None:
    message = Message(MULTIPART)
    assert binary.section(message, "1") == b"hello world"
    assert binary.section(message, "2") == b"caf\xc3\xa9"
    assert binary.section(message, "3") == b"plain"
    assert binary.section(message, "4") is None
    assert binary.section(message, "1.MIME") is None  # part numbers only


def test_binary_of_the_whole_message_decodes_every_part_and_relabels_it() -> None:
    whole = binary.section(Message(MULTIPART), "")
    assert whole is not None
    assert b"hello world" in whole and b"caf\xc3\xa9" in whole
    assert b"base64" not in whole and b"quoted-printable" not in whole
    assert whole.count(b"Content-Transfer-Encoding: binary\r\n") == 2
    assert whole.endswith(b"--b\r\nContent-Type: text/plain\r\n\r\nplain\r\n--b--\r\n")
    reparsed = Message(whole)
    assert reparsed.section("1") == b"hello world"  # still a well-formed message


def test_binary_section_with_unknown_encoding_raises() -> None:
    raw = crlf(b"Content-Transfer-Encoding: x-gzip\n\nabc")
    with pytest.raises(binary.UnknownCTE):
        binary.section(Message(raw), "1")


def test_literal8_only_when_nul() -> None:
    assert binary.needs_literal8(b"a\x00b")
    assert not binary.needs_literal8(b"abc\r\xff\n")


# --- what an APPEND of a literal8 stores --------------------------------------------------

BINARY_MESSAGE = (
    crlf(
        b"From: user@domain.org\n"
        b"Mime-Version: 1.0\n"
        b"Content-Type: application/octet-stream\n"
        b"Content-Transfer-Encoding: binary\n"
        b"\n"
    )
    + b"\x00-\xe4\n\r\n\n"
)


def test_binary_parts_are_stored_base64_and_come_back_exactly() -> None:
    stored = binary.storable(BINARY_MESSAGE)
    assert b"\x00" not in stored
    assert b"Content-Transfer-Encoding: base64\r\n" in stored
    message = Message(stored)
    assert message.section("1") == b"AC3kCg0KCg=="  # BODY[1] is a valid literal now
    assert binary.section(message, "1") == b"\x00-\xe4\n\r\n\n"  # BINARY[1] as sent


def test_nul_in_an_unlabelled_part_is_stored_base64() -> None:
    raw = crlf(b"Content-Type: multipart/mixed; boundary=x\n\n--x\n\n") + b"a\x00b\r\n--x--\r\n"
    stored = binary.storable(raw)
    assert b"\x00" not in stored
    assert binary.section(Message(stored), "1") == b"a\x00b"


def test_messages_without_binary_parts_are_stored_as_sent() -> None:
    assert binary.storable(MULTIPART) is MULTIPART


# --- literal8 on the wire -----------------------------------------------------------------


def test_literal8_is_framed_like_a_literal() -> None:
    framer = CommandFramer()
    framer.feed(b"a APPEND INBOX ~{3}\r\n")
    assert framer.next_event() == NeedContinuation(3)
    framer.feed(b"\x00\x01\x02 ~{2+}\r\nxy\r\n")
    assert framer.next_event() == Command(
        (b"a APPEND INBOX ~{3}", b"\x00\x01\x02", b" ~{2+}", b"xy", b"")
    )


def test_literal8_keeps_the_literal_limits() -> None:
    refused = frame(b"a APPEND INBOX ~{2000}\r\n", max_literal=1000)[0]
    assert isinstance(refused, Refused) and refused.code == "TOOBIG" and refused.tag == b"a"
    events = frame(b"a APPEND INBOX ~{600}\r\n" + b"x" * 600 + b" ~{600}\r\n", max_literals=1000)
    assert isinstance(events[-1], Refused)


# --- grammar ------------------------------------------------------------------------------


def test_binary_items_were_answered_as_body() -> None:
    items = one(b"a FETCH 1 (BINARY[1]<0.7> BINARY.PEEK[2.1] BINARY.SIZE[] BODY[1])\r\n")
    assert items.args["items"] == [
        FetchItem("BINARY", section="1", peek=False, partial=(0, 7)),
        FetchItem("BINARY", section="2.1", peek=True),
        FetchItem("BINARY.SIZE", section="", peek=True),
        FetchItem("BODY", section="1"),
    ]
    labels = [item.label for item in items.args["items"]]
    assert labels == ["BINARY[1]<0>", "BINARY[2.1]", "BINARY.SIZE[]", "BODY[1]"]


@pytest.mark.parametrize(
    "items", [b"BINARY[HEADER]", b"BINARY[1.MIME]", b"BINARY.SIZE[1]<0.5>", b"BINARY.SIZE"]
)
def test_binary_items_take_part_numbers_only(items: bytes) -> None:
    with pytest.raises(TaggedParseError):
        one(b"a FETCH 1 (" + items + b")\r\n")


def test_append_of_several_messages_and_of_catenated_parts() -> None:
    request = one(
        b'a APPEND Drafts (\\Seen) {3+}\r\none (\\Draft) "05-Jan-2026 10:00:00 +0100" ~{3+}\r\n'
        b'\x00wo CATENATE (URL "/INBOX/;UID=1" TEXT {4+}\r\nfour URL ;UID=2) {5+}\r\nfive!\r\n'
    )
    first, second, third, fourth = request.args["messages"]
    assert first == AppendMessage(("\\Seen",), None, (("TEXT", b"one"),))
    assert second.flags == ("\\Draft",) and second.date is not None and second.binary
    assert second.parts == (("TEXT", b"\x00wo"),)
    assert third == AppendMessage(
        (), None, (("URL", b"/INBOX/;UID=1"), ("TEXT", b"four"), ("URL", b";UID=2")),
        catenate=True,
    )  # fmt: skip
    assert fourth.parts == (("TEXT", b"five!"),)
    assert request.args["message"] == b"one" and request.args["flags"] == ["\\Seen"]


@pytest.mark.parametrize(
    "command",
    [
        b"a APPEND INBOX\r\n",
        b"a APPEND INBOX CATENATE ()\r\n",
        b"a APPEND INBOX CATENATE (FILE {1+}\r\nx)\r\n",
        b"a APPEND INBOX {1+}\r\nx CATENATE (URL)\r\n",
        b"a APPEND INBOX ~\r\n",
        b"a APPEND INBOX {1+}\r\nx \r\n",
    ],
)
def test_append_grammar_errors(command: bytes) -> None:
    with pytest.raises(TaggedParseError):
        one(command)
