"""THREAD on byte strings: ORDEREDSUBJECT and REFERENCES (RFC 5256 sections 4 and 5), the
thread response, the grammar.

The mailboxes and expected threads are Dovecot imaptest's scripted tests (``src/tests/thread*``
on its release-2.3 branch), kept as data. Where a script expunges or appends, the mailbox is
rebuilt as the server would then number it.
"""

from __future__ import annotations

import pytest

from enclave.imap.wire.commands import TaggedParseError, parse
from enclave.imap.wire.framing import Command
from enclave.imap.wire.sort import Sortable
from enclave.imap.wire.thread import Node, ordered_subject, references, render
from tests.wire.test_imap_sort import SORT_SUBJECT, mbox


def threads(messages: list[Sortable], algorithm: str = "REFERENCES") -> bytes:
    """The thread response for the messages, renumbered 1..n as a mailbox would be."""
    renumbered = [Sortable(n, m.header, m.internal_date, m.size) for n, m in enumerate(messages, 1)]
    found = references(renumbered) if algorithm == "REFERENCES" else ordered_subject(renumbered)
    return render(found)


def without(messages: list[Sortable], *seqs: int) -> list[Sortable]:
    """The mailbox after STORE +FLAGS \\Deleted on ``seqs`` and EXPUNGE."""
    return [m for m in messages if m.seq not in seqs]


# --- imaptest's thread* --------------------------------------------------------------------

THREAD = """\
From user@domain  Fri Feb 22 17:06:23 2008
Message-ID: <a@b>

body

From user@domain  Fri Feb 22 15:06:23 2008
Message-Id: <b@b>
References: <a@b> <c@b>

body

From user@domain  Fri Feb 22 16:06:25 2008
Message-Id: <c@b>
References: <b@b>

body
"""


def test_imaptest_thread_a_link_that_would_loop_is_broken_not_kept() -> None:
    """<c@b> was made <b@b>'s parent by b's References; c's own References name b: c's old
    link (to a) is broken and the looping one refused, so c heads a thread of its own."""
    box = mbox(THREAD)
    assert threads(box) == b"(3 2)(1)"
    assert threads(without(box, 1)) == b"(2 1)"


THREAD2 = """\
From user@domain  Fri Feb 22 15:06:23 2008
Message-Id: <a@b>

body

From user@domain  Fri Feb 22 15:06:23 2008
Message-Id: <a@b>

body
"""

THREAD3 = """\
From user@domain  Fri Feb 22 15:06:23 2008
Message-Id: <a@b>
Subject: foo

body

From user@domain  Fri Feb 22 15:06:24 2008
Message-Id: <a@b>
Subject: Re: foo

body
"""

THREAD4 = """\
From user@domain  Fri Feb 22 15:06:23 2008
Message-Id: <a@b>
Subject: foo

body

From user@domain  Fri Feb 22 15:06:24 2008
Message-Id: <b@b>
References: <c@b>
Subject: Re: foo

body
"""


def test_imaptest_thread2_to_4_duplicate_ids_and_subject_merging() -> None:
    """A duplicate Message-ID gets a unique one; without subjects the two stay apart, with
    "foo" and "Re: foo" the reply joins the original (step 5), also when its only reference
    was a dummy promoted away (step 3)."""
    assert threads(mbox(THREAD2)) == b"(1)(2)"
    assert threads(mbox(THREAD3)) == b"(1 2)"
    assert threads(mbox(THREAD4)) == b"(1 2)"


THREAD5 = """\
From user@domain  Fri Feb 22 17:06:23 2008
Message-ID: <1@b>

body

From user@domain  Fri Feb 22 15:06:23 2008
Message-Id: <2@b>
In-Reply-To: <1@b>

body

From user@domain  Fri Feb 22 15:06:23 2008
Message-Id: <3@b>
In-Reply-To: <1@b>

body

From user@domain  Fri Feb 22 15:06:23 2008
Message-Id: <4@b>
In-Reply-To: <2@b>

body

From user@domain  Fri Feb 22 15:06:23 2008
Message-Id: <5@b>
In-Reply-To: <2@b>

body

"""


def test_imaptest_thread5_in_reply_to_and_dummies_at_the_root() -> None:
    """Four appended; 1 and 2 expunged (their dummies, one child each, are promoted away);
    the fifth appended (dummy <2@b> now has two children and stays)."""
    all_five = mbox(THREAD5)
    assert threads(all_five[:4]) == b"(1 (2 4)(3))"
    assert threads(without(all_five[:4], 1, 2)) == b"(1)(2)"
    assert threads(without(all_five, 1, 2)) == b"(1)((2)(3))"


THREAD6 = """\
From user@domain  Fri Feb 22 15:06:23 2008
References: <a@b>

body

From user@domain  Fri Feb 22 15:06:24 2008
References: <a@b>

body
"""


def test_imaptest_thread6_two_children_of_a_missing_parent() -> None:
    assert threads(mbox(THREAD6)) == b"((1)(2))"


THREAD7 = """\
From user@domain  Fri Feb 22 15:06:23 2008
Message-Id: <a@b>

body1

From user@domain  Fri Feb 22 15:06:23 2008
Message-Id: <b@b>
References: <a@b>

body2

From user@domain  Fri Feb 22 15:06:23 2008
Message-Id: <c@b>
References: <b@b>

body3

From user@domain  Fri Feb 22 15:06:23 2008
Message-Id: <b@b>
References: <a@b>

body4 (2 duplicate)
"""

THREAD8 = """\
From user@domain  Fri Feb 22 15:06:23 2008
Message-Id: <a@b>

body1

From user@domain  Fri Feb 22 15:06:23 2008
Message-Id: <b@b>
References: <a@b>

body2

From user@domain  Fri Feb 22 15:06:23 2008
Message-Id: <b@b>
References: <a@b>

body3
"""


def test_imaptest_thread7_and_8_an_expunged_id_passes_to_its_duplicate() -> None:
    box = mbox(THREAD7)
    assert threads(box) == b"(1 (2 3)(4))"
    assert threads(without(box, 2)) == b"(1 3 2)"
    box = mbox(THREAD8)
    assert threads(box[:2]) == b"(1 2)"
    assert threads(without(box[:2], 2)) == b"(1)"
    assert threads(without(box, 2)) == b"(1 2)"


ORDERED2 = """\
From user@domain  Fri Feb 22 23:00:01 2008 +0200
Subject: a
Date: Fri, 22 Feb 2008 22:00:10 +0200

1

From user@domain  Fri Feb 22 23:00:02 2008 +0200
Date: Fri, 22 Feb 2008 22:00:09 +0200
Subject: b

2

From user@domain  Fri Feb 22 23:00:03 2008 +0200
Date: Fri, 22 Feb 2008 22:00:08 +0200
Subject: a

3

From user@domain  Fri Feb 22 23:00:04 2008 +0200
Date: Fri, 22 Feb 2008 22:00:07 +0200
Subject: b

4

From user@domain  Fri Feb 22 22:00:30 2008 +0200
Subject: a

5

From user@domain  Fri Feb 22 22:00:29 2008 +0200
Subject: b

6

From user@domain  Fri Feb 22 22:00:28 2008 +0200
Subject: a

7

From user@domain  Fri Feb 22 22:00:27 2008 +0200
Subject: b

8

"""


def test_imaptest_thread_orderedsubject() -> None:
    """Threads by base subject, each headed by its earliest message, in sent-date order
    (the Date field, else the internal date)."""
    assert threads(mbox(SORT_SUBJECT), "ORDEREDSUBJECT") == (
        b"(1)(2 (7)(12)(13))(3 (5)(11))(4)(6)(8)(9 10)(14)(15)"
    )
    assert threads(mbox(ORDERED2), "ORDEREDSUBJECT") == b"(4 (2)(8)(6))(3 (1)(7)(5))"


# --- the steps in detail ---------------------------------------------------------------------


def message(seq: int, *lines: str, minute: int = 0) -> Sortable:
    header = "".join(line + "\r\n" for line in lines).encode() + b"\r\n"
    return Sortable(seq, header + b"Date: Mon, 1 Jan 2024 10:%02d:00 +0000\r\n" % minute)


def test_references_chain_and_dummy_below_the_root_is_spliced_out() -> None:
    """b's References name a missing <x>: the dummy sits between a and b and goes, b
    becoming a's child (step 3); siblings sort by sent date (step 6)."""
    box = [
        message(1, "Message-ID: <a>", minute=1),
        message(2, "Message-ID: <b>", "References: <a> <x>", minute=3),
        message(3, "Message-ID: <c>", "In-Reply-To: <a>", minute=2),
    ]
    assert render(references(box)) == b"(1 (3)(2))"


def test_references_win_over_in_reply_to_and_its_first_id_counts() -> None:
    box = [
        message(1, "Message-ID: <a>"),
        message(2, "Message-ID: <b>"),
        message(3, "References: <b>", "In-Reply-To: <a>"),
        message(4, "In-Reply-To: <b> <a>"),
        message(5, "In-Reply-To: the message <a> of yesterday"),
    ]
    assert render(references(box)) == b"(1 5)(2 (3)(4))"


def test_subject_merge_rules() -> None:
    """Two originals with one subject get a dummy parent; a reply joins an original; two
    dummies merge their children; an empty subject never merges."""
    assert render(references([message(1, "Subject: x"), message(2, "Subject: x", minute=1)])) == (
        b"((1)(2))"
    )
    box = [message(1, "Subject: Re: x"), message(2, "Subject: x", minute=1)]
    assert render(references(box)) == b"(2 1)"  # the original heads, the reply is its child
    box = [
        message(1, "References: <p>", "Subject: y"),
        message(2, "References: <p>", "Subject: y", minute=1),
        message(3, "References: <q>", "Subject: Re: y", minute=2),
        message(4, "References: <q>", "Subject: y", minute=3),
    ]
    assert render(references(box)) == b"((1)(2)(3)(4))"
    assert render(references([message(1), message(2, "Subject: Re:", minute=1)])) == b"(1)(2)"


def test_self_references_and_loops_do_not_hang() -> None:
    box = [
        message(1, "Message-ID: <a>", "References: <a> <a>"),
        message(2, "Message-ID: <b>", "References: <c>"),
        message(3, "Message-ID: <c>", "References: <b>"),
    ]
    assert render(references(box)) == b"(1)(3 2)"  # c, filled in late, keeps b as its child


def test_a_reply_chain_thousands_deep_is_no_recursion() -> None:
    depth = 5000
    box = [message(1, "Message-ID: <m1>")] + [
        message(n, f"Message-ID: <m{n}>", f"In-Reply-To: <m{n - 1}>") for n in range(2, depth + 1)
    ]
    assert (
        render(references(box)) == b"(" + b" ".join(b"%d" % n for n in range(1, depth + 1)) + b")"
    )


def test_render_uses_the_given_numbers() -> None:
    a, b = Node(message(1)), Node(message(2))
    b.parent, a.children = a, [b]
    assert render([a], {1: 10, 2: 20}.__getitem__) == b"(10 20)"
    assert render([]) == b""


# --- the grammar ---------------------------------------------------------------------------


def test_thread_grammar() -> None:
    request = parse(Command((b"a UID THREAD references UTF-8 SINCE 1-Feb-2008 NOT DELETED",)))
    assert request.name == "THREAD" and request.uid
    assert request.args["algorithm"] == "REFERENCES"
    assert request.args["key"][1][1] == ("NOT", ("DELETED",))
    assert parse(Command((b"a THREAD ORDEREDSUBJECT us-ascii ALL",))).args["algorithm"] == (
        "ORDEREDSUBJECT"
    )


@pytest.mark.parametrize(
    ("line", "status"),
    [
        (b"a THREAD", "BAD"),
        (b"a THREAD REFS UTF-8 ALL", "BAD"),
        (b"a THREAD REFERENCES UTF-8", "BAD"),
        (b"a THREAD REFERENCES ISO-2022-JP ALL", "NO"),
    ],
)
def test_thread_grammar_errors(line: bytes, status: str) -> None:
    with pytest.raises(TaggedParseError) as caught:
        parse(Command((line,)))
    assert caught.value.status == status
