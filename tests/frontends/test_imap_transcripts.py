"""The IMAP listener byte for byte: scripted client lines over a raw socket (TLS after
STARTTLS), every server response compared exactly with the transcript.

A transcript is a list of ``(client bytes, expected responses)``. A response is one server
line together with the literals it announces (so a FETCH with ``{n}`` data is one response,
its CRLFs inside). Expected responses are exact bytes except for ``${name}`` placeholders,
which stand for values that legitimately vary from run to run: ``${date...}`` matches a
quoted INTERNALDATE, ``${attrs...}`` the inside of a LIST attribute list, ``${version...}``
a version string, any other name a number. A name binds on first use and must repeat the
same value afterwards (the UIDVALIDITY in APPENDUID is the one SELECT announced), also across
the two connections of one test.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator, Sequence

import pytest

from tests.frontends import test_imap
from tests.frontends.mailserver import MailServer
from tests.frontends.test_imap import PASSWORD, tls_context
from tests.frontends.webserver import HOST

server = test_imap.server  # the same deployment: tenant acme, users alice and bob

Step = tuple[bytes, Sequence[bytes]]

PLACEHOLDER = re.compile(rb"\$\{(\w+)\}")
NUMBER = rb"0|[1-9][0-9]*"
DATE_TIME = rb'"[ 0-9][0-9]-[A-Z][a-z]{2}-[0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} [+-][0-9]{4}"'
KINDS = {"date": DATE_TIME, "version": rb"[0-9A-Za-z.+-]+", "attrs": rb"[^()]*"}
LITERAL_AT_END = re.compile(rb"\{([0-9]+)\}\r\n$")

CAPS = (
    b"IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UNSELECT UIDPLUS MOVE "
    b"SPECIAL-USE LIST-EXTENDED LIST-STATUS QUOTA CONDSTORE QRESYNC CHILDREN ESEARCH SEARCHRES "
    b"CONTEXT=SEARCH STATUS=SIZE SORT SORT=DISPLAY THREAD=ORDEREDSUBJECT THREAD=REFERENCES ESORT "
    b"BINARY MULTIAPPEND CATENATE NOTIFY APPENDLIMIT=${appendlimit}"
)
GREETING = b"* OK [CAPABILITY " + CAPS + b" STARTTLS LOGINDISABLED] Enclave IMAP ready"
SELECT_FLAGS = b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)"
PERMANENT_FLAGS = b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] flags"

# A multipart message with a non-ASCII encoded-word subject and sender name, two recipients,
# a quoted display name with a comma, In-Reply-To, a quoted-printable text part and a base64
# attachment: 668 octets; the text part's body is 42 octets in 2 lines (the CRLF before a
# boundary belongs to the boundary, RFC 2046 5.1.1).
MESSAGE = (
    b"From: =?utf-8?q?Zo=C3=AB_M=C3=BCller?= <zoe@remote.example>\r\n"
    b"To: Bob <bob@acme.example>, carol@acme.example\r\n"
    b'Cc: "Ops, Team" <ops@acme.example>\r\n'
    b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\r\n"
    b"Date: Sat, 28 Nov 2026 10:00:00 +0100\r\n"
    b"Message-ID: <t1@remote.example>\r\n"
    b"In-Reply-To: <t0@acme.example>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n'
    b"\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Gr=C3=BC=C3=9Fe aus K=C3=B6ln!\r\n"
    b"Zo=C3=AB\r\n"
    b"\r\n"
    b"--b1\r\n"
    b'Content-Type: application/octet-stream; name="n.bin"\r\n'
    b'Content-Disposition: attachment; filename="n.bin"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"AAEC\r\n"
    b"--b1--\r\n"
)
NOTE = b"Subject: note\r\n\r\nliteral plus body\r\n"  # 36 octets


class Wire:
    """One raw IMAP connection that plays transcripts."""

    def __init__(self, server: MailServer, values: dict[str, bytes] | None = None) -> None:
        self.server = server
        self.sock: socket.socket = socket.create_connection((HOST, server.imap_port), timeout=5)
        self.reader = self.sock.makefile("rb")
        self.values: dict[str, bytes] = {} if values is None else values

    def response(self) -> bytes:
        """One response without its final CRLF: a line and any literals it announces."""
        out = b""
        while True:
            line = self.reader.readline()
            if not line:
                raise EOFError(f"connection closed after {out!r}")
            out += line
            literal = LITERAL_AT_END.search(line)
            if literal is None:
                return out[:-2]
            out += self.reader.read(int(literal.group(1)))

    def run(self, script: Sequence[Step]) -> None:
        """Send each client chunk, then read as many responses as expected and compare."""
        for sent, expected in script:
            if sent:
                self.sock.sendall(sent)
            got: list[bytes] = []
            try:
                while len(got) < len(expected):
                    got.append(self.response())
                    if not got[-1].startswith((b"* ", b"+ ")):
                        break  # tagged: the command is over, whatever was expected
            except (TimeoutError, EOFError) as exc:
                got.append(f"<{exc.__class__.__name__}>".encode())
            self.compare(sent, expected, got)

    def compare(self, sent: bytes, expected: Sequence[bytes], got: list[bytes]) -> None:
        bound = dict(self.values)
        ok = len(got) == len(expected)
        for want, line in zip(expected, got, strict=False):
            match = self.pattern(want, bound).fullmatch(line)
            if match is None:
                ok = False
                break
            bound.update(match.groupdict())
        if not ok:
            pytest.fail(
                f"after C: {sent!r}\nexpected:\n"
                + "".join(f"  {w!r}\n" for w in expected)
                + "got:\n"
                + "".join(f"  {g!r}\n" for g in got),
                pytrace=False,
            )
        self.values.update(bound)

    @staticmethod
    def pattern(expected: bytes, bound: dict[str, bytes]) -> re.Pattern[bytes]:
        parts: list[bytes] = []
        new: set[str] = set()
        position = 0
        for found in PLACEHOLDER.finditer(expected):
            parts.append(re.escape(expected[position : found.start()]))
            name = found.group(1).decode()
            if name in bound:
                parts.append(re.escape(bound[name]))
            elif name in new:
                parts.append(b"(?P=%s)" % name.encode())
            else:
                kind = KINDS.get(name.split("_")[0], NUMBER)
                parts.append(b"(?P<%s>%s)" % (name.encode(), kind))
                new.add(name)
            position = found.end()
        parts.append(re.escape(expected[position:]))
        return re.compile(b"".join(parts), re.DOTALL)

    def starttls(self, sent: bytes = b"t1 STARTTLS\r\n") -> None:
        """STARTTLS (``sent`` may carry more commands after it), then the TLS handshake."""
        self.run([(sent, [b"t1 OK Begin TLS negotiation now"])])
        self.reader.close()
        self.sock = tls_context(self.server.data).wrap_socket(
            self.sock, server_hostname="localhost"
        )
        self.reader = self.sock.makefile("rb")

    def number(self, name: str) -> int:
        return int(self.values[name])

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


class Wires:
    """The connections of one test, closed at its end whatever happens; they share the
    placeholder values, so two sessions agree on UIDVALIDITY and the like."""

    def __init__(self, server: MailServer) -> None:
        self.server = server
        self.values: dict[str, bytes] = {}
        self.opened: list[Wire] = []

    def plain(self) -> Wire:
        """A new connection before the greeting is read."""
        wire = Wire(self.server, self.values)
        self.opened.append(wire)
        return wire

    def signed_in(self, user: str) -> Wire:
        """Greeting, STARTTLS and LOGIN, each reply exact."""
        wire = self.plain()
        wire.run([(b"", [GREETING])])
        wire.starttls()
        login = b'l1 LOGIN %s@acme.example "%s"\r\n' % (user.encode(), PASSWORD.encode())
        wire.run([(login, [b"l1 OK [CAPABILITY " + CAPS + b"] signed in"])])
        return wire

    def close(self) -> None:
        for wire in self.opened:
            wire.close()


@pytest.fixture
def wires(server: MailServer) -> Iterator[Wires]:
    opened = Wires(server)
    try:
        yield opened
    finally:
        opened.close()


def select(
    tag: str,
    mailbox: str,
    exists: int,
    uidnext: int,
    unseen: int | None = None,
    *,
    recent: int | None = None,
    keywords: bytes = b"",
    closed: bool = False,
) -> Step:
    """SELECT of a mailbox whose UIDVALIDITY is ${<mailbox>} and HIGHESTMODSEQ varies. The
    first session to select a mailbox is told that everything in it is recent (the default);
    ``keywords`` (e.g. b" $Work") are the ones its messages carry; ``closed``: another
    mailbox was selected, so OK [CLOSED] comes first (RFC 7162 3.2.11)."""
    name = mailbox.lower()
    lines = [
        *([b"* OK [CLOSED] previous mailbox closed"] if closed else []),
        SELECT_FLAGS[:-1] + keywords + b")",
        PERMANENT_FLAGS.replace(b" \\*)", keywords + b" \\*)"),
        b"* %d EXISTS" % exists,
        b"* %d RECENT" % (exists if recent is None else recent),
        b"* OK [UIDVALIDITY ${%s}] UIDs valid" % name.encode(),
        b"* OK [UIDNEXT %d] predicted next UID" % uidnext,
        b"* OK [HIGHESTMODSEQ ${%s_modseq}] modification sequence" % name.encode(),
    ]
    if unseen is not None:
        lines.append(b"* OK [UNSEEN %d] first unseen" % unseen)
    lines.append(b"%s OK [READ-WRITE] selected" % tag.encode())
    return (f"{tag} SELECT {mailbox}\r\n".encode(), lines)


def logout(wire: Wire, tag: str = "z9") -> None:
    """LOGOUT: BYE, the tagged OK, then the server closes the connection."""
    wire.run([(f"{tag} LOGOUT\r\n".encode(),
               [b"* BYE Enclave IMAP closing the connection", f"{tag} OK LOGOUT completed".encode()])])  # fmt: skip
    assert wire.reader.read() == b""


def fill(wire: Wire, mailbox: str, *messages: bytes) -> None:
    """CREATE the mailbox and APPEND each message with LITERAL+ (no continuation)."""
    steps: list[Step] = [(f"f0 CREATE {mailbox}\r\n".encode(), [b"f0 OK CREATE completed"])]
    key = mailbox.lower().encode()
    for uid, message in enumerate(messages, start=1):
        steps.append((
            b"f%d APPEND %s {%d+}\r\n%s\r\n" % (uid, mailbox.encode(), len(message), message),
            [b"f%d OK [APPENDUID ${%s} %d] APPEND completed" % (uid, key, uid)],
        ))  # fmt: skip
    wire.run(steps)


# --- tests -------------------------------------------------------------------------------


def test_capabilities_starttls_and_login_failures(wires: Wires) -> None:
    """LOGINDISABLED until TLS, AUTH=PLAIN only between STARTTLS and LOGIN, and a wrong
    password or user is one indistinguishable AUTHENTICATIONFAILED (RFC 3501 6.2, RFC 5530)."""
    wire = wires.plain()
    before = b"* CAPABILITY " + CAPS + b" STARTTLS LOGINDISABLED"
    wire.run([
        (b"", [GREETING]),
        (b"c1 CAPABILITY\r\n", [before, b"c1 OK CAPABILITY completed"]),
        (b'c2 LOGIN alice@acme.example "%s"\r\n' % PASSWORD.encode(),
         [b"c2 NO [PRIVACYREQUIRED] use STARTTLS first"]),
        (b"c3 AUTHENTICATE PLAIN AGFsaWNlQGFjbWUuZXhhbXBsZQB4\r\n",
         [b"c3 NO [PRIVACYREQUIRED] use STARTTLS first"]),
        (b"c4 NOOP\r\n", [b"c4 OK NOOP completed"]),
    ])  # fmt: skip
    wire.starttls()
    wire.run([
        (b"c5 CAPABILITY\r\n", [b"* CAPABILITY " + CAPS + b" AUTH=PLAIN", b"c5 OK CAPABILITY completed"]),
        (b"c6 STARTTLS\r\n", [b"c6 BAD TLS is already active"]),
        (b'c7 LOGIN alice@acme.example "wrong password"\r\n',
         [b"c7 NO [AUTHENTICATIONFAILED] authentication failed"]),
        (b'c8 LOGIN nobody@acme.example "%s"\r\n' % PASSWORD.encode(),
         [b"c8 NO [AUTHENTICATIONFAILED] authentication failed"]),
        (b"c9 SELECT INBOX\r\n", [b"c9 BAD SELECT not allowed when not authenticated"]),
        (b'd1 LOGIN alice@acme.example "%s"\r\n' % PASSWORD.encode(),
         [b"d1 OK [CAPABILITY " + CAPS + b"] signed in"]),
        (b"d2 CAPABILITY\r\n", [b"* CAPABILITY " + CAPS, b"d2 OK CAPABILITY completed"]),
        (b'd3 LOGIN alice@acme.example "%s"\r\n' % PASSWORD.encode(),
         [b"d3 BAD LOGIN not allowed when authenticated"]),
    ])  # fmt: skip
    assert wire.number("appendlimit") == 36 * 1024 * 1024  # the SMTP message size limit
    logout(wire)


def test_malformed_commands_get_bad_and_the_connection_stays_usable(wires: Wires) -> None:
    """Grammar errors are answered BAD with the command's tag (or untagged when no tag could
    be read) and never end the session (RFC 3501 7.1.3)."""
    wire = wires.signed_in("alice")
    fill(wire, "Malformed", NOTE)
    wire.run([
        (b"a1 FETCH\r\n", [b"a1 BAD expected ' ', found ''"]),
        (b"a2 BOGUS\r\n", [b"a2 BAD unknown command BOGUS"]),
        (b"a3 FETCH 1 FLAGS\r\n", [b"a3 BAD FETCH not allowed when authenticated"]),
        (b"a4 UID LIST\r\n", [b"a4 BAD UID LIST is not a command"]),
        (b"* NOOP\r\n", [b"* BAD malformed command"]),
        (b'a5 SELECT "Malformed\r\n', [b"a5 BAD unterminated quoted string"]),
        select("a6", "Malformed", exists=1, uidnext=2, unseen=1),
        # unbalanced parentheses
        (b"b1 FETCH 1 (FLAGS UID\r\n", [b"b1 BAD expected ' ', found ''"]),
        (b"b2 FETCH 1 FLAGS)\r\n", [b"b2 BAD unexpected ')' at end of command"]),
        (b"b3 SEARCH (SEEN\r\n", [b"b3 BAD expected ' ', found ''"]),
        (b"b4 FETCH 1 BODY[1\r\n", [b"b4 BAD unterminated section"]),
        # bad sequence sets
        (b"c1 FETCH 1:x FLAGS\r\n", [b"c1 BAD expected a number"]),
        (b"c2 FETCH 0 FLAGS\r\n", [b"c2 BAD expected a non-zero number"]),
        (b"c3 FETCH 1,,2 FLAGS\r\n", [b"c3 BAD expected a number"]),
        (b"c4 FETCH 1:2:3 FLAGS\r\n", [b"c4 BAD expected ' ', found ':3 FLAGS'"]),
        (b"c5 FETCH 2 FLAGS\r\n", [b"c5 BAD message number out of range"]),
        (b"c6 FETCH 1 (FLAGS FROB)\r\n", [b"c6 BAD unknown FETCH item FROB"]),
        (b"c7 STORE 1 FLAGZ (\\Seen)\r\n", [b"c7 BAD expected FLAGS, +FLAGS or -FLAGS"]),
        (b"c8 SEARCH FROBNICATE\r\n", [b"c8 BAD unknown search key FROBNICATE"]),
        # still a working session; UIDs that do not exist are no error, unlike message numbers
        (b"d1 UID FETCH 1:* (UID FLAGS)\r\n", [b"* 1 FETCH (UID 1 FLAGS (\\Recent))", b"d1 OK FETCH completed"]),
        (b"d2 UID FETCH 5:7 FLAGS\r\n", [b"d2 OK FETCH completed"]),
        (b"d3 NOOP\r\n", [b"d3 OK NOOP completed"]),
    ])  # fmt: skip
    logout(wire)


def test_append_with_synchronising_literal_and_literal_plus(wires: Wires) -> None:
    """A synchronising literal waits for "+ " before the data; LITERAL+ ({n+}) sends it at
    once (RFC 7888). APPENDUID names the new UID (RFC 4315); a selected mailbox hears EXISTS
    before the tagged OK; a missing mailbox is TRYCREATE."""
    wire = wires.signed_in("bob")
    wire.run([
        (b"a1 CREATE Appended\r\n", [b"a1 OK CREATE completed"]),
        (b'a2 APPEND Appended (\\Seen $Work) "05-Nov-2026 10:30:00 +0100" {%d}\r\n'
         % len(MESSAGE), [b"+ Ready"]),
        (MESSAGE + b"\r\n", [b"a2 OK [APPENDUID ${appended} 1] APPEND completed"]),
        (b"a3 APPEND Appended {%d+}\r\n%s\r\n" % (len(NOTE), NOTE),
         [b"a3 OK [APPENDUID ${appended} 2] APPEND completed"]),
        (b"a4 APPEND Nowhere {%d+}\r\n%s\r\n" % (len(NOTE), NOTE),
         [b"a4 NO [TRYCREATE] no such mailbox"]),
        select("a5", "Appended", exists=2, uidnext=3, unseen=2, keywords=b" $Work"),
        (b"a6 APPEND Appended (\\Draft) {%d+}\r\n%s\r\n" % (len(NOTE), NOTE),
         [b"* 3 EXISTS", b"* 3 RECENT", b"a6 OK [APPENDUID ${appended} 3] APPEND completed"]),
        (b"a7 FETCH 1:* (UID FLAGS RFC822.SIZE)\r\n", [
            b"* 1 FETCH (UID 1 FLAGS ($Work \\Recent \\Seen) RFC822.SIZE 668)",
            b"* 2 FETCH (UID 2 FLAGS (\\Recent) RFC822.SIZE 36)",
            b"* 3 FETCH (UID 3 FLAGS (\\Draft \\Recent) RFC822.SIZE 36)",
            b"a7 OK FETCH completed",
        ]),
        (b"a8 FETCH 1:2 INTERNALDATE\r\n", [
            b'* 1 FETCH (INTERNALDATE "05-Nov-2026 09:30:00 +0000")',
            b"* 2 FETCH (INTERNALDATE ${date_now})",
            b"a8 OK FETCH completed",
        ]),
        (b"a9 UID FETCH 1 RFC822\r\n",
         [b"* 1 FETCH (UID 1 RFC822 {668}\r\n" + MESSAGE + b")", b"a9 OK FETCH completed"]),
        (b"b1 STATUS Appended (MESSAGES UIDNEXT UNSEEN)\r\n",
         [b'* STATUS "Appended" (MESSAGES 3 UIDNEXT 4 UNSEEN 2)', b"b1 OK STATUS completed"]),
    ])  # fmt: skip
    assert len(MESSAGE) == 668 and len(NOTE) == 36
    logout(wire)


def test_fetch_envelope_bodystructure_and_sections(wires: Wires) -> None:
    """FETCH of a known multipart: ENVELOPE keeps encoded words raw, BODYSTRUCTURE has exact
    octet and line counts, sections and partials cut the stored bytes (RFC 3501 6.4.5,
    7.4.2); BODY.PEEK leaves \\Seen alone, BODY[1] sets it and reports FLAGS."""
    wire = wires.signed_in("alice")
    fill(wire, "Content", MESSAGE, NOTE)
    envelope = (
        b'("Sat, 28 Nov 2026 10:00:00 +0100" "=?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=" '
        b'(("=?utf-8?q?Zo=C3=AB_M=C3=BCller?=" NIL "zoe" "remote.example")) '
        b'(("=?utf-8?q?Zo=C3=AB_M=C3=BCller?=" NIL "zoe" "remote.example")) '
        b'(("=?utf-8?q?Zo=C3=AB_M=C3=BCller?=" NIL "zoe" "remote.example")) '
        b'(("Bob" NIL "bob" "acme.example")(NIL NIL "carol" "acme.example")) '
        b'(("Ops, Team" NIL "ops" "acme.example")) NIL "<t0@acme.example>" "<t1@remote.example>")'
    )
    text_part = b'"TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" 42 2'
    attachment = b'"APPLICATION" "OCTET-STREAM" ("NAME" "n.bin") NIL NIL "BASE64" 4'
    wire.run([
        select("s1", "Content", exists=2, uidnext=3, unseen=1),
        (b"f1 FETCH 1 (FLAGS UID RFC822.SIZE)\r\n",
         [b"* 1 FETCH (FLAGS (\\Recent) UID 1 RFC822.SIZE 668)", b"f1 OK FETCH completed"]),
        (b"f2 FETCH 1 ENVELOPE\r\n", [b"* 1 FETCH (ENVELOPE " + envelope + b")", b"f2 OK FETCH completed"]),
        (b"f3 FETCH 1 BODYSTRUCTURE\r\n", [
            b"* 1 FETCH (BODYSTRUCTURE ((" + text_part + b" NIL NIL NIL NIL)(" + attachment
            + b' NIL ("ATTACHMENT" ("FILENAME" "n.bin")) NIL NIL) "MIXED" ("BOUNDARY" "b1") NIL NIL NIL))',
            b"f3 OK FETCH completed",
        ]),
        (b"f4 FETCH 1 BODY\r\n", [
            b"* 1 FETCH (BODY ((" + text_part + b")(" + attachment + b') "MIXED"))',
            b"f4 OK FETCH completed",
        ]),
        (b"f5 FETCH 2 BODYSTRUCTURE\r\n", [
            b'* 2 FETCH (BODYSTRUCTURE ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 19 1'
            b" NIL NIL NIL NIL))",
            b"f5 OK FETCH completed",
        ]),
        (b"f6 FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n", [
            b"* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {54}\r\n"
            b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\r\n\r\n)",
            b"f6 OK FETCH completed",
        ]),
        (b"f7 FETCH 1 FLAGS\r\n", [b"* 1 FETCH (FLAGS (\\Recent))", b"f7 OK FETCH completed"]),
        (b"f8 FETCH 1 BODY[1]\r\n", [
            b"* 1 FETCH (BODY[1] {42}\r\nGr=C3=BC=C3=9Fe aus K=C3=B6ln!\r\nZo=C3=AB\r\n FLAGS (\\Recent \\Seen))",
            b"f8 OK FETCH completed",
        ]),
        (b"f9 FETCH 1 (BODY[2] BODY[2.MIME])\r\n", [
            b"* 1 FETCH (BODY[2] {4}\r\nAAEC BODY[2.MIME] {142}\r\n"
            b'Content-Type: application/octet-stream; name="n.bin"\r\n'
            b'Content-Disposition: attachment; filename="n.bin"\r\n'
            b"Content-Transfer-Encoding: base64\r\n\r\n)",
            b"f9 OK FETCH completed",
        ]),
        (b"g1 FETCH 1 BODY[]<0.10>\r\n", [b"* 1 FETCH (BODY[]<0> {10}\r\nFrom: =?ut)", b"g1 OK FETCH completed"]),
        (b"g2 FETCH 2 BODY.PEEK[TEXT]<5.100>\r\n",
         [b"* 2 FETCH (BODY[TEXT]<5> {14}\r\nal plus body\r\n)", b"g2 OK FETCH completed"]),
        (b"g3 UID FETCH 2 (BODY.PEEK[HEADER] FLAGS)\r\n", [
            b"* 2 FETCH (UID 2 BODY[HEADER] {17}\r\nSubject: note\r\n\r\n FLAGS (\\Recent))",
            b"g3 OK FETCH completed",
        ]),
        (b"g4 FETCH 2 BODY.PEEK[3]\r\n", [b"* 2 FETCH (BODY[3] NIL)", b"g4 OK FETCH completed"]),
    ])  # fmt: skip
    logout(wire)


def test_store_flags_replies(wires: Wires) -> None:
    """STORE answers with the message's new FLAGS (keywords included), .SILENT answers
    nothing, UID STORE adds UID, and only messages whose flags changed are reported
    (RFC 3501 6.4.6)."""
    wire = wires.signed_in("bob")
    fill(wire, "Flags", NOTE, NOTE, NOTE)
    wire.run([
        select("s1", "Flags", exists=3, uidnext=4, unseen=1),
        (b"a1 STORE 1 +FLAGS (\\Flagged $Label1)\r\n",
         [SELECT_FLAGS[:-1] + b" $Label1)",  # a new keyword is announced before it is used
          PERMANENT_FLAGS.replace(b" \\*)", b" $Label1 \\*)"),
          b"* 1 FETCH (FLAGS ($Label1 \\Flagged \\Recent))", b"a1 OK STORE completed"]),
        (b"a2 STORE 1:2 +FLAGS (\\Seen)\r\n", [
            b"* 1 FETCH (FLAGS ($Label1 \\Flagged \\Recent \\Seen))",
            b"* 2 FETCH (FLAGS (\\Recent \\Seen))",
            b"a2 OK STORE completed",
        ]),
        (b"a3 STORE 1 -FLAGS (\\Flagged)\r\n",
         [b"* 1 FETCH (FLAGS ($Label1 \\Recent \\Seen))", b"a3 OK STORE completed"]),
        (b"a4 STORE 2 +FLAGS.SILENT (\\Answered)\r\n", [b"a4 OK STORE completed"]),
        (b"a5 STORE 1 -FLAGS.SILENT ($Label1)\r\n", [b"a5 OK STORE completed"]),
        (b"a6 FETCH 1:2 FLAGS\r\n", [
            b"* 1 FETCH (FLAGS (\\Recent \\Seen))",
            b"* 2 FETCH (FLAGS (\\Answered \\Recent \\Seen))",
            b"a6 OK FETCH completed",
        ]),
        (b"a7 STORE 2 FLAGS (\\Draft)\r\n", [b"* 2 FETCH (FLAGS (\\Draft \\Recent))", b"a7 OK STORE completed"]),
        (b"a8 UID STORE 3 +FLAGS \\Deleted\r\n",
         [b"* 3 FETCH (UID 3 FLAGS (\\Deleted \\Recent))", b"a8 OK STORE completed"]),
        (b"a9 STORE 1 +FLAGS (\\Seen)\r\n", [b"a9 OK STORE completed"]),
        (b"b1 STORE 4 +FLAGS (\\Seen)\r\n", [b"b1 BAD message number out of range"]),
        (b"b2 UID STORE 9 +FLAGS (\\Seen)\r\n", [b"b2 OK STORE completed"]),
    ])  # fmt: skip
    wire.run([
        (b"c1 EXAMINE Flags\r\n", [
            b"* OK [CLOSED] previous mailbox closed", SELECT_FLAGS, b"* OK [PERMANENTFLAGS ()] flags", b"* 3 EXISTS", b"* 0 RECENT",
            b"* OK [UIDVALIDITY ${flags}] UIDs valid", b"* OK [UIDNEXT 4] predicted next UID",
            b"* OK [HIGHESTMODSEQ ${flags_modseq2}] modification sequence",
            b"* OK [UNSEEN 2] first unseen", b"c1 OK [READ-ONLY] selected",
        ]),
        (b"c2 STORE 1 +FLAGS (\\Flagged)\r\n", [b"c2 NO [READ-ONLY] mailbox is read-only"]),
    ])  # fmt: skip
    assert wire.number("flags_modseq2") > wire.number("flags_modseq")
    logout(wire)


def test_search_uid_search_and_esearch(wires: Wires) -> None:
    """SEARCH answers message numbers, UID SEARCH UIDs, RETURN (...) one ESEARCH line with
    the tag (RFC 4731), CHARSET UTF-8 takes a literal, other charsets are BADCHARSET."""
    wire = wires.signed_in("alice")
    fill(wire, "Searched", MESSAGE, NOTE, NOTE, NOTE)
    wire.run([
        select("s1", "Searched", exists=4, uidnext=5, unseen=1),
        (b"a1 STORE 2:3 +FLAGS.SILENT (\\Deleted)\r\n", [b"a1 OK STORE completed"]),
        (b"a2 EXPUNGE\r\n", [b"* 3 EXPUNGE", b"* 2 EXPUNGE", b"a2 OK EXPUNGE completed"]),
        (b"a3 STORE 2 +FLAGS.SILENT (\\Seen)\r\n", [b"a3 OK STORE completed"]),
        (b"b1 SEARCH ALL\r\n", [b"* SEARCH 1 2", b"b1 OK SEARCH completed"]),
        (b"b2 UID SEARCH ALL\r\n", [b"* SEARCH 1 4", b"b2 OK SEARCH completed"]),
        (b"b3 SEARCH SEEN\r\n", [b"* SEARCH 2", b"b3 OK SEARCH completed"]),
        (b"b4 UID SEARCH UNSEEN\r\n", [b"* SEARCH 1", b"b4 OK SEARCH completed"]),
        (b"b5 SEARCH DELETED\r\n", [b"* SEARCH", b"b5 OK SEARCH completed"]),
        (b"b6 SEARCH SUBJECT note\r\n", [b"* SEARCH 2", b"b6 OK SEARCH completed"]),
        (b"b7 UID SEARCH OR FROM zoe LARGER 500\r\n", [b"* SEARCH 1", b"b7 OK SEARCH completed"]),
        (b"b8 SEARCH NOT (BODY literal)\r\n", [b"* SEARCH 1", b"b8 OK SEARCH completed"]),
        (b"b9 UID SEARCH UID 2:* SENTBEFORE 1-Jan-2000\r\n", [b"* SEARCH", b"b9 OK SEARCH completed"]),
        (b"c1 SEARCH CHARSET UTF-8 SUBJECT {7+}\r\nGr\xc3\xbc\xc3\x9fe\r\n",
         [b"* SEARCH 1", b"c1 OK SEARCH completed"]),
        (b"c2 UID SEARCH CHARSET UTF-8 TEXT {3}\r\n", [b"+ Ready"]),
        (b"K\xc3\xb6\r\n", [b"* SEARCH 1", b"c2 OK SEARCH completed"]),
        (b"c3 SEARCH CHARSET KOI8-R SUBJECT x\r\n",
         [b"c3 NO [BADCHARSET (UTF-8 US-ASCII)] charset koi8-r is not supported"]),
        (b"d1 UID SEARCH RETURN (MIN MAX COUNT) ALL\r\n",
         [b'* ESEARCH (TAG "d1") UID MIN 1 MAX 4 COUNT 2', b"d1 OK SEARCH completed"]),
        (b"d2 SEARCH RETURN () ALL\r\n", [b'* ESEARCH (TAG "d2") ALL 1:2', b"d2 OK SEARCH completed"]),
        (b"d3 UID SEARCH RETURN (ALL COUNT) 1:*\r\n",
         [b'* ESEARCH (TAG "d3") UID ALL 1,4 COUNT 2', b"d3 OK SEARCH completed"]),
        (b"d4 UID SEARCH RETURN (MIN COUNT) DELETED\r\n",
         [b'* ESEARCH (TAG "d4") UID COUNT 0', b"d4 OK SEARCH completed"]),
        (b"d5 SEARCH RETURN (BOGUS) ALL\r\n", [b"d5 BAD unknown RETURN option BOGUS"]),
    ])  # fmt: skip
    logout(wire)


def test_copy_move_and_expunge_with_uidplus(wires: Wires) -> None:
    """COPY answers COPYUID in the tagged OK, MOVE in an untagged OK before its EXPUNGEs
    (RFC 6851); EXPUNGE reports each removed message, UID EXPUNGE only the named ones
    (RFC 4315); a missing target is TRYCREATE."""
    wire = wires.signed_in("bob")
    fill(wire, "Source", NOTE, NOTE, NOTE, NOTE)
    wire.run([
        (b"a1 CREATE Target\r\n", [b"a1 OK CREATE completed"]),
        (b"a2 STATUS Target (UIDVALIDITY)\r\n",
         [b'* STATUS "Target" (UIDVALIDITY ${target})', b"a2 OK STATUS completed"]),
        select("a3", "Source", exists=4, uidnext=5, unseen=1),
        (b"b1 COPY 1:2 Target\r\n", [b"b1 OK [COPYUID ${target} 1:2 1:2] COPY completed"]),
        (b"b2 UID COPY 4,2 Target\r\n", [b"b2 OK [COPYUID ${target} 2,4 3:4] COPY completed"]),
        (b"b3 COPY 1 Nowhere\r\n", [b"b3 NO [TRYCREATE] no such mailbox"]),
        (b"b4 MOVE 2 Target\r\n",
         [b"* OK [COPYUID ${target} 2 5] moved", b"* 2 EXPUNGE", b"b4 OK MOVE completed"]),
        (b"b5 UID MOVE 4 Target\r\n",
         [b"* OK [COPYUID ${target} 4 6] moved", b"* 3 EXPUNGE", b"b5 OK MOVE completed"]),
        (b"b6 UID MOVE 99 Target\r\n", [b"b6 OK MOVE completed"]),
        (b"c1 STORE 1:2 +FLAGS.SILENT (\\Deleted)\r\n", [b"c1 OK STORE completed"]),
        (b"c2 UID EXPUNGE 3\r\n", [b"* 2 EXPUNGE", b"c2 OK EXPUNGE completed"]),
        (b"c3 EXPUNGE\r\n", [b"* 1 EXPUNGE", b"c3 OK EXPUNGE completed"]),
        (b"c4 EXPUNGE\r\n", [b"c4 OK EXPUNGE completed"]),
        (b"c5 STATUS Target (MESSAGES UIDNEXT)\r\n",
         [b'* STATUS "Target" (MESSAGES 6 UIDNEXT 7)', b"c5 OK STATUS completed"]),
        select("c6", "Target", exists=6, uidnext=7, unseen=1, closed=True),
        (b"c7 STORE 1:* +FLAGS.SILENT (\\Deleted)\r\n", [b"c7 OK STORE completed"]),
        (b"c8 CLOSE\r\n", [b"c8 OK CLOSE completed"]),
        (b"c9 STATUS Target (MESSAGES)\r\n", [b'* STATUS "Target" (MESSAGES 0)', b"c9 OK STATUS completed"]),
    ])  # fmt: skip
    logout(wire)


def test_second_session_sees_exists_expunge_and_idle_wakes(wires: Wires) -> None:
    """Changes made by one session reach another as untagged EXISTS, EXPUNGE and FETCH at
    its next command, and at once while it IDLEs (RFC 3501 7.3.1/7.4.1, RFC 2177)."""
    first, second = wires.signed_in("alice"), wires.signed_in("alice")
    first.run([
        (b"a1 CREATE Together\r\n", [b"a1 OK CREATE completed"]),
        select("a2", "Together", exists=0, uidnext=1),
    ])  # fmt: skip
    second.run([select("b1", "Together", exists=0, uidnext=1)])
    first.run([
        # The first session to hear of a message is told it is recent; the other is not.
        (b"a3 APPEND Together {%d+}\r\n%s\r\n" % (len(NOTE), NOTE),
         [b"* 1 EXISTS", b"* 1 RECENT", b"a3 OK [APPENDUID ${together} 1] APPEND completed"]),
        (b"a4 APPEND Together (\\Seen) {%d+}\r\n%s\r\n" % (len(NOTE), NOTE),
         [b"* 2 EXISTS", b"* 2 RECENT", b"a4 OK [APPENDUID ${together} 2] APPEND completed"]),
    ])  # fmt: skip
    second.run([(b"b2 NOOP\r\n", [b"* 2 EXISTS", b"* 0 RECENT", b"b2 OK NOOP completed"])])
    first.run([
        (b"a5 STORE 1 +FLAGS.SILENT (\\Deleted)\r\n", [b"a5 OK STORE completed"]),
        (b"a6 EXPUNGE\r\n", [b"* 1 EXPUNGE", b"a6 OK EXPUNGE completed"]),
    ])  # fmt: skip
    second.run([
        # FETCH must not renumber (RFC 3501 7.4.1): the EXPUNGE waits for NOOP.
        (b"b3 FETCH 2 (UID FLAGS)\r\n", [b"* 2 FETCH (UID 2 FLAGS (\\Seen))", b"b3 OK FETCH completed"]),
        (b"b4 NOOP\r\n", [b"* 1 EXPUNGE", b"b4 OK NOOP completed"]),
        (b"b5 FETCH 1 (UID)\r\n", [b"* 1 FETCH (UID 2)", b"b5 OK FETCH completed"]),
        (b"b6 IDLE\r\n", [b"+ idling"]),
    ])  # fmt: skip
    first.run([
        (b"a7 APPEND Together {%d+}\r\n%s\r\n" % (len(NOTE), NOTE),
         [b"* 2 EXISTS", b"* ${recent_first} RECENT",
          b"a7 OK [APPENDUID ${together} 3] APPEND completed"]),
    ])  # fmt: skip
    appended = time.monotonic()
    second.run([(b"", [b"* 2 EXISTS", b"* ${recent_second} RECENT"])])
    assert time.monotonic() - appended < 1.0
    # Both heard of it at once: exactly one of them is told it is recent (RFC 3501 2.3.2).
    assert first.number("recent_first") - 1 + first.number("recent_second") == 1
    first.run([(b"a8 STORE 1 +FLAGS (\\Flagged)\r\n",
                [b"* 1 FETCH (FLAGS (\\Flagged \\Recent \\Seen))", b"a8 OK STORE completed"])])  # fmt: skip
    second.run([
        (b"", [b"* 1 FETCH (UID 2 FLAGS (\\Flagged \\Seen))"]),
        (b"DONE\r\n", [b"b6 OK IDLE terminated"]),
        (b"b7 IDLE\r\n", [b"+ idling"]),
        (b"NOT DONE\r\n", [b"b7 BAD expected DONE"]),
        (b"b8 NOOP\r\n", [b"b8 OK NOOP completed"]),
    ])  # fmt: skip
    logout(first)
    logout(second)


def test_oversized_literal_is_refused_before_it_is_sent(wires: Wires) -> None:
    """A synchronising literal over the advertised APPENDLIMIT gets NO [TOOBIG] instead of
    "+ ", so the client never sends the data (RFC 7889); the session goes on."""
    wire = wires.signed_in("bob")
    limit = wire.number("appendlimit")
    over = limit + 1
    wire.run([
        (b"a1 APPEND INBOX {%d}\r\n" % over,
         [b"a1 NO [TOOBIG] literal of %d octets is over the limit" % over]),
        (b"a2 APPEND INBOX {99999999999}\r\n",
         [b"a2 NO [TOOBIG] literal of 99999999999 octets is over the limit"]),
        (b"a3 NOOP\r\n", [b"a3 OK NOOP completed"]),
        (b"a4 STATUS INBOX (MESSAGES)\r\n", [b'* STATUS "INBOX" (MESSAGES 0)', b"a4 OK STATUS completed"]),
    ])  # fmt: skip
    logout(wire)


def test_list_namespace_quota_id_and_enable(wires: Wires) -> None:
    """The mailbox list with special-use attributes and modified UTF-7 names, and the small
    informational commands, exactly."""
    wire = wires.signed_in("bob")
    wire.run([
        (b"a1 CREATE Projekte/Entw&APw-rfe\r\n", [b"a1 OK CREATE completed"]),
        (b'a2 LIST "" (INBOX Sent Drafts Trash Junk Archive Projekte*)\r\n', [
            b'* LIST (\\HasNoChildren) "/" "INBOX"',  # INBOX first, then by name
            b'* LIST (\\HasNoChildren \\Archive) "/" "Archive"',
            b'* LIST (\\HasNoChildren \\Drafts) "/" "Drafts"',
            b'* LIST (\\HasNoChildren \\Junk) "/" "Junk"',
            b'* LIST (\\HasChildren) "/" "Projekte"',
            b'* LIST (\\HasNoChildren) "/" "Projekte/Entw&APw-rfe"',
            b'* LIST (\\HasNoChildren \\Sent) "/" "Sent"',
            b'* LIST (\\HasNoChildren \\Trash) "/" "Trash"',
            b"a2 OK LIST completed",
        ]),
        (b'a3 LIST "" ""\r\n', [b'* LIST (\\Noselect) "/" ""', b"a3 OK LIST completed"]),
        (b'a4 LIST "Projekte/" %\r\n',
         [b'* LIST (\\HasNoChildren) "/" "Projekte/Entw&APw-rfe"', b"a4 OK LIST completed"]),
        (b"a5 NAMESPACE\r\n", [b'* NAMESPACE (("" "/")) NIL NIL', b"a5 OK NAMESPACE completed"]),
        (b"a6 GETQUOTAROOT INBOX\r\n",
         [b'* QUOTAROOT "INBOX" ""', b'* QUOTA "" ()', b"a6 OK GETQUOTAROOT completed"]),
        (b"a7 ID NIL\r\n", [b'* ID ("name" "Enclave" "version" "${version}")', b"a7 OK ID completed"]),
        (b"a8 ENABLE CONDSTORE\r\n", [b"* ENABLED CONDSTORE", b"a8 OK ENABLE completed"]),
        (b"a9 ENABLE UTF8=ACCEPT\r\n", [b"a9 OK ENABLE completed"]),
    ])  # fmt: skip
    logout(wire)


def test_commands_sent_with_starttls_are_not_run_inside_tls(wires: Wires) -> None:
    """Plain-text bytes that follow STARTTLS in the same packet are dropped, not run after the
    handshake as if the client had sent them over TLS (the CVE-2011-0411 command injection;
    RFC 2595 3.1)."""
    wire = wires.plain()
    wire.run([(b"", [GREETING])])
    wire.starttls(b"t1 STARTTLS\r\nx1 CAPABILITY\r\n")
    wire.run([(b"x2 NOOP\r\n", [b"x2 OK NOOP completed"])])
    logout(wire)


def test_condstore_uid_store_unchangedsince_and_changedsince(wires: Wires) -> None:
    """With CONDSTORE enabled, UID STORE reports UID and MODSEQ, UNCHANGEDSINCE refuses a
    stale change with [MODIFIED], CHANGEDSINCE returns only newer messages (RFC 7162)."""
    wire = wires.signed_in("bob")
    fill(wire, "Resync", NOTE, NOTE, NOTE)
    wire.run([
        (b"a1 ENABLE CONDSTORE\r\n", [b"* ENABLED CONDSTORE", b"a1 OK ENABLE completed"]),
        select("a2", "Resync", exists=3, uidnext=4, unseen=1),
    ])  # fmt: skip
    base = wire.number("resync_modseq")
    wire.run([
        (b"a3 UID STORE 2 (UNCHANGEDSINCE %d) +FLAGS (\\Seen)\r\n" % base,
         [b"* 2 FETCH (UID 2 FLAGS (\\Recent \\Seen) MODSEQ (${m2}))", b"a3 OK STORE completed"]),
        (b"a4 UID STORE 2:3 (UNCHANGEDSINCE %d) +FLAGS (\\Flagged)\r\n" % base,
         [b"* 3 FETCH (UID 3 FLAGS (\\Flagged \\Recent) MODSEQ (${m3}))",
          b"a4 OK [MODIFIED 2] some messages changed meanwhile"]),
        (b"a5 UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)\r\n" % base, [
            b"* 2 FETCH (UID 2 FLAGS (\\Recent \\Seen) MODSEQ (${m2}))",
            b"* 3 FETCH (UID 3 FLAGS (\\Flagged \\Recent) MODSEQ (${m3}))",
            b"a5 OK FETCH completed",
        ]),
    ])  # fmt: skip
    newest = wire.number("m3")
    wire.run([
        (b"a6 UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)\r\n" % newest, [b"a6 OK FETCH completed"]),
        (b"a7 STATUS Resync (HIGHESTMODSEQ)\r\n",
         [b'* STATUS "Resync" (HIGHESTMODSEQ %d)' % newest, b"a7 OK STATUS completed"]),
    ])  # fmt: skip
    assert base < wire.number("m2") < newest
    logout(wire)


# --- RFC corners: CONDSTORE enabling, LIST (SPECIAL-USE), failed DELETE, \Noselect --------


@pytest.mark.parametrize("enabling", ["ENABLE before SELECT", "ENABLE", "SEARCH", "STATUS"])
def test_store_after_a_condstore_enabling_command_reports_uid_and_modseq(
    wires: Wires, enabling: str
) -> None:
    """A client that enabled CONDSTORE tracks messages by UID and MODSEQ from then on."""
    box = f"Enabled{enabling.split()[0].title()}{len(enabling)}".encode()
    command: Step = {
        "ENABLE": (b"e1 ENABLE CONDSTORE\r\n", [b"* ENABLED CONDSTORE", b"e1 OK ENABLE completed"]),
        "SEARCH": (b"e1 SEARCH MODSEQ 1\r\n",
                   [b"* SEARCH 1 (MODSEQ ${highest})", b"e1 OK SEARCH completed"]),
        "STATUS": (b"e1 STATUS %s (HIGHESTMODSEQ)\r\n" % box,
                   [b'* STATUS "%s" (HIGHESTMODSEQ ${highest})' % box, b"e1 OK STATUS completed"]),
    }[enabling.split()[0]]  # fmt: skip
    steps = [select("a1", box.decode(), exists=1, uidnext=2, unseen=1), command]
    if enabling.endswith("before SELECT"):
        steps.reverse()
    else:  # enabled in the selected state: told the mailbox's HIGHESTMODSEQ first (7162 3.1)
        steps[1] = (command[0], [b"* OK [HIGHESTMODSEQ ${highest0}] now", *command[1]])
    wire = wires.signed_in("alice")
    fill(wire, box.decode(), NOTE)
    wire.run([
        *steps,
        (b"a2 STORE 1 +FLAGS (\\Flagged)\r\n",
         [b"* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent) MODSEQ (${changed}))", b"a2 OK STORE completed"]),
    ])  # fmt: skip
    assert wire.number("changed") > wire.number(f"{box.decode().lower()}_modseq")
    logout(wire)


def test_list_special_use_selection_returns_only_special_use_mailboxes(wires: Wires) -> None:
    """LIST (SPECIAL-USE) is how a client finds Sent, Drafts... without listing everything."""
    wire = wires.signed_in("bob")
    wire.run([
        (b'a1 LIST (SPECIAL-USE) "" *\r\n', [
            b'* LIST (${attrs_archive}) "/" "Archive"',
            b'* LIST (${attrs_drafts}) "/" "Drafts"',
            b'* LIST (${attrs_junk}) "/" "Junk"',
            b'* LIST (${attrs_sent}) "/" "Sent"',
            b'* LIST (${attrs_trash}) "/" "Trash"',
            b"a1 OK LIST completed",
        ]),
    ])  # fmt: skip
    for name in ("archive", "drafts", "junk", "sent", "trash"):
        assert f"\\{name.title()}".encode() in wire.values[f"attrs_{name}"].split()
    logout(wire)


def test_failed_delete_of_the_selected_mailbox_keeps_it_selected(wires: Wires) -> None:
    """A client that was told NO still believes its mailbox is selected, and must be right."""
    wire = wires.signed_in("alice")
    wire.run([
        (b"a1 EXAMINE INBOX\r\n", [
            SELECT_FLAGS, b"* OK [PERMANENTFLAGS ()] flags", b"* ${exists} EXISTS",
            b"* 0 RECENT", b"* OK [UIDVALIDITY ${inbox}] UIDs valid",
            b"* OK [UIDNEXT ${uidnext}] predicted next UID",
            b"* OK [HIGHESTMODSEQ ${modseq}] modification sequence",
            b"a1 OK [READ-ONLY] selected",
        ]),
        (b"a2 DELETE INBOX\r\n", [b"a2 NO [CANNOT] INBOX cannot be deleted"]),
        (b"a3 CHECK\r\n", [b"a3 OK CHECK completed"]),
    ])  # fmt: skip
    logout(wire)


def test_deleting_a_parent_leaves_a_noselect_name(wires: Wires) -> None:
    """The child stays reachable in the hierarchy a client walks with % patterns."""
    wire = wires.signed_in("bob")
    wire.run([
        (b"a1 CREATE Parent/Child\r\n", [b"a1 OK CREATE completed"]),
        (b"a2 DELETE Parent\r\n", [b"a2 OK DELETE completed"]),
        (b'a3 LIST "" Parent*\r\n', [
            b'* LIST (${attrs_parent}) "/" "Parent"',
            b'* LIST (\\HasNoChildren) "/" "Parent/Child"',
            b"a3 OK LIST completed",
        ]),
    ])  # fmt: skip
    assert b"\\Noselect" in wire.values["attrs_parent"].split()
    logout(wire)
