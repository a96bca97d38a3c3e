"""BINARY (RFC 3516), MULTIAPPEND (RFC 3502) and CATENATE (RFC 4469) byte for byte: parts
fetched with their transfer encoding undone, messages uploaded as literal8, several messages in
one APPEND (all or none), and messages put together from text and IMAP URLs naming only the
signed-in user's own messages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.frontends import test_imap_transcripts as transcripts
from tests.frontends.mailserver import MailServer
from tests.frontends.test_imap import PASSWORD
from tests.frontends.test_imap_transcripts import Wire, Wires, fill, logout, select
from tests.frontends.webserver import cli, cli_chains, set_option

APPEND_LIMIT = 1024 * 1024  # [smtp] max_message_bytes, announced as APPENDLIMIT
QUOTA_MIB = 1  # carol's quota


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailServer]:
    """alice and bob without a quota, carol with 1 MiB; APPENDLIMIT 1 MiB."""
    data = tmp_path_factory.mktemp("imap-append") / "deployment"
    cli(data, "init")
    set_option(data, "auth", "failure_delay_ms", "50")
    set_option(data, "smtp", "max_message_bytes", str(APPEND_LIMIT))
    cli(data, "tenant", "create", "acme", "--domain", "acme.example")
    add = ("user", "add")
    cli_chains(data, [
        [((*add, "alice@acme.example", "--password-stdin"), PASSWORD + "\n")],
        [((*add, "bob@acme.example", "--password-stdin"), PASSWORD + "\n")],
        [((*add, "carol@acme.example", "--quota", str(QUOTA_MIB), "--password-stdin"),
          PASSWORD + "\n")],
    ])  # fmt: skip
    running = MailServer(data).start()
    try:
        yield running
    finally:
        running.stop()


wires = transcripts.wires


def plus(data: bytes) -> bytes:
    """A LITERAL+ literal: marker and data."""
    return b"{%d+}\r\n" % len(data) + data


def status(wire: Wire, tag: str, mailbox: str, messages: int, uidnext: int) -> None:
    wire.run([(f"{tag} STATUS {mailbox} (MESSAGES UIDNEXT)\r\n".encode(), [
        b'* STATUS "%s" (MESSAGES %d UIDNEXT %d)' % (mailbox.encode(), messages, uidnext),
        f"{tag} OK STATUS completed".encode(),
    ])])  # fmt: skip


QP_TEXT = "Grüße aus Köln! Zoë".encode()
PARTS = (
    b"From: a@remote.example\r\n"
    b"Subject: parts\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="p"\r\n'
    b"\r\n"
    b"--p\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Gr=C3=BC=C3=9Fe aus K=C3=B6ln!=\r\n"
    b" Zo=C3=AB\r\n"
    b"--p\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"AAEC\r\n"
    b"--p\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Transfer-Encoding: x-uuencode\r\n"
    b"\r\n"
    b"begin 644 x\r\n"
    b"--p--\r\n"
)


# --- BINARY ------------------------------------------------------------------------------


def test_fetch_binary_decodes_parts_and_uses_literal8_for_nul(wires: Wires) -> None:
    wire = wires.signed_in("alice")
    fill(wire, "Parts", PARTS)
    qp = b"{%d}\r\n" % len(QP_TEXT) + QP_TEXT
    wire.run([
        select("a1", "Parts", exists=1, uidnext=2, unseen=1),
        (b"a2 FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1] BINARY.SIZE[2] BINARY.PEEK[2])\r\n", [
            b"* 1 FETCH (BINARY.SIZE[1] %d BINARY[1] %s BINARY.SIZE[2] 3 BINARY[2] ~{3}\r\n"
            b"\x00\x01\x02)" % (len(QP_TEXT), qp),
            b"a2 OK FETCH completed",
        ]),
        # A range of the decoded octets; the origin is named, as for BODY[]<>
        (b"a3 FETCH 1 (BINARY.PEEK[1]<4.6> BINARY.PEEK[2]<1.1>)\r\n", [
            b"* 1 FETCH (BINARY[1]<4> {6}\r\n%s BINARY[2]<1> {1}\r\n\x01)" % QP_TEXT[4:10],
            b"a3 OK FETCH completed",
        ]),
        # BODY[] still gives the part as stored
        (b"a4 FETCH 1 (BODY.PEEK[2])\r\n", [b"* 1 FETCH (BODY[2] {4}\r\nAAEC)", b"a4 OK FETCH completed"]),
        # a part that does not exist has no content; its size is 0
        (b"a5 FETCH 1 (BINARY.PEEK[9] BINARY.SIZE[9])\r\n",
         [b"* 1 FETCH (BINARY[9] NIL BINARY.SIZE[9] 0)", b"a5 OK FETCH completed"]),
        (b"a6 FETCH 1 (BINARY[1.MIME])\r\n", [b"a6 BAD BINARY takes part numbers only"]),
        # BINARY without .PEEK sets \Seen, like BODY[]
        (b"a7 FETCH 1 (BINARY[2])\r\n", [
            b"* 1 FETCH (BINARY[2] ~{3}\r\n\x00\x01\x02 FLAGS (\\Recent \\Seen))",
            b"a7 OK FETCH completed",
        ]),
    ])  # fmt: skip
    logout(wire)


def test_binary_of_an_unknown_encoding_is_no_unknown_cte(wires: Wires) -> None:
    wire = wires.signed_in("alice")
    fill(wire, "Encoded", PARTS)
    wire.run([
        (b"a1 EXAMINE Encoded\r\n", [
            transcripts.SELECT_FLAGS, b"* OK [PERMANENTFLAGS ()] flags", b"* 1 EXISTS",
            b"* ${recent} RECENT", b"* OK [UIDVALIDITY ${encoded}] UIDs valid",
            b"* OK [UIDNEXT 2] predicted next UID",
            b"* OK [HIGHESTMODSEQ ${modseq}] modification sequence",
            b"* OK [UNSEEN 1] first unseen", b"a1 OK [READ-ONLY] selected",
        ]),
        (b"a2 FETCH 1 (BINARY.PEEK[3])\r\n",
         [b"a2 NO [UNKNOWN-CTE] unknown content transfer encoding 'x-uuencode'"]),
        (b"a3 FETCH 1 (BINARY.SIZE[3])\r\n",
         [b"a3 NO [UNKNOWN-CTE] unknown content transfer encoding 'x-uuencode'"]),
        (b"a4 FETCH 1 (BODY.PEEK[3])\r\n",
         [b"* 1 FETCH (BODY[3] {11}\r\nbegin 644 x)", b"a4 OK FETCH completed"]),
    ])  # fmt: skip
    logout(wire)


BINARY_MESSAGE = (
    b"From: user@domain.org\r\n"
    b"Mime-Version: 1.0\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: binary\r\n"
    b"\r\n"
    b"\x00-\xe4\n\r\n\n"
)


def test_append_of_a_literal8_keeps_binary_parts_base64(wires: Wires) -> None:
    """An IMAP literal cannot carry NUL (RFC 3501 9): BODY[1] of a binary upload comes back
    base64, BINARY[1] exactly as sent (imaptest's append-binary)."""
    wire = wires.signed_in("alice")
    message = BINARY_MESSAGE
    wire.run([
        (b"b0 CREATE Raw\r\n", [b"b0 OK CREATE completed"]),
        (b"b1 APPEND Raw ~{%d}\r\n" % len(message), [b"+ Ready"]),
        (message + b"\r\n", [b"b1 OK [APPENDUID ${raw} 1] APPEND completed"]),
        (b"b2 APPEND Raw ~" + plus(message) + b"\r\n",
         [b"b2 OK [APPENDUID ${raw} 2] APPEND completed"]),
        select("b3", "Raw", exists=2, uidnext=3, unseen=1),
        (b"b4 FETCH 1 (BODY.PEEK[1] BINARY.SIZE[1] BINARY.PEEK[1])\r\n", [
            b"* 1 FETCH (BODY[1] {12}\r\nAC3kCg0KCg== BINARY.SIZE[1] 7 BINARY[1] ~{7}\r\n"
            b"\x00-\xe4\n\r\n\n)",
            b"b4 OK FETCH completed",
        ]),
        (b"b5 FETCH 2 (BODY.PEEK[HEADER.FIELDS (CONTENT-TRANSFER-ENCODING)])\r\n", [
            b"* 2 FETCH (BODY[HEADER.FIELDS (CONTENT-TRANSFER-ENCODING)] {37}\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n)",
            b"b5 OK FETCH completed",
        ]),
    ])  # fmt: skip
    logout(wire)


# --- MULTIAPPEND -------------------------------------------------------------------------


def note(n: int, size: int = 0) -> bytes:
    return b"Subject: note %d\r\n\r\n" % n + b"x" * size + b"body %d\r\n" % n


def test_multiappend_stores_every_message_with_one_appenduid(wires: Wires) -> None:
    wire = wires.signed_in("alice")
    first, second, third = note(1), note(2), note(3)
    wire.run([
        (b"m0 CREATE Many\r\n", [b"m0 OK CREATE completed"]),
        (b"m1 APPEND Many (\\Seen) {%d}\r\n" % len(first), [b"+ Ready"]),
        (first + b' (\\Flagged $Work) "05-Jan-2026 10:00:00 +0100" {%d}\r\n' % len(second),
         [b"+ Ready"]),
        (second + b" " + plus(third) + b"\r\n", [b"m1 OK [APPENDUID ${many} 1:3] APPEND completed"]),
        (b"m2 APPEND Many " + plus(first) + b" " + plus(first) + b"\r\n",  # the same twice
         [b"m2 OK [APPENDUID ${many} 4:5] APPEND completed"]),
        select("m3", "Many", exists=5, uidnext=6, unseen=2, keywords=b" $Work"),
        (b"m4 FETCH 1:5 (FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n", [
            b"* 1 FETCH (FLAGS (\\Recent \\Seen) INTERNALDATE ${date_1} "
            b"BODY[HEADER.FIELDS (SUBJECT)] {19}\r\nSubject: note 1\r\n\r\n)",
            b'* 2 FETCH (FLAGS ($Work \\Flagged \\Recent) INTERNALDATE "05-Jan-2026 09:00:00 +0000" '
            b"BODY[HEADER.FIELDS (SUBJECT)] {19}\r\nSubject: note 2\r\n\r\n)",
            b"* 3 FETCH (FLAGS (\\Recent) INTERNALDATE ${date_3} "
            b"BODY[HEADER.FIELDS (SUBJECT)] {19}\r\nSubject: note 3\r\n\r\n)",
            b"* 4 FETCH (FLAGS (\\Recent) INTERNALDATE ${date_4} "
            b"BODY[HEADER.FIELDS (SUBJECT)] {19}\r\nSubject: note 1\r\n\r\n)",
            b"* 5 FETCH (FLAGS (\\Recent) INTERNALDATE ${date_5} "
            b"BODY[HEADER.FIELDS (SUBJECT)] {19}\r\nSubject: note 1\r\n\r\n)",
            b"m4 OK FETCH completed",
        ]),
    ])  # fmt: skip
    logout(wire)


def test_multiappend_whose_second_message_is_over_quota_stores_nothing(wires: Wires) -> None:
    """Each fits carol's 1 MiB alone, the two together do not: neither is stored, and no UID
    is used up (one transaction, the quota checked for the sum)."""
    wire = wires.signed_in("carol")
    big = note(1, 600 * 1024)
    wire.run([
        (b"q0 CREATE Quota\r\n", [b"q0 OK CREATE completed"]),
        (b"q1 APPEND Quota " + plus(big) + b" " + plus(note(2, 600 * 1024)) + b"\r\n",
         [b"q1 NO [OVERQUOTA] carol@acme.example is over quota"]),
    ])  # fmt: skip
    status(wire, "q2", "Quota", messages=0, uidnext=1)
    wire.run([(b"q3 APPEND Quota " + plus(big) + b"\r\n",
               [b"q3 OK [APPENDUID ${quota} 1] APPEND completed"])])  # fmt: skip
    status(wire, "q4", "Quota", messages=1, uidnext=2)
    logout(wire)


def test_multiappend_whose_second_message_is_too_big_stores_nothing(wires: Wires) -> None:
    """The second literal is over APPENDLIMIT: refused before it is sent, and the first
    message (already read) goes with the command."""
    wire = wires.signed_in("alice")
    first = note(1)
    wire.run([
        (b"t0 CREATE Big\r\n", [b"t0 OK CREATE completed"]),
        (b"t1 APPEND Big {%d}\r\n" % len(first), [b"+ Ready"]),
        (first + b" {%d}\r\n" % (APPEND_LIMIT + 1),
         [b"t1 NO [TOOBIG] literal of %d octets is over the limit" % (APPEND_LIMIT + 1)]),
        (b"t2 NOOP\r\n", [b"t2 OK NOOP completed"]),  # the connection goes on
    ])  # fmt: skip
    status(wire, "t3", "Big", messages=0, uidnext=1)
    logout(wire)


def test_empty_message_cancels_a_multiappend(wires: Wires) -> None:
    """RFC 3502: a zero-length literal fails the command; nothing is stored."""
    wire = wires.signed_in("alice")
    wire.run([
        (b"e0 CREATE Cancelled\r\n", [b"e0 OK CREATE completed"]),
        (b"e1 APPEND Cancelled " + plus(note(1)) + b" {0+}\r\n\r\n",
         [b"e1 NO [CANNOT] an empty message cannot be stored"]),
    ])  # fmt: skip
    status(wire, "e2", "Cancelled", messages=0, uidnext=1)
    logout(wire)


# --- CATENATE ----------------------------------------------------------------------------

SOURCE = b"From: foo@example.com\r\nSubject: source\r\n\r\nHello world body\r\n"
SOURCE_HEADER = b"From: foo@example.com\r\nSubject: source\r\n\r\n"
QP_RAW = b"Gr=C3=BC=C3=9Fe aus K=C3=B6ln!=\r\n Zo=C3=AB"  # PARTS's part 1 as stored


def literal(data: bytes) -> bytes:
    return b"{%d}\r\n" % len(data) + data


def test_catenate_joins_text_and_the_users_own_messages(wires: Wires) -> None:
    wire = wires.signed_in("alice")
    fill(wire, "Source", SOURCE, PARTS)
    validity = wire.number("source")
    second = b"Subject: two\r\n\r\n" + b"world" + QP_RAW
    wire.run([
        (b"c0 CREATE Joined\r\n", [b"c0 OK CREATE completed"]),
        (b'c1 APPEND Joined (\\Seen) CATENATE (URL "/Source/;UID=1/;SECTION=HEADER" TEXT '
         + plus(b"body1\r\n") + b")\r\n",
         [b"c1 OK [APPENDUID ${joined} 1] APPEND completed"]),
        # CATENATE and MULTIAPPEND together; UIDVALIDITY, PARTIAL, an absolute URL naming the
        # signed-in user on this server, a whole message
        (b"c2 APPEND Joined CATENATE (TEXT " + plus(b"Subject: two\r\n\r\n")
         + b' URL "/Source;UIDVALIDITY=%d/;UID=1/;SECTION=TEXT/;PARTIAL=6.5"' % validity
         + b' URL "imap://alice%40acme.example@localhost/Source/;UID=2/;SECTION=1")'
         + b" CATENATE (URL /Source/;UID=1)\r\n",
         [b"c2 OK [APPENDUID ${joined} 2:3] APPEND completed"]),
        # relative to the selected mailbox (and its UIDVALIDITY)
        select("c3", "Source", exists=2, uidnext=3, unseen=1),
        (b"c4 APPEND Joined CATENATE (URL ;UID=1/;SECTION=HEADER TEXT " + plus(b"four\r\n")
         + b")\r\n", [b"c4 OK [APPENDUID ${joined} 4] APPEND completed"]),
        (b"c5 UNSELECT\r\n", [b"c5 OK UNSELECT completed"]),
        (b"c6 EXAMINE Joined\r\n", [
            transcripts.SELECT_FLAGS, b"* OK [PERMANENTFLAGS ()] flags", b"* 4 EXISTS",
            b"* 4 RECENT", b"* OK [UIDVALIDITY ${joined}] UIDs valid",
            b"* OK [UIDNEXT 5] predicted next UID",
            b"* OK [HIGHESTMODSEQ ${modseq}] modification sequence",
            b"* OK [UNSEEN 2] first unseen", b"c6 OK [READ-ONLY] selected",
        ]),
        (b"c7 FETCH 1:4 (FLAGS BODY.PEEK[])\r\n", [
            b"* 1 FETCH (FLAGS (\\Recent \\Seen) BODY[] %s)" % literal(SOURCE_HEADER + b"body1\r\n"),
            b"* 2 FETCH (FLAGS (\\Recent) BODY[] %s)" % literal(second),
            b"* 3 FETCH (FLAGS (\\Recent) BODY[] %s)" % literal(SOURCE),
            b"* 4 FETCH (FLAGS (\\Recent) BODY[] %s)" % literal(SOURCE_HEADER + b"four\r\n"),
            b"c7 OK FETCH completed",
        ]),
    ])  # fmt: skip
    logout(wire)


BAD_URLS = [
    (b"/{box};UIDVALIDITY=12345/;UID=1", b"the URL names no message of yours"),
    (b"/{box}/;UID=99", b"the URL names no message of yours"),
    (b"/Nowhere/;UID=1", b"the URL names no message of yours"),
    (b"/{box}/;UID=1/;SECTION=7", b"the message has no such section"),
    (b";UID=1", b"a relative URL needs a selected mailbox"),
    (b"imap://bob%40acme.example@localhost/{box}/;UID=1", b"the URL names another user"),
    (b"imap://localhost/{box}/;UID=1", b"the URL names another user"),
    (b"imap://alice%40acme.example@mail.elsewhere.example/{box}/;UID=1",
     b"the URL names another server"),
    (b"/{box}/;UID=1;URLAUTH=anonymous:internal:0123456789abcdef", b"URLAUTH is not supported"),
    (b"/{box}/;UID=1/", b"bad UID"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "url", "why"), [(i, *c) for i, c in enumerate(BAD_URLS)])
def test_catenate_with_a_bad_url_stores_nothing(
    wires: Wires, case: int, url: bytes, why: bytes
) -> None:
    """NO [BADURL url], and the command's other message is not stored either."""
    wire = wires.signed_in("alice")
    box = b"Refs%d" % case
    fill(wire, box.decode(), SOURCE)
    url = url.replace(b"{box}", box)
    wire.run([
        (b"u1 APPEND " + box + b" " + plus(note(1)) + b" CATENATE (TEXT " + plus(b"x: y\r\n\r\n")
         + b' URL "' + url + b'")\r\n', [b"u1 NO [BADURL " + url + b"] " + why]),
    ])  # fmt: skip
    status(wire, "u2", box.decode(), messages=1, uidnext=2)
    logout(wire)


def test_catenate_cannot_reach_another_users_messages(wires: Wires) -> None:
    """A URL names the signed-in user's own mailboxes: bob's INBOX message 1 is not what
    alice gets for /INBOX/;UID=1, and naming bob is BADURL."""
    bob, alice = wires.signed_in("bob"), wires.signed_in("alice")
    secret = b"Subject: bob's secret\r\n\r\nfor bob only\r\n"
    mine = b"Subject: alice's own\r\n\r\nfor alice\r\n"
    bob.run([(b"s1 APPEND INBOX " + plus(secret) + b"\r\n",
              [b"s1 OK [APPENDUID ${bob_inbox} 1] APPEND completed"])])  # fmt: skip
    alice.run([
        (b"a1 APPEND INBOX " + plus(mine) + b"\r\n",
         [b"a1 OK [APPENDUID ${alice_inbox} 1] APPEND completed"]),
        (b"a2 CREATE Forwarded\r\n", [b"a2 OK CREATE completed"]),
        (b'a3 APPEND Forwarded CATENATE (URL "/INBOX/;UID=1")\r\n',
         [b"a3 OK [APPENDUID ${forwarded} 1] APPEND completed"]),
        (b'a4 APPEND Forwarded CATENATE (URL "imap://bob%40acme.example@localhost/INBOX/;UID=1")\r\n',
         [b"a4 NO [BADURL imap://bob%40acme.example@localhost/INBOX/;UID=1] "
          b"the URL names another user"]),
        select("a5", "Forwarded", exists=1, uidnext=2, unseen=1),
        (b"a6 FETCH 1 (BODY.PEEK[])\r\n",
         [b"* 1 FETCH (BODY[] %s)" % literal(mine), b"a6 OK FETCH completed"]),
    ])  # fmt: skip
    logout(alice)
    logout(bob)


def test_catenated_message_over_appendlimit_is_too_big(wires: Wires) -> None:
    wire = wires.signed_in("alice")
    half = note(1, APPEND_LIMIT // 2)
    wire.run([
        (b"g0 CREATE Grown\r\n", [b"g0 OK CREATE completed"]),
        (b"g1 APPEND Grown " + plus(half) + b"\r\n",
         [b"g1 OK [APPENDUID ${grown} 1] APPEND completed"]),
        (b"g2 APPEND Grown CATENATE (URL /Grown/;UID=1 URL /Grown/;UID=1 TEXT {1+}\r\nx)\r\n",
         [b"g2 NO [TOOBIG] the message would be over %d octets (APPENDLIMIT)" % APPEND_LIMIT]),
    ])  # fmt: skip
    status(wire, "g3", "Grown", messages=1, uidnext=2)
    logout(wire)


def test_catenate_urls_naming_too_much_mail_get_no_limit(wires: Wires) -> None:
    """A command's URLs may read at most 4 x APPENDLIMIT of mail, each message once: a
    thousand URLs taking one octet each of large messages must not make the server decrypt
    gigabytes (before: every URL read its whole message, without bound)."""
    wire = wires.signed_in("alice")
    fill(wire, "Heavy", *(note(n, 600 * 1024) for n in range(1, 8)))  # 7 x 600 KiB > 4 MiB
    each = b" ".join(b"URL /Heavy/;UID=%d/;PARTIAL=0.1" % uid for uid in range(1, 8))
    same = b" ".join([b"URL /Heavy/;UID=1/;PARTIAL=0.1"] * 500)
    wire.run([
        (b"h1 APPEND Heavy CATENATE (" + each + b")\r\n",
         [b"h1 NO [LIMIT] the URLs of this command name too much mail"]),
        (b"h2 APPEND Heavy CATENATE (" + same + b")\r\n",  # one message, read once
         [b"h2 OK [APPENDUID ${heavy} 8] APPEND completed"]),
    ])  # fmt: skip
    status(wire, "h3", "Heavy", messages=8, uidnext=9)
    logout(wire)
