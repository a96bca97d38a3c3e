"""IMAP views of one message on byte strings: ENVELOPE, BODYSTRUCTURE, BODY[section].

Expected bytes were checked against Dovecot 2.3 (Debian's dovecot-imapd) on the same
fixtures; where the two differ on purpose the test says so. Dovecot sends type names in the
case they were sent and "us-ascii" for the default charset; these send them upper-cased.
"""

from __future__ import annotations

import base64
import random
from email import message_from_bytes
from email.message import Message as EmailMessage
from email.policy import compat32
from itertools import takewhile

import pytest

from enclave.imap.wire.message import MAX_DEPTH, Message

CRLF = b"\r\n"


def msg(*lines: bytes) -> bytes:
    """The lines, each ended by CRLF."""
    return b"".join(line + CRLF for line in lines)


def text_of(octets: int, lines: int, alphabet: bytes = b"minutes of the meeting ") -> bytes:
    """A body of exactly ``octets`` octets in ``lines`` CRLF-ended lines."""
    content = octets - 2 * lines
    width = content // lines
    rows = [(alphabet * (width // len(alphabet) + 1))[:width] for _ in range(lines - 1)]
    last = content - width * (lines - 1)
    rows.append((alphabet * (last // len(alphabet) + 1))[:last])
    body = msg(*rows)
    assert len(body) == octets and body.count(b"\n") == lines
    return body


# --- RFC 3501's own examples -------------------------------------------------------------

# Section 6.3.11, the APPEND example: a literal of 310 octets.
RFC3501_APPEND = msg(
    b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)",
    b"From: Fred Foobar <foobar@Blurdybloop.COM>",
    b"Subject: afternoon meeting",
    b"To: mooch@owatagu.siam.edu",
    b"Message-Id: <B27397-0100000@Blurdybloop.COM>",
    b"MIME-Version: 1.0",
    b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII",
    b"",
    b"Hello Joe, do you think we can meet at 3:30 tomorrow?",
)

# Section 8: BODY[HEADER] is {342}; the BODY says 3028 octets in 92 lines.
RFC3501_SAMPLE_HEADER = msg(
    b"Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)",
    b"From: Terry Gray <gray@cac.washington.edu>",
    b"Subject: IMAP4rev1 WG mtg summary and minutes",
    b"To: imap@cac.washington.edu",
    b"cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>",
    b"Message-Id: <B27397-0100000@cac.washington.edu>",
    b"MIME-Version: 1.0",
    b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII",
    b"",
)
RFC3501_SAMPLE = RFC3501_SAMPLE_HEADER + text_of(3028, 92)

# Section 7.4.2: "a simple text message of 48 lines and 2279 octets".
RFC3501_SIMPLE = msg(
    b"Subject: simple", b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII", b""
) + text_of(2279, 48)


def _cc_diff_base64() -> bytes:
    """73 lines, 4554 octets of base64 (7 lines of 64 characters, 66 of 60)."""
    diff = b"--- cc.c\n+++ cc.c\n@@ -1,3 +1,3 @@\n-int x;\n+long x;\n"
    data = base64.b64encode((diff * 100)[:3306])
    widths = [64] * 7 + [60] * 66
    rows, pos = [], 0
    for width in widths:
        rows.append(data[pos : pos + width])
        pos += width
    assert pos == len(data)
    return msg(*rows)


# Section 7.4.2: the two-part example, a text and a BASE64-encoded text attachment.
RFC3501_TWO_PARTS = (
    msg(
        b"From: Terry Gray <gray@cac.washington.edu>",
        b"Subject: the compiler diff",
        b"MIME-Version: 1.0",
        b'Content-Type: MULTIPART/MIXED; BOUNDARY="frontier"',
        b"",
        b"--frontier",
        b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII",
        b"",
    )
    + text_of(1152, 23)
    + msg(
        b"",  # the line break before a boundary belongs to the boundary
        b"--frontier",
        b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII; NAME=cc.diff",
        b"Content-ID: <960723163407.20117h@cac.washington.edu>",
        b"Content-Description: Compiler diff",
        b"Content-Transfer-Encoding: BASE64",
        b"",
    )
    + _cc_diff_base64()
    + msg(b"", b"--frontier--")
)


def test_rfc3501_append_example() -> None:
    message = Message(RFC3501_APPEND)
    assert message.size == 310
    assert message.envelope() == (
        b'("Mon, 7 Feb 1994 21:52:25 -0800 (PST)" "afternoon meeting" '
        b'(("Fred Foobar" NIL "foobar" "Blurdybloop.COM")) '
        b'(("Fred Foobar" NIL "foobar" "Blurdybloop.COM")) '
        b'(("Fred Foobar" NIL "foobar" "Blurdybloop.COM")) '
        b'((NIL NIL "mooch" "owatagu.siam.edu")) NIL NIL NIL '
        b'"<B27397-0100000@Blurdybloop.COM>")'
    )
    assert message.bodystructure() == (
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 55 1 NIL NIL NIL NIL)'
    )


def test_rfc3501_sample_session() -> None:
    message = Message(RFC3501_SAMPLE)
    assert message.envelope() == (
        b'("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" '
        b'"IMAP4rev1 WG mtg summary and minutes" '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'((NIL NIL "imap" "cac.washington.edu")) '
        b'((NIL NIL "minutes" "CNRI.Reston.VA.US")'
        b'("John Klensin" NIL "KLENSIN" "MIT.EDU")) NIL NIL '
        b'"<B27397-0100000@cac.washington.edu>")'
    )
    assert message.bodystructure(extended=False) == (
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92)'
    )
    header = message.section("HEADER")
    assert header == RFC3501_SAMPLE_HEADER and header is not None and len(header) == 342


def test_rfc3501_simple_text_example() -> None:
    assert Message(RFC3501_SIMPLE).bodystructure(extended=False) == (
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 2279 48)'
    )


def test_rfc3501_two_part_example() -> None:
    message = Message(RFC3501_TWO_PARTS)
    assert message.bodystructure(extended=False) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1152 23)'
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "NAME" "cc.diff") '
        b'"<960723163407.20117h@cac.washington.edu>" "Compiler diff" "BASE64" 4554 73) "MIXED")'
    )
    assert message.bodystructure() == (
        b'(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1152 23 NIL NIL NIL NIL)'
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "NAME" "cc.diff") '
        b'"<960723163407.20117h@cac.washington.edu>" "Compiler diff" "BASE64" 4554 73 '
        b'NIL NIL NIL NIL) "MIXED" ("BOUNDARY" "frontier") NIL NIL NIL)'
    )
    assert message.section("2") == _cc_diff_base64()


# --- plain messages and the defaults -----------------------------------------------------

PLAIN = msg(
    b"Date: Tue, 3 Nov 2026 09:15:00 +0100",
    b'From: "Alice Example" <alice@example.org>',
    b"Sender: Bulk Sender <bulk@lists.example.org>",
    b"Reply-To: alice+replies@example.org",
    b"To: Bob <bob@example.net>, carol@example.com",
    b'Cc: "Dan, the Man" <dan@example.com>',
    b"Bcc: eve@example.com (Eve)",
    b"Subject: Lunch on Friday?",
    b"In-Reply-To: <previous@example.net>",
    b"Message-ID: <lunch-1@example.org>",
    b"MIME-Version: 1.0",
    b"Content-Type: text/plain; charset=us-ascii",
    b"",
    b"Shall we meet at noon?",
    b"Alice",
)

NO_CONTENT_TYPE = msg(
    b"From: root@example.org",
    b"To: admin@example.org",
    b"Subject: cron",
    b"",
    b"backup done",
    b"",
    b"3 files",
)


def test_plain_message() -> None:
    message = Message(PLAIN)
    assert message.size == len(PLAIN)
    assert message.envelope() == (
        b'("Tue, 3 Nov 2026 09:15:00 +0100" "Lunch on Friday?" '
        b'(("Alice Example" NIL "alice" "example.org")) '
        b'(("Bulk Sender" NIL "bulk" "lists.example.org")) '
        b'((NIL NIL "alice+replies" "example.org")) '
        b'(("Bob" NIL "bob" "example.net")(NIL NIL "carol" "example.com")) '
        b'(("Dan, the Man" NIL "dan" "example.com")) '
        b'(("Eve" NIL "eve" "example.com")) '
        b'"<previous@example.net>" "<lunch-1@example.org>")'
    )
    body = b"Shall we meet at noon?\r\nAlice\r\n"
    assert PLAIN.endswith(CRLF + body)
    assert message.bodystructure() == (
        b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" %d 2 NIL NIL NIL NIL)' % len(body)
    )
    assert message.bodystructure(extended=False) == (
        b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" %d 2)' % len(body)
    )


def test_message_without_content_type_is_us_ascii_text() -> None:
    message = Message(NO_CONTENT_TYPE)
    body = b"backup done\r\n\r\n3 files\r\n"
    assert message.bodystructure() == (
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" %d 3 NIL NIL NIL NIL)' % len(body)
    )
    # Sender and Reply-To are absent: both are From (RFC 3501 section 7.4.2).
    assert message.envelope() == (
        b'(NIL "cron" ((NIL NIL "root" "example.org")) ((NIL NIL "root" "example.org")) '
        b'((NIL NIL "root" "example.org")) ((NIL NIL "admin" "example.org")) NIL NIL NIL NIL)'
    )


# --- transfer encodings, extension data --------------------------------------------------

QUOTED_PRINTABLE_BODY = msg(b"Gr=C3=BC=C3=9Fe aus M=C3=BCnchen,=20", b"sch=C3=B6ne Tage!")
QUOTED_PRINTABLE = (
    msg(
        b"From: a@example.org",
        b"Subject: qp",
        b"MIME-Version: 1.0",
        b'Content-Type: text/plain; charset="utf-8"; format=flowed',
        b"Content-Transfer-Encoding: quoted-printable",
        b"Content-Language: de",
        b"",
    )
    + QUOTED_PRINTABLE_BODY
)

PNG = base64.b64encode(bytes(range(256)))
BASE64_BODY = msg(PNG[:76], PNG[76:152], PNG[152:228], PNG[228:304], PNG[304:])
BASE64 = (
    msg(
        b"From: a@example.org",
        b"Subject: a picture",
        b"Content-Type: image/png; name=dot.png",
        b"Content-Transfer-Encoding: base64",
        b"Content-Disposition: inline; filename=dot.png",
        b"Content-ID: <dot@example.org>",
        b"Content-Description: a dot",
        b"Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==",
        b"Content-Location: http://example.org/dot.png",
        b"",
    )
    + BASE64_BODY
)


def test_quoted_printable_part() -> None:
    assert Message(QUOTED_PRINTABLE).bodystructure() == (
        b'("TEXT" "PLAIN" ("CHARSET" "utf-8" "FORMAT" "flowed") NIL NIL "QUOTED-PRINTABLE" '
        b'%d 2 NIL NIL ("de") NIL)' % len(QUOTED_PRINTABLE_BODY)
    )


def test_base64_part_has_no_line_count_and_full_extension_data() -> None:
    message = Message(BASE64)
    assert message.bodystructure() == (
        b'("IMAGE" "PNG" ("NAME" "dot.png") "<dot@example.org>" "a dot" "BASE64" %d '
        b'"Q2hlY2sgSW50ZWdyaXR5IQ==" ("INLINE" ("FILENAME" "dot.png")) NIL '
        b'"http://example.org/dot.png")' % len(BASE64_BODY)
    )
    assert message.bodystructure(extended=False) == (
        b'("IMAGE" "PNG" ("NAME" "dot.png") "<dot@example.org>" "a dot" "BASE64" %d)'
        % len(BASE64_BODY)
    )
    assert message.section("1") == BASE64_BODY == message.section("TEXT")


# --- header values: encoded words, 8-bit, groups, odd addresses --------------------------

I18N = msg(
    b"From: =?utf-8?q?J=C3=B6rg?= <joerg@example.de>",
    b"To: Zo\xc3\xab <zoe@example.fr>",
    b"Subject: =?utf-8?B?R3LDvMOfZQ==?=",
    b"",
    b"hallo",
)

EIGHT_BIT_SUBJECT = msg(
    b"From: a@example.org",
    b'Subject: Gr\xc3\xbc\xc3\x9fe "aus" M\xc3\xbcnchen',
    b"",
    b"x",
)

GROUPS = msg(
    b"From: Team Lead <lead@example.org>",
    b"To: undisclosed-recipients:;",
    b'Cc: Project Team: ann@example.org, "Bo Bo" <bo@example.org>;, outsider@example.net',
    b"Bcc: Empty Group:;",
    b"",
    b"x",
)

ODD_ADDRESSES = msg(
    b"From: Name <@relay1.example,@relay2.example:user@example.org>",
    b'To: "" <a@example.org>, x@[192.0.2.1], "quoted local"@example.org,',
    b"  a.b@example.org (comment (nested)), John Q. Public <jqp@example.org>",
    b'Cc: "Say \\"hi\\"" <hi@example.org>, nodomain, garbage <<>>',
    b"Sender:",
    b"Subject:",
    b"Date: Tue, 3 Nov 2026",
    b"\t09:15:00 +0100  ",
    b"Message-ID:   <id@example.org>  (comment)",
    b"",
    b"x",
)


def test_encoded_words_stay_encoded_and_8bit_becomes_a_literal() -> None:
    assert Message(I18N).envelope() == (
        b'(NIL "=?utf-8?B?R3LDvMOfZQ==?=" '
        b'(("=?utf-8?q?J=C3=B6rg?=" NIL "joerg" "example.de")) '
        b'(("=?utf-8?q?J=C3=B6rg?=" NIL "joerg" "example.de")) '
        b'(("=?utf-8?q?J=C3=B6rg?=" NIL "joerg" "example.de")) '
        b'(({4}\r\nZo\xc3\xab NIL "zoe" "example.fr")) NIL NIL NIL NIL)'
    )
    subject = b'Gr\xc3\xbc\xc3\x9fe "aus" M\xc3\xbcnchen'
    assert Message(EIGHT_BIT_SUBJECT).envelope() == (
        b'(NIL {%d}\r\n%s ((NIL NIL "a" "example.org")) ((NIL NIL "a" "example.org")) '
        b'((NIL NIL "a" "example.org")) NIL NIL NIL NIL NIL)' % (len(subject), subject)
    )


def test_group_syntax() -> None:
    assert Message(GROUPS).envelope() == (
        b'(NIL NIL (("Team Lead" NIL "lead" "example.org")) '
        b'(("Team Lead" NIL "lead" "example.org")) (("Team Lead" NIL "lead" "example.org")) '
        b'((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) '
        b'((NIL NIL "Project Team" NIL)(NIL NIL "ann" "example.org")'
        b'("Bo Bo" NIL "bo" "example.org")(NIL NIL NIL NIL)(NIL NIL "outsider" "example.net")) '
        b'((NIL NIL "Empty Group" NIL)(NIL NIL NIL NIL)) NIL NIL)'
    )


def test_odd_addresses_and_unfolding() -> None:
    # Empty Sender falls back to From; empty Subject is "" (not NIL); folded Date is unfolded
    # (CRLF removed, white space kept: the tab makes it a literal, where Dovecot turns it into
    # a space); the quoted name is escaped, not a literal as in Dovecot.
    name = b'(("Name" "@relay1.example,@relay2.example" "user" "example.org"))'
    assert Message(ODD_ADDRESSES).envelope() == (
        b'({32}\r\nTue, 3 Nov 2026\t09:15:00 +0100   "" ' + name + b" " + name + b" " + name + b" "
        b'((NIL NIL "a" "example.org")(NIL NIL "x" "[192.0.2.1]")'
        b'(NIL NIL "quoted local" "example.org")("comment (nested)" NIL "a.b" "example.org")'
        b'("John Q. Public" NIL "jqp" "example.org")) '
        b'(("Say \\"hi\\"" NIL "hi" "example.org")(NIL NIL "nodomain" "MISSING_DOMAIN")'
        b'("garbage" NIL "MISSING_MAILBOX" "SYNTAX_ERROR")) '
        b'NIL NIL "<id@example.org>  (comment)")'
    )


def test_empty_list_members_are_skipped() -> None:
    # Dovecot sends an invalid-address placeholder for each empty member; these skip them.
    raw = msg(b"From: a@example.org", b"To: ,, b@example.org ,", b"Cc: ,", b"", b"x")
    envelope = Message(raw).envelope()
    assert b'((NIL NIL "b" "example.org")) NIL NIL' in envelope


def test_repeated_fields_follow_dovecot() -> None:
    raw = msg(
        b"Subject: one",
        b"Subject: two",
        b"From: a@example.org",
        b"From: d@example.org",
        b"Content-Type: text/html",
        b"Content-Type: image/gif",
        b"",
        b"x",
    )
    message = Message(raw)
    # ENVELOPE: the last string field, every address field; MIME: the first field.
    assert message.envelope().startswith(
        b'(NIL "two" ((NIL NIL "a" "example.org")(NIL NIL "d" "example.org")) '
    )
    assert message.bodystructure().startswith(b'("TEXT" "HTML" ("CHARSET" "US-ASCII")')


def test_long_and_nul_values_become_literals() -> None:
    subject = b"x" * 2000
    envelope = Message(msg(b"Subject: " + subject, b"", b"b")).envelope()
    assert envelope == b"(NIL {2000}\r\n" + subject + b" NIL NIL NIL NIL NIL NIL NIL NIL)"
    # NUL is not a CHAR8: as in Dovecot, it is sent as U+FFFD.
    envelope = Message(msg(b"Subject: a\x00b", b"", b"b")).envelope()
    assert envelope.startswith(b"(NIL {5}\r\na\xef\xbf\xbdb NIL")


# --- a realistic multipart: alternative inside mixed, attachment, forwarded message ------

PLAIN_BODY = msg(b"Hi Bob,", b"the numbers are attached. Caf=C3=A9 at 3?")
HTML_BODY = msg(b"<p>Hi Bob,</p>", b"<p>the numbers are attached. Caf=C3=A9 at 3?</p>")
PDF_BODY = msg(
    base64.b64encode(b"%PDF-1.4\n% a tiny report, not a real PDF\n" * 3)[:76],
    base64.b64encode(b"%%EOF\n"),
)
FORWARDED_HEADER = msg(
    b"From: Carol <carol@example.com>",
    b"To: alice@example.org",
    b"Subject: =?utf-8?q?F=C3=BCr_dich?=",
    b"Date: Mon, 2 Nov 2026 18:00:00 +0000",
    b"Message-ID: <fwd@example.com>",
    b"",
)
FORWARDED_BODY = msg(b"Original text,", b"two lines.")
FORWARDED = FORWARDED_HEADER + FORWARDED_BODY
ALTERNATIVE_HEADER = msg(b'Content-Type: multipart/alternative; boundary="inner"', b"")
PLAIN_MIME = msg(
    b"Content-Type: text/plain; charset=utf-8",
    b"Content-Transfer-Encoding: quoted-printable",
    b"",
)
HTML_MIME = msg(
    b"Content-Type: text/html; charset=utf-8",
    b"Content-Transfer-Encoding: quoted-printable",
    b"",
)
ALTERNATIVE_BODY = (
    msg(b"--inner")
    + PLAIN_MIME
    + PLAIN_BODY
    + msg(b"--inner")
    + HTML_MIME
    + HTML_BODY
    + msg(b"--inner--")
)
PDF_MIME = msg(
    b'Content-Type: application/pdf; name="report.pdf"',
    b"Content-Disposition: attachment;",
    b"  filename*0*=utf-8''Q3%20%E2%82%AC; filename*1*=%20report.pdf",
    b"Content-Transfer-Encoding: base64",
    b"",
)
FORWARDED_MIME = msg(b"Content-Type: message/rfc822", b"Content-Description: forwarded", b"")
COMPLEX_HEADER = msg(
    b'From: "Alice Example" <alice@example.org>',
    b"To: Bob <bob@example.net>",
    b"Subject: Quarterly report",
    b"Date: Tue, 3 Nov 2026 10:00:00 +0100",
    b"Message-ID: <report-1@example.org>",
    b"MIME-Version: 1.0",
    b'Content-Type: multipart/mixed; boundary="outer"',
    b"",
)
COMPLEX_BODY = (
    msg(b"This is a multi-part message in MIME format.", b"--outer")
    + ALTERNATIVE_HEADER
    + ALTERNATIVE_BODY
    + msg(b"", b"--outer")
    + PDF_MIME
    + PDF_BODY
    + msg(b"--outer")
    + FORWARDED_MIME
    + FORWARDED
    + msg(b"--outer--", b"an epilogue")
)
COMPLEX = COMPLEX_HEADER + COMPLEX_BODY


def strip_crlf(part: bytes) -> bytes:
    """A part's body: the CRLF before the next boundary belongs to the boundary."""
    assert part.endswith(CRLF)
    return part[:-2]


def lines_of(part: bytes) -> int:
    return part.count(b"\n")


def test_multipart_structure_with_exact_sizes() -> None:
    message = Message(COMPLEX)
    plain, html = strip_crlf(PLAIN_BODY), strip_crlf(HTML_BODY)
    # The alternative part runs to the CRLF before "--outer"; its own text ends with
    # "--inner--" and the empty line that precedes the boundary.
    alternative = ALTERNATIVE_BODY
    pdf, forwarded = strip_crlf(PDF_BODY), strip_crlf(FORWARDED)
    forwarded_text = strip_crlf(FORWARDED_BODY)
    filename = base64.b64encode("Q3 € report.pdf".encode())
    assert message.bodystructure() == (
        b"("
        b'(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" %d %d NIL NIL NIL NIL)'
        b'("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" %d %d NIL NIL NIL NIL)'
        b' "ALTERNATIVE" ("BOUNDARY" "inner") NIL NIL NIL)'
        b'("APPLICATION" "PDF" ("NAME" "report.pdf") NIL NIL "BASE64" %d NIL '
        b'("ATTACHMENT" ("FILENAME" "=?utf-8?B?%s?=")) NIL NIL)'
        b'("MESSAGE" "RFC822" NIL NIL "forwarded" "7BIT" %d '
        b'("Mon, 2 Nov 2026 18:00:00 +0000" "=?utf-8?q?F=C3=BCr_dich?=" '
        b'(("Carol" NIL "carol" "example.com")) (("Carol" NIL "carol" "example.com")) '
        b'(("Carol" NIL "carol" "example.com")) ((NIL NIL "alice" "example.org")) '
        b'NIL NIL NIL "<fwd@example.com>") '
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" %d %d NIL NIL NIL NIL) %d '
        b"NIL NIL NIL NIL)"
        b' "MIXED" ("BOUNDARY" "outer") NIL NIL NIL)'
        % (
            len(plain), lines_of(plain), len(html), lines_of(html),
            len(pdf), filename,
            len(forwarded), len(forwarded_text), lines_of(forwarded_text), lines_of(forwarded),
        )
    )  # fmt: skip
    assert (len(plain), lines_of(plain), len(html), lines_of(html)) == (50, 1, 64, 1)
    assert message.bodystructure(extended=False) == (
        b'((("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" 50 1)'
        b'("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" 64 1) "ALTERNATIVE")'
        b'("APPLICATION" "PDF" ("NAME" "report.pdf") NIL NIL "BASE64" %d)'
        b'("MESSAGE" "RFC822" NIL NIL "forwarded" "7BIT" %d '
        b'("Mon, 2 Nov 2026 18:00:00 +0000" "=?utf-8?q?F=C3=BCr_dich?=" '
        b'(("Carol" NIL "carol" "example.com")) (("Carol" NIL "carol" "example.com")) '
        b'(("Carol" NIL "carol" "example.com")) ((NIL NIL "alice" "example.org")) '
        b'NIL NIL NIL "<fwd@example.com>") '
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 26 1) 7) "MIXED")'
        % (len(pdf), len(forwarded))
    )
    assert message.section("1") == alternative


def test_sections_of_a_multipart_message() -> None:
    message = Message(COMPLEX)
    s = message.section
    assert s("") == COMPLEX
    assert s("HEADER") == COMPLEX_HEADER
    assert s("TEXT") == COMPLEX_BODY
    assert s("1") == ALTERNATIVE_BODY
    assert s("1.MIME") == ALTERNATIVE_HEADER
    assert s("1.1") == strip_crlf(PLAIN_BODY)
    assert s("1.1.MIME") == PLAIN_MIME
    assert s("1.2") == strip_crlf(HTML_BODY)
    assert s("1.2.MIME") == HTML_MIME
    assert s("2") == strip_crlf(PDF_BODY)
    assert s("2.MIME") == PDF_MIME
    assert s("3") == strip_crlf(FORWARDED)
    assert s("3.MIME") == FORWARDED_MIME
    assert s("3.HEADER") == FORWARDED_HEADER
    assert s("3.TEXT") == strip_crlf(FORWARDED_BODY)
    assert s("3.1") == strip_crlf(FORWARDED_BODY)
    assert s("3.1.MIME") == FORWARDED_HEADER
    assert s("3.HEADER.FIELDS (SUBJECT FROM)") == (
        b"From: Carol <carol@example.com>\r\nSubject: =?utf-8?q?F=C3=BCr_dich?=\r\n\r\n"
    )
    assert s('3.header.fields.not ("Subject" FROM date Message-ID)') == (
        b"To: alice@example.org\r\n\r\n"
    )
    assert s("HEADER.FIELDS (TO)") == b"To: Bob <bob@example.net>\r\n\r\n"
    # A part of a multipart that has no parts of its own is its own part 1 (as in Dovecot).
    assert s("2.1") == s("2") and s("1.2.1") == s("1.2")


@pytest.mark.parametrize(
    "spec",
    ["4", "0", "1.3", "1.0", "3.2", "3.1.2", "2.2", "2.HEADER", "1.TEXT",
     "1.HEADER.FIELDS (FROM)", "MIME", "FOO", "1.FOO", "1.", "HEADER.FIELDS ()",
     "HEADER.FIELDS FROM", "2.MIME.MIME"],
)  # fmt: skip
def test_sections_that_do_not_exist(spec: str) -> None:
    assert Message(COMPLEX).section(spec) is None


def test_sections_of_a_single_part_message() -> None:
    message = Message(PLAIN)
    header, body = PLAIN.split(b"\r\n\r\n", 1)
    assert message.section("HEADER") == header + b"\r\n\r\n"
    assert message.section("TEXT") == body == message.section("1")
    assert message.section("1.MIME") == header + b"\r\n\r\n"
    for spec in ("2", "1.1", "1.HEADER", "1.TEXT"):
        assert message.section(spec) is None, spec


def test_header_fields() -> None:
    raw = msg(
        b"From: a@example.org",
        b"Subject : spaced",
        b" and folded",
        b"X-A: 1",
        b"to: x@example.org",
        b"no colon here",
        b"From: second@example.org",
        b"",
        b"body",
    )
    message = Message(raw)
    assert message.header_fields(["SUBJECT", "To", "from"]) == (
        b"From: a@example.org\r\nSubject : spaced\r\n and folded\r\nto: x@example.org\r\n"
        b"From: second@example.org\r\n\r\n"
    )
    assert message.header_fields(["subject", "FROM"], exclude=True) == (
        b"X-A: 1\r\nto: x@example.org\r\nno colon here\r\n\r\n"
    )
    assert message.header_fields(["nothing"]) == b"\r\n"
    assert message.section("HEADER.FIELDS (FROM TO SUBJECT)") == message.header_fields(
        ["from", "to", "subject"]
    )
    assert message.section("HEADER.FIELDS.NOT (X-A)") == message.header_fields(["x-a"], True)


def test_leaf_sections_agree_with_the_stdlib_parser() -> None:
    parsed = message_from_bytes(COMPLEX, policy=compat32)
    message = Message(COMPLEX)

    def walk(part: EmailMessage, path: str) -> None:
        payload = part.get_payload()
        if part.is_multipart() and part.get_content_type().startswith("multipart/"):
            assert isinstance(payload, list)
            for number, child in enumerate(payload, 1):
                walk(child, f"{path}.{number}" if path else str(number))
        elif isinstance(payload, str):
            assert message.section(path) == payload.encode("ascii", "surrogateescape")

    walk(parsed, "")


# --- RFC 2231, digests, encapsulated messages --------------------------------------------


def test_rfc2231_parameters_are_joined_and_decoded() -> None:
    raw = msg(
        b"Content-Type: application/pdf; name*0*=utf-8''%E2%82%AC%20rates; name*1=.pdf",
        b'Content-Disposition: attachment; filename*0="long"; filename*1="name.pdf";',
        b' filename="fallback.pdf"; size=12',
        b"",
        b"x",
    )
    # Dovecot joins the sections but keeps "name*" and the utf-8''... form.
    assert Message(raw).bodystructure() == (
        b'("APPLICATION" "PDF" ("NAME" "=?utf-8?B?%s?=") NIL NIL "7BIT" 3 NIL '
        b'("ATTACHMENT" ("FILENAME" "longname.pdf" "SIZE" "12")) NIL NIL)'
        % base64.b64encode("€ rates.pdf".encode())
    )
    ascii_only = msg(b"Content-Type: text/plain; name*=''plain%20name.txt", b"", b"x")
    assert Message(ascii_only).bodystructure(extended=False) == (
        b'("TEXT" "PLAIN" ("NAME" "plain name.txt" "CHARSET" "US-ASCII") NIL NIL "7BIT" 3 1)'
    )


def test_parameter_values_are_read_leniently() -> None:
    raw = msg(
        b'Content-Type: text/plain; charset=utf-8 (comment); name="a\\"b"; novalue; dup=1;'
        b" dup=2; boundary=----=_Part_1",
        b"",
        b"x",
    )
    assert Message(raw).bodystructure(extended=False) == (
        b'("TEXT" "PLAIN" ("CHARSET" "utf-8" "NAME" "a\\"b" "DUP" "1" "BOUNDARY" "----=_Part_1")'
        b' NIL NIL "7BIT" 3 1)'
    )


DIGEST = msg(
    b"Subject: digest",
    b"Content-Type: multipart/digest; boundary=d",
    b"",
    b"--d",
    b"",
    b"Subject: first",
    b"",
    b"body one",
    b"--d",
    b"Content-Type: text/plain",
    b"",
    b"a text part",
    b"--d--",
)


def test_digest_parts_default_to_message_rfc822() -> None:
    message = Message(DIGEST)
    assert message.bodystructure() == (
        b'(("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 26 '
        b'(NIL "first" NIL NIL NIL NIL NIL NIL NIL NIL) '
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 8 0 NIL NIL NIL NIL) 2 '
        b"NIL NIL NIL NIL)"
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 11 0 NIL NIL NIL NIL) '
        b'"DIGEST" ("BOUNDARY" "d") NIL NIL NIL)'
    )
    assert message.section("1") == b"Subject: first\r\n\r\nbody one"
    assert message.section("1.HEADER") == b"Subject: first\r\n\r\n"
    assert message.section("1.1") == b"body one" == message.section("1.TEXT")
    assert message.section("1.MIME") == b"\r\n"


def test_message_rfc822_at_top_level_and_encoded() -> None:
    top = Message(msg(b"Content-Type: message/rfc822", b"", b"Subject: inner", b"", b"text"))
    assert top.bodystructure(extended=False) == (
        b'("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 24 (NIL "inner" NIL NIL NIL NIL NIL NIL NIL '
        b'NIL) ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 6 1) 3)'
    )
    assert top.section("1.1") == b"text\r\n" and top.section("1.HEADER") == msg(
        b"Subject: inner", b""
    )
    # A base64-encoded message cannot be walked: an empty envelope and body, as in Dovecot.
    encoded = msg(
        b"Content-Type: message/rfc822",
        b"Content-Transfer-Encoding: base64",
        b"",
        b"U3ViamVjdDogeA0KDQpi",
    )
    message = Message(encoded)
    assert message.bodystructure(extended=False) == (
        b'("MESSAGE" "RFC822" NIL NIL NIL "BASE64" 22 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)'
        b' ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 0 0) 1)'
    )
    assert message.section("1.HEADER") is None and message.section("1.1") is None


# --- shapes real senders produce ---------------------------------------------------------

PGP_SIGNED = msg(
    b"From: Signer <s@example.org>",
    b"To: r@example.net",
    b"Subject: signed",
    b"MIME-Version: 1.0",
    b"Content-Type: multipart/signed; micalg=pgp-sha256;",
    b' protocol="application/pgp-signature"; boundary="sig"',
    b"",
    b"This is an OpenPGP/MIME signed message (RFC 4880 and 3156)",
    b"--sig",
    b"Content-Type: text/plain; charset=UTF-8; format=flowed",
    b"Content-Transfer-Encoding: 7bit",
    b"",
    b"signed text",
    b"",
    b"--sig",
    b'Content-Type: application/pgp-signature; name="OpenPGP_signature.asc"',
    b"Content-Description: OpenPGP digital signature",
    b'Content-Disposition: attachment; filename="OpenPGP_signature.asc"',
    b"",
    b"-----BEGIN PGP SIGNATURE-----",
    b"",
    b"wsB5BAABCAAjFiEE",
    b"-----END PGP SIGNATURE-----",
    b"",
    b"--sig--",
    b"",
)

RELATED_HTML = msg(
    b"From: Web <w@example.org>",
    b"To: r@example.net",
    b"Subject: newsletter",
    b"MIME-Version: 1.0",
    b'Content-Type: multipart/alternative; boundary="alt"',
    b"",
    b"--alt",
    b"Content-Type: text/plain; charset=utf-8",
    b"Content-Transfer-Encoding: 8bit",
    b"",
    b"Gr\xc3\xbc\xc3\x9fe",
    b"--alt",
    b'Content-Type: multipart/related; boundary="rel"; type="text/html"',
    b"",
    b"--rel",
    b"Content-Type: text/html; charset=utf-8",
    b"",
    b'<img src="cid:logo@x">',
    b"--rel",
    b'Content-Type: image/gif; name="logo.gif"',
    b"Content-Transfer-Encoding: base64",
    b"Content-ID: <logo@x>",
    b'Content-Disposition: inline; filename="logo.gif"',
    b"",
    b"R0lGODlhAQABAIAAAP///wAAACwAAAAAAQABAAACAkQBADs=",
    b"--rel--",
    b"",
    b"--alt--",
)


def test_pgp_signed_message() -> None:
    signature = msg(
        b"-----BEGIN PGP SIGNATURE-----", b"", b"wsB5BAABCAAjFiEE", b"-----END PGP SIGNATURE-----"
    )
    message = Message(PGP_SIGNED)
    assert message.bodystructure() == (
        b'(("TEXT" "PLAIN" ("CHARSET" "UTF-8" "FORMAT" "flowed") NIL NIL "7BIT" 13 1 '
        b"NIL NIL NIL NIL)"
        b'("APPLICATION" "PGP-SIGNATURE" ("NAME" "OpenPGP_signature.asc") NIL '
        b'"OpenPGP digital signature" "7BIT" %d NIL '
        b'("ATTACHMENT" ("FILENAME" "OpenPGP_signature.asc")) NIL NIL) "SIGNED" '
        b'("MICALG" "pgp-sha256" "PROTOCOL" "application/pgp-signature" "BOUNDARY" "sig") '
        b"NIL NIL NIL)" % len(signature)
    )
    # What a client verifies: part 1 with its MIME header, byte for byte.
    assert message.section("1.MIME") == msg(
        b"Content-Type: text/plain; charset=UTF-8; format=flowed",
        b"Content-Transfer-Encoding: 7bit",
        b"",
    )
    assert message.section("1") == b"signed text\r\n"
    assert message.section("2") == signature


def test_related_inside_alternative() -> None:
    message = Message(RELATED_HTML)
    assert message.bodystructure() == (
        b'(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "8BIT" 7 0 NIL NIL NIL NIL)'
        b'(("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "7BIT" 22 0 NIL NIL NIL NIL)'
        b'("IMAGE" "GIF" ("NAME" "logo.gif") "<logo@x>" NIL "BASE64" 48 NIL '
        b'("INLINE" ("FILENAME" "logo.gif")) NIL NIL) "RELATED" '
        b'("BOUNDARY" "rel" "TYPE" "text/html") NIL NIL NIL) "ALTERNATIVE" '
        b'("BOUNDARY" "alt") NIL NIL NIL)'
    )
    assert message.section("2.2") == b"R0lGODlhAQABAIAAAP///wAAACwAAAAAAQABAAACAkQBADs="
    assert message.section("1") == "Grüße".encode()


# --- malformed input ---------------------------------------------------------------------

NO_CLOSE = msg(
    b"Content-Type: multipart/mixed; boundary=b",
    b"",
    b"--b",
    b"",
    b"first",
    b"--b",
    b"",
    b"second",
)
NO_BLANK_LINE = b"From: a@example.org\r\nSubject: only a header"
BARE_LF = (
    b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\n"
    b"hello\nworld\n--b\n\nx\n--b--\n"
)
EMPTY_PARTS = msg(
    b"Content-Type: multipart/mixed; boundary=xx",
    b"",
    b"--xx",
    b"",
    b"--xx",
    b"Content-Type: text/plain",
    b"--xx",
    b"Content-Type: multipart/alternative; boundary=yy",
    b"--xx--",
)
NESTED_PREFIX = msg(
    b"Content-Type: multipart/mixed; boundary=b",
    b"",
    b"--b",
    b"Content-Type: multipart/mixed; boundary=bb",
    b"",
    b"--bb",
    b"",
    b"inner",
    b"--b",
    b"",
    b"outer",
    b"--b--",
)
NO_BOUNDARY_LINE = msg(b"Content-Type: multipart/mixed; boundary=b", b"", b"just text")
NO_BOUNDARY_PARAMETER = msg(b"Content-Type: multipart/mixed", b"", b"--b", b"", b"x", b"--b--")
INVALID_CONTENT_TYPE = msg(b"Content-Type: garbage", b"", b"x")

_EMPTY_TEXT = b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 0 0)'


def test_missing_close_delimiter() -> None:
    message = Message(NO_CLOSE)
    assert message.bodystructure(extended=False) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 5 0)'
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 8 1) "MIXED")'
    )
    assert message.section("2") == b"second\r\n"


def test_no_blank_line_after_the_header() -> None:
    message = Message(NO_BLANK_LINE)
    assert message.bodystructure() == (
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 0 0 NIL NIL NIL NIL)'
    )
    assert message.section("HEADER") == NO_BLANK_LINE
    assert message.section("TEXT") == b""
    assert message.envelope().startswith(b'(NIL "only a header" ((NIL NIL "a" "example.org"))')
    # Dovecot leaves the blank line out here; RFC 3501 wants it.
    assert message.header_fields(["subject"]) == b"Subject: only a header\r\n\r\n"


def test_bare_line_feeds_count_as_stored() -> None:
    # Dovecot counts sizes as if every LF were CRLF (12 for the first part); these are the
    # stored octets, consistent with RFC822.SIZE = len(raw).
    message = Message(BARE_LF)
    assert message.bodystructure(extended=False) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 11 1)'
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1 0) "MIXED")'
    )
    assert message.section("1") == b"hello\nworld"
    assert message.section("1.MIME") == b"Content-Type: text/plain\n\n"


def test_empty_parts_and_headers_cut_by_a_boundary() -> None:
    message = Message(EMPTY_PARTS)
    assert message.bodystructure(extended=False) == (
        b"(" + _EMPTY_TEXT + _EMPTY_TEXT + b"(" + _EMPTY_TEXT + b' "ALTERNATIVE") "MIXED")'
    )
    # The line break before a boundary is the boundary's, even after a header.
    assert message.section("1.MIME") == b""
    assert message.section("2.MIME") == b"Content-Type: text/plain"
    assert message.section("2") == b""


def test_boundary_that_is_a_prefix_of_the_inner_one() -> None:
    assert Message(NESTED_PREFIX).bodystructure(extended=False) == (
        b'((("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 5 0) "MIXED")'
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 5 0) "MIXED")'
    )


def test_multipart_without_parts_or_boundary() -> None:
    # No boundary line: one empty part, as the grammar needs (Dovecot does the same).
    assert Message(NO_BOUNDARY_LINE).bodystructure(extended=False) == (
        b"(" + _EMPTY_TEXT + b' "MIXED")'
    )
    # No boundary parameter, or no valid type: text/plain (RFC 2045 section 5.2), where
    # Dovecot sends an empty multipart or ("garbage" "").
    assert Message(NO_BOUNDARY_PARAMETER).bodystructure(extended=False) == (
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 17 4)'
    )
    assert Message(INVALID_CONTENT_TYPE).bodystructure(extended=False) == (
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3 1)'
    )


def test_deep_nesting_is_bounded() -> None:
    depth = 3 * MAX_DEPTH
    opening = b"".join(
        msg(b"Content-Type: multipart/mixed; boundary=x%dx" % i, b"", b"--x%dx" % i)
        for i in range(depth)
    )
    closing = b"".join(msg(b"--x%dx--" % i) for i in reversed(range(depth)))
    message = Message(opening + msg(b"", b"leaf") + closing)
    structure = message.bodystructure()
    assert structure.count(b'"MIXED"') == MAX_DEPTH
    assert b'"APPLICATION" "OCTET-STREAM"' in structure
    assert_consistent(message)


def test_huge_header() -> None:
    fields = [b"X-Filler-%d: %s" % (i, b"y" * 50) for i in range(5000)]
    raw = msg(b"Subject: " + b"z" * 300_000, *fields, b"", b"body")
    message = Message(raw)
    assert message.envelope().startswith(b"(NIL {300000}\r\nzzz")
    assert message.bodystructure(extended=False).endswith(b'"7BIT" 6 1)')
    assert message.header_fields(["x-filler-4999"]) == fields[-1] + b"\r\n\r\n"


# --- every structure is well-formed and its sizes are the sections' ----------------------


def _parse(data: bytes, i: int = 0) -> tuple[object, int]:
    """One IMAP value: list, bytes (quoted or literal), int or None (NIL)."""
    if data[i : i + 1] == b"(":
        out: list[object] = []
        i += 1
        while data[i : i + 1] != b")":
            if out:
                assert data[i : i + 1] == b" " or data[i - 1 : i] == b")", data[i - 20 : i + 20]
                if data[i : i + 1] == b" ":
                    i += 1
            value, i = _parse(data, i)
            out.append(value)
        return out, i + 1
    if data[i : i + 1] == b'"':
        j, text = i + 1, bytearray()
        while data[j : j + 1] != b'"':
            if data[j : j + 1] == b"\\":
                j += 1
            assert data[j] not in b"\r\n\x00"
            text += data[j : j + 1]
            j += 1
        return bytes(text), j + 1
    if data[i : i + 1] == b"{":
        close = data.index(b"}\r\n", i)
        size = int(data[i + 1 : close])
        start = close + 3
        assert len(data) >= start + size and b"\x00" not in data[start : start + size]
        return data[start : start + size], start + size
    j = i
    while j < len(data) and data[j : j + 1] not in b" ()":
        j += 1
    token = data[i:j]
    if token == b"NIL":
        return None, j
    assert token.isdigit(), token
    return int(token), j


def _is_multipart(node: list[object]) -> bool:
    return isinstance(node[0], list)


def _leaves(node: list[object], path: list[int]) -> list[tuple[list[int], list[object]]]:
    """Every non-multipart part with its part number, those inside message/rfc822 included."""
    if _is_multipart(node):
        found = []
        for number, child in enumerate(takewhile(lambda n: isinstance(n, list), node), 1):
            assert isinstance(child, list)
            found += _leaves(child, [*path, number])
        return found
    found = [(path, node)]
    if node[0] == b"MESSAGE" and node[1] == b"RFC822" and node[5] in (b"7BIT", b"8BIT", b"BINARY"):
        inner = node[8]
        assert isinstance(inner, list)
        found += _leaves(inner, path if _is_multipart(inner) else [*path, 1])
    return found


def assert_consistent(message: Message) -> None:
    """BODYSTRUCTURE, BODY and ENVELOPE parse; each part's size and lines match its section."""
    envelope, end = _parse(message.envelope())
    assert isinstance(envelope, list) and len(envelope) == 10
    assert end == len(message.envelope())
    for extended in (True, False):
        data = message.bodystructure(extended)
        root, end = _parse(data)
        assert end == len(data) and isinstance(root, list)
        for path, node in _leaves(root, [] if _is_multipart(root) else [1]):
            section = message.section(".".join(map(str, path)))
            assert section is not None and len(section) == node[6], (path, node)
            if node[0] == b"TEXT":
                assert section.count(b"\n") == node[7]


FIXTURES = {
    "rfc3501_append": RFC3501_APPEND,
    "rfc3501_sample": RFC3501_SAMPLE,
    "rfc3501_simple": RFC3501_SIMPLE,
    "rfc3501_two_parts": RFC3501_TWO_PARTS,
    "plain": PLAIN,
    "no_content_type": NO_CONTENT_TYPE,
    "quoted_printable": QUOTED_PRINTABLE,
    "base64": BASE64,
    "i18n": I18N,
    "eight_bit_subject": EIGHT_BIT_SUBJECT,
    "groups": GROUPS,
    "odd_addresses": ODD_ADDRESSES,
    "complex": COMPLEX,
    "digest": DIGEST,
    "pgp_signed": PGP_SIGNED,
    "related_html": RELATED_HTML,
    "no_close": NO_CLOSE,
    "no_blank_line": NO_BLANK_LINE,
    "bare_lf": BARE_LF,
    "empty_parts": EMPTY_PARTS,
    "nested_prefix": NESTED_PREFIX,
    "no_boundary_line": NO_BOUNDARY_LINE,
    "no_boundary_parameter": NO_BOUNDARY_PARAMETER,
    "invalid_content_type": INVALID_CONTENT_TYPE,
    "empty": b"",
}


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_structure_is_consistent(name: str) -> None:
    assert_consistent(Message(FIXTURES[name]))


def _mutate(rng: random.Random, data: bytes) -> bytes:
    for _ in range(rng.randint(1, 4)):
        if not data:
            return bytes(rng.randrange(256) for _ in range(20))
        i = rng.randrange(len(data))
        j = min(len(data), i + rng.randint(1, 40))
        choice = rng.randrange(6)
        if choice == 0:
            data = data[:i] + data[j:]
        elif choice == 1:
            data = data[:i] + data[i:j] * rng.randint(2, 5) + data[i:]
        elif choice == 2:
            data = data[:i] + bytes(rng.randrange(256) for _ in range(j - i)) + data[j:]
        elif choice == 3:
            data = data.replace(b"\r\n", b"\n", rng.randint(1, 30))
        elif choice == 4:
            data = data[:i] + rng.choice([b"\r\n--", b"--outer", b"\r\n\r\n", b'"', b"(", b"<"])
            data += data[i:]
        else:
            data = data[:i]
    return data


def test_mutated_messages_never_raise() -> None:
    rng = random.Random(3501)
    sources = list(FIXTURES.values())
    for _ in range(400):
        raw = _mutate(rng, rng.choice(sources))
        message = Message(raw)
        assert_consistent(message)
        for spec in ("HEADER", "TEXT", "1", "1.MIME", "2.1", "3.HEADER", "HEADER.FIELDS (TO)"):
            message.section(spec)
