"""SORT on byte strings: the grammar, base subjects (RFC 5256 section 2.1), sent dates, the
sort keys and their tie rules, SORT=DISPLAY (RFC 5957) and the ESORT sequence set.

The mailboxes and expected orders are Dovecot imaptest's scripted tests (``src/tests/sort-*``
and ``esort`` on its release-2.3 branch), kept here as data: each mbox is appended in order,
its From_ line giving the internal date, and every line ending in CRLF, as imaptest sends it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from enclave.imap.wire.commands import TaggedParseError, parse
from enclave.imap.wire.framing import Command
from enclave.imap.wire.sort import (
    Criterion,
    Sortable,
    base_subject,
    decode_words,
    fields,
    sent_date,
    sequence_in_order,
    sort,
)

_FROM_LINE = re.compile(r"^From \S+\s+(\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4})(?: ([+-]\d{4}))?$")


def messages(text: str) -> list[tuple[datetime, bytes]]:
    """The messages of an mbox as imaptest appends them: (internal date from the From_
    line, the lines up to the next From_ line ending in CRLF)."""
    found: list[tuple[datetime, list[str]]] = []
    for line in text.split("\n"):
        head = _FROM_LINE.match(line)
        if head:
            when = datetime.strptime(head.group(1), "%a %b %d %H:%M:%S %Y")
            zone = head.group(2) or "+0000"
            offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:]))
            tz = timezone(offset if zone[0] == "+" else -offset)
            found.append((when.replace(tzinfo=tz).astimezone(UTC), []))
        else:
            found[-1][1].append(line)
    if found and found[-1][1] and found[-1][1][-1] == "":
        found[-1][1].pop()  # the file's final newline ends the last line, it adds none
    return [(when, "".join(line + "\r\n" for line in lines).encode()) for when, lines in found]


def mbox(text: str) -> list[Sortable]:
    """The messages of an mbox as SORT sees them once appended."""
    out = []
    for seq, (when, raw) in enumerate(messages(text), start=1):
        header = raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n" if b"\r\n\r\n" in raw else raw
        out.append(Sortable(seq, header, when, len(raw)))
    return out


def criteria(text: str) -> list[Criterion]:
    """``(reverse from arrival)`` as the parser reads it."""
    request = parse(Command((b"a SORT " + text.encode() + b" us-ascii all",)))
    return list(request.args["criteria"])


def check(box: list[Sortable], script: list[tuple[str, list[int]]]) -> None:
    for sent, expected in script:
        assert sort(box, criteria(sent)) == expected, sent


# --- imaptest's sort-* and esort ---------------------------------------------------------

SORT_ARRIVAL = """\
From user@domain  Fri Feb 22 00:00:00 2008

1

From user@domain  Fri Feb 22 02:00:00 2008

2

From user@domain  Fri Feb 22 01:00:00 2008

33

From user@domain  Fri Feb 22 02:00:00 2008

44

From user@domain  Fri Feb 22 02:00:00 2008

5555

"""


def test_imaptest_sort_arrival() -> None:
    check(mbox(SORT_ARRIVAL), [
        ("(arrival)", [1, 3, 2, 4, 5]),
        ("(reverse arrival)", [2, 4, 5, 3, 1]),
        ("(arrival reverse size)", [1, 3, 5, 4, 2]),
    ])  # fmt: skip


SORT_DATE = """\
From user@domain  Fri Feb 22 23:00:00 2008 +0200
Date: Fri, 22 Feb 2008 00:00:00 +0200

1

From user@domain  Fri Feb 22 22:00:00 2008 +0200
Date: Fri, 22 Feb 2008 02:00:00 +0200

2

From user@domain  Fri Feb 22 21:00:00 2008 +0200
Date: Fri, 22 Feb 2008 01:00:00 +0200

33

From user@domain  Fri Feb 22 20:00:00 2008 +0200
Date: Fri, 22 Feb 2008 02:00:00 +0200

44

From user@domain  Fri Feb 22 01:30:23 2008 +0200
Subject: foo

55555

From user@domain  Fri Feb 22 18:00:00 2008 +0200
Date: Fri, 22 Feb 2008 02:00:00 +0200

6666

From user@domain  Fri Feb 22 01:00:00 2008 +0200
Subject: foo bar foo bar foo bar fooo

777

"""


def test_imaptest_sort_date_falls_back_to_the_internal_date() -> None:
    check(mbox(SORT_DATE), [
        ("(date)", [1, 3, 7, 5, 2, 4, 6]),
        ("(reverse date)", [2, 4, 6, 5, 3, 7, 1]),
        ("(date reverse size)", [1, 7, 3, 5, 6, 4, 2]),
    ])  # fmt: skip


SORT_SIZE = """\
From user@domain  Fri Feb 22 00:06:23 2008
Date: Sat, 24 Mar 2007 23:00:00 +0200

1

From user@domain  Fri Feb 22 01:06:23 2008
Date: Sat, 24 Mar 2007 23:00:00 +0200

22

From user@domain  Fri Feb 22 02:06:23 2008
Date: Sat, 24 Mar 2007 23:00:00 +0200

333

From user@domain  Fri Feb 22 03:06:23 2008
Date: Sat, 24 Mar 2007 23:00:00 +0200

4
4

From user@domain  Fri Feb 22 04:06:23 2008
Date: Sat, 24 Mar 2007 23:00:00 +0200

555

From user@domain  Fri Feb 22 05:06:23 2008
Date: Sat, 24 Mar 2007 23:00:00 +0200

66

From user@domain  Fri Feb 22 06:06:23 2008
Date: Sat, 24 Mar 2007 23:00:00 +0200

7777

From user@domain  Fri Feb 22 07:06:23 2008
Date: Sat, 24 Mar 2007 23:00:00 +0200

8

"""


def test_imaptest_sort_size() -> None:
    check(mbox(SORT_SIZE), [
        ("(size)", [1, 8, 2, 6, 3, 5, 4, 7]),
        ("(reverse size)", [4, 7, 3, 5, 2, 6, 1, 8]),
        ("(size reverse arrival)", [8, 1, 6, 2, 5, 3, 7, 4]),
    ])  # fmt: skip


SORT_ADDRESSES = """\
From user@domain  Fri Feb 22 00:06:23 2008
From: user2@domain2.org
To: foo bar <user2@domain2.org>
Cc: user2@domain2.org (foo bar)

1

From user@domain  Fri Feb 22 01:06:23 2008
From: user2@domain1.org
To: user2@domain1.org
Cc: user2: blah@domain1.org;

2

From user@domain  Fri Feb 22 02:06:23 2008
From: user1@domain1.org
To: user1@domain1.org
Cc: user1@domain1.org

3

"""


def test_imaptest_sort_addresses_compare_the_first_mailbox_only() -> None:
    """The local part alone decides (user2@domain2 and user2@domain1 tie); a group counts
    by its name (``user2: blah@...;``)."""
    check(mbox(SORT_ADDRESSES), [
        ("(from)", [3, 1, 2]), ("(to)", [3, 1, 2]), ("(cc)", [3, 1, 2]),
        ("(reverse from)", [1, 2, 3]), ("(reverse to)", [1, 2, 3]), ("(reverse cc)", [1, 2, 3]),
        ("(from reverse arrival)", [3, 2, 1]), ("(to reverse arrival)", [3, 2, 1]),
        ("(cc reverse arrival)", [3, 2, 1]),
    ])  # fmt: skip


SORT_DISPLAY_FROM = """\
From user@domain  Fri Feb 22 23:00:00 2008 +0200
From: foo bar <a@b.c>

1

From user@domain  Fri Feb 22 23:00:00 2008 +0200
From: b@c.d

2

From user@domain  Fri Feb 22 23:00:00 2008 +0200
From: d

3

From user@domain  Fri Feb 22 23:00:00 2008 +0200
From: =?iso-8859-1?q?foo_aar?= <e@f.g>

4

From user@domain  Fri Feb 22 23:00:00 2008 +0200
From: =?iso-8859-1?q?foo_car?= <f@g.h>

5
"""

SORT_DISPLAY_TO = """\
From user@domain  Fri Feb 22 23:00:00 2008 +0200
To: foo bar <a@b.c>

1

From user@domain  Fri Feb 22 23:00:00 2008 +0200
To: b@c.d

2

From user@domain  Fri Feb 22 23:00:00 2008 +0200
To: d

3

From user@domain  Fri Feb 22 23:00:00 2008 +0200
To: =?iso-8859-1?q?foo_aar?= <e@f.g>

4

From user@domain  Fri Feb 22 23:00:00 2008 +0200
To: =?iso-8859-1?q?foo_car?= <f@g.h>

5

From user@domain  Fri Feb 22 23:00:00 2008 +0200
To: a: xx@xx.org, yy@yy.org;

6

From user@domain  Fri Feb 22 23:00:00 2008 +0200
To: z: aa@aa.org, bb@bb.org;

7

From user@domain  Fri Feb 22 23:00:00 2008 +0200
To: empty:;

8

"""


def test_imaptest_sort_display_from_and_to() -> None:
    """The decoded display name, else the address; a group sorts by its name."""
    check(mbox(SORT_DISPLAY_FROM), [
        ("(displayfrom)", [2, 3, 4, 1, 5]), ("(reverse displayfrom)", [5, 1, 4, 3, 2]),
    ])  # fmt: skip
    check(mbox(SORT_DISPLAY_TO), [
        ("(displayto)", [6, 2, 3, 8, 4, 1, 5, 7]),
        ("(reverse displayto)", [7, 5, 1, 4, 8, 3, 2, 6]),
    ])  # fmt: skip


SORT_SUBJECT = """\
From user@domain  Fri Feb 22 23:00:00 2008 +0200
Subject: a

1

From user@domain  Fri Feb 22 23:00:00 2008 +0200
Subject: C

2

From user@domain  Fri Feb 22 23:00:00 2008 +0200
Subject: b

3

From user@domain  Fri Feb 22 23:00:00 2008 +0200
Subject: _

4

From user@domain  Fri Feb 22 23:00:00 2008 +0200
Subject: [foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)

55

From user@domain  Fri Feb 22 23:00:00 2008 +0200
Subject: b (a)

66

From user@domain  Fri Feb 22 23:00:00 2008 +0200
Subject: Re: [FWD: c]

77

From user@domain  Fri Feb 22 23:00:00 2008 +0200
Subject: [xyz]

88

From user@domain  Fri Feb 22 23:00:00 2008 +0200

9

From user@domain  Fri Feb 22 23:00:00 2008 +0200
Subject: =?iso-8859-1?q?_?=

10

From user@domain  Fri Feb 22 23:00:00 2008 +0200
Subject: Re: =?utf-8?q?b?=

11
xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx

From user@domain  Fri Feb 22 23:00:00 2008 +0200
Subject: =?iso-8859-1?q?RE:_C?=

12
xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx

From user@domain  Fri Feb 22 23:00:00 2008 +0200
Subject: =?us-ascii?b?UmU6IGM=?=

13

The subject is 'Re: c'.
xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx

From user@domain  Fri Feb 22 23:00:00 2008 +0200
Subject: Ad: Re: Ad: Re: Ad: x

14

From user@domain  Fri Feb 22 23:00:00 2008 +0200
Subject: re: [fwd: [fwd: re: [fwd: babylon]]]

15

"""


def test_imaptest_sort_subject() -> None:
    """Base subjects under i;ascii-casemap ("[" and "_" sort after letters because letters
    fold to upper case); ties in sequence order, also reversed."""
    check(mbox(SORT_SUBJECT), [
        ("(subject)", [9, 10, 1, 14, 3, 5, 11, 6, 15, 2, 7, 12, 13, 8, 4]),
        ("(reverse subject)", [4, 8, 2, 7, 12, 13, 15, 6, 3, 5, 11, 14, 1, 9, 10]),
        ("(subject reverse size)", [10, 9, 1, 14, 11, 5, 3, 6, 15, 13, 12, 7, 2, 8, 4]),
    ])  # fmt: skip


def test_imaptest_esort_min_max_all_count() -> None:
    """imaptest's esort: five messages whose arrival order is their sequence order give
    MIN 1, MAX 5, ALL 1:5, COUNT 5. MIN and MAX are the first and last in sort order, and
    ALL keeps that order (RFC 5267 section 3.2)."""
    in_order = sort(mbox(SORT_SIZE)[:5], criteria("(arrival)"))
    assert (in_order[0], in_order[-1], len(in_order)) == (1, 5, 5)
    assert sequence_in_order(in_order) == b"1:5"
    shuffled = sort(mbox(SORT_ARRIVAL), criteria("(arrival)"))
    assert (shuffled[0], shuffled[-1]) == (1, 5)
    assert sequence_in_order(shuffled) == b"1,3,2,4:5"
    assert sequence_in_order(sort(mbox(SORT_ARRIVAL), criteria("(reverse arrival)"))) == (
        b"2,4:5,3,1"
    )


# --- the pieces --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "base", "reply"),
    [
        ("a", "a", False),
        ("Re: a", "a", True),
        ("RE:  a", "a", True),
        ("re[2]: a", "a", True),
        ("Fw: a", "a", True),
        ("Fwd:a", "a", True),
        ("a (fwd)", "a", True),
        ("a (FWD) (fwd) ", "a", True),
        ("[list] a", "a", False),
        ("[list] Re: [other] a", "a", True),
        ("[xyz]", "[xyz]", False),
        ("[a] [b]", "[b]", False),
        ("[fwd: a]", "a", True),
        ("[Fwd: Re: a]", "a", True),
        ("re: [fwd: [fwd: re: [fwd: babylon]]]", "babylon", True),
        ("[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)", "b", True),
        ("Ad: Re: x", "Ad: Re: x", False),
        ("a\t \tb", "a b", False),
        ("Reply: a", "Reply: a", False),
        ("", "", False),
        ("   ", "", False),
    ],
)
def test_base_subject(subject: str, base: str, reply: bool) -> None:
    assert base_subject(subject) == (base, reply)


def test_decode_words() -> None:
    assert decode_words(b"=?iso-8859-1?q?foo_aar?= <e@f.g>") == "foo aar <e@f.g>"
    assert decode_words(b"=?us-ascii?b?UmU6IGM=?=") == "Re: c"
    assert decode_words(b"=?utf-8?q?a?= =?utf-8?q?b?= c") == "ab c"  # space between words goes
    assert decode_words(b"=?utf-8*en?Q?K=C3=B6ln?=") == "Köln"  # RFC 2231 language suffix
    assert decode_words(b"=?x-unknown?q?a?=") == "=?x-unknown?q?a?="  # kept as it came
    assert decode_words(b"=?utf-8?b?!!!?=") == "=?utf-8?b?!!!?="
    assert decode_words("Grüße".encode()) == "Grüße"


def test_fields_unfolds_and_keeps_only_what_sort_and_thread_read() -> None:
    header = (
        b"SUBJECT: one\r\n\ttwo\r\nX-Subject: no\r\nReferences: <a>\r\n <b>\r\n"
        b"To : x@y\nReceived: from a\r\n  by b\r\nto: z@y\r\n\r\n"
    )
    assert fields(header) == {
        b"subject": [b"one\ttwo"], b"references": [b"<a> <b>"], b"to": [b"x@y", b"z@y"],
    }  # fmt: skip
    assert fields(b"") == {} and fields(b" stray continuation\r\n") == {}


def test_sent_date_in_utc_or_none() -> None:
    assert sent_date(b"Date: Fri, 22 Feb 2008 02:00:00 +0200\r\n\r\n") == datetime(
        2008, 2, 22, 0, 0, tzinfo=UTC
    )
    assert sent_date(b"Date: Fri, 22 Feb 2008 02:00:00 -0000\r\n\r\n") == datetime(
        2008, 2, 22, 2, 0, tzinfo=UTC
    )
    assert sent_date(b"Date: yesterday\r\n\r\n") is None
    assert sent_date(b"Subject: x\r\n\r\n") is None


def test_missing_fields_sort_first_as_empty_strings() -> None:
    box = [
        Sortable(1, b"From: b@x\r\nTo: b@x\r\n\r\n"),
        Sortable(2, b"Subject: none\r\n\r\n"),
        Sortable(3, b"From: a@x\r\nTo: <>\r\n\r\n"),
    ]
    assert sort(box, [Criterion("FROM")]) == [2, 3, 1]
    assert sort(box, [Criterion("TO")]) == [2, 3, 1]  # <> has an empty mailbox
    assert sort(box, [Criterion("DISPLAYFROM", reverse=True)]) == [1, 3, 2]


def test_sequence_in_order_keeps_the_sort_order() -> None:
    assert sequence_in_order([3, 1, 2]) == b"3,1:2"
    assert sequence_in_order([5, 4, 3]) == b"5,4,3"
    assert sequence_in_order([1, 2, 3, 7, 8, 4]) == b"1:3,7:8,4"
    assert sequence_in_order([]) == b""


# --- the grammar ---------------------------------------------------------------------------


def one(*chunks: bytes):  # type: ignore[no-untyped-def]
    return parse(Command(chunks))


def test_sort_grammar() -> None:
    request = one(b"a UID SORT (REVERSE DATE subject) UTF-8 SEEN FROM x")
    assert request.name == "SORT" and request.uid
    assert request.args["criteria"] == [Criterion("DATE", True), Criterion("SUBJECT")]
    assert request.args["returns"] is None
    assert request.args["key"] == ("AND", [("SEEN",), ("FROM", "x")])
    esort = one(b"a SORT RETURN (MIN COUNT) (ARRIVAL) US-ASCII 1:5")
    assert esort.args["returns"] == ["MIN", "COUNT"]
    assert one(b"a SORT RETURN () (SIZE) utf-8 ALL").args["returns"] == []
    literal = one(b"a SORT (DISPLAYTO) UTF-8 SUBJECT {6}", "Grüß".encode(), b"")
    assert literal.args["key"] == ("AND", [("SUBJECT", "Grüß")])


@pytest.mark.parametrize(
    ("line", "status", "message"),
    [
        (b"a SORT (ARRIVAL)", "BAD", "expected ' '"),
        (b"a SORT (ARRIVAL) ALL", "NO", "charset all is not supported"),  # no charset
        (b"a SORT ARRIVAL UTF-8 ALL", "BAD", "expected '('"),
        (b"a SORT () UTF-8 ALL", "BAD", "expected an atom"),
        (b"a SORT (REVERSE) UTF-8 ALL", "BAD", "expected ' '"),
        (b"a SORT (BOGUS) UTF-8 ALL", "BAD", "unknown sort key BOGUS"),
        (b"a SORT (REVERSE REVERSE DATE) UTF-8 ALL", "BAD", "unknown sort key REVERSE"),
        (b"a SORT (DATE) UTF-8", "BAD", "expected ' '"),
        (b"a SORT (DATE) UTF-8 FROBNICATE", "BAD", "unknown search key FROBNICATE"),
        (b"a SORT RETURN (BOGUS) (DATE) UTF-8 ALL", "BAD", "unknown RETURN option BOGUS"),
        (b"a SORT (DATE) KOI8-R ALL", "NO", "charset koi8-r is not supported"),
        (b"a SORT (DATE) UTF-8 " + b"(" * 1000 + b"ALL" + b")" * 1000, "BAD", "nested"),
    ],
)
def test_sort_grammar_errors(line: bytes, status: str, message: str) -> None:
    with pytest.raises(TaggedParseError) as caught:
        one(line)
    assert caught.value.status == status
    assert message in str(caught.value)
    if status == "NO":
        assert caught.value.code == "BADCHARSET (UTF-8 US-ASCII)"
