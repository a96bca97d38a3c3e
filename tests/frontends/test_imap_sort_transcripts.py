"""SORT, SORT=DISPLAY, ESORT and THREAD byte for byte over a real connection (the transcript
player of ``test_imap_transcripts``). The mailboxes are Dovecot imaptest's scripted tests
(``src/tests/sort-*``, ``thread*``, ``esort`` on release-2.3), appended as imaptest appends
them: each mbox message with its From_ line's date as the internal date.
"""

from __future__ import annotations

from datetime import datetime

from tests.frontends import test_imap_transcripts as transcripts
from tests.frontends.test_imap_transcripts import Step, Wire, Wires, logout
from tests.wire import test_imap_sort as sorts
from tests.wire import test_imap_thread as threads

server = transcripts.server  # the same deployment: tenant acme, users alice and bob
wires = transcripts.wires


def fill_dated(wire: Wire, mailbox: str, mbox: str) -> int:
    """CREATE the mailbox and APPEND each message of the mbox with its internal date."""
    found = sorts.messages(mbox)
    steps: list[Step] = [(f"f0 CREATE {mailbox}\r\n".encode(), [b"f0 OK CREATE completed"])]
    steps += [append(f"f{uid}", mailbox, uid, message) for uid, message in enumerate(found, 1)]
    wire.run(steps)
    return len(found)


def append(tag: str, mailbox: str, uid: int, message: tuple[datetime, bytes]) -> Step:
    """APPEND one message with its internal date (LITERAL+) to a mailbox not selected."""
    when, raw = message
    date = when.strftime("%d-%b-%Y %H:%M:%S +0000").encode()
    return (
        b'%s APPEND %s "%s" {%d+}\r\n%s\r\n' % (tag.encode(), mailbox.encode(), date, len(raw), raw),
        [b"%s OK [APPENDUID ${%s} %d] APPEND completed" % (tag.encode(), mailbox.lower().encode(), uid)],
    )  # fmt: skip


def select(
    tag: str,
    mailbox: str,
    exists: int,
    uidnext: int,
    unseen: int | None = 1,
    *,
    closed: bool = True,
) -> Step:
    """SELECT, exact but for the values that vary (UIDVALIDITY, HIGHESTMODSEQ, RECENT);
    ``closed``: another mailbox was selected, so OK [CLOSED] comes first (RFC 7162 3.2.11)."""
    name = mailbox.lower().encode()
    lines = [
        *([b"* OK [CLOSED] previous mailbox closed"] if closed else []),
        transcripts.SELECT_FLAGS,
        transcripts.PERMANENT_FLAGS,
        b"* %d EXISTS" % exists,
        b"* ${recent_%s} RECENT" % tag.encode(),
        b"* OK [UIDVALIDITY ${%s}] UIDs valid" % name,
        b"* OK [UIDNEXT %d] predicted next UID" % uidnext,
        b"* OK [HIGHESTMODSEQ ${%s_modseq_%s}] modification sequence" % (name, tag.encode()),
    ]
    if unseen is not None:
        lines.append(b"* OK [UNSEEN %d] first unseen" % unseen)
    lines.append(b"%s OK [READ-WRITE] selected" % tag.encode())
    return (f"{tag} SELECT {mailbox}\r\n".encode(), lines)


def answer(tag: str, command: str, line: bytes) -> Step:
    """One command with one untagged line and its tagged OK."""
    verb = command.upper().removeprefix("UID ").split(" ", 1)[0]
    return (f"{tag} {command}\r\n".encode(), [line, f"{tag} OK {verb} completed".encode()])


def expunge(tag: str, seqs: str, gone: list[int]) -> list[Step]:
    return [
        (f"{tag}a STORE {seqs} +FLAGS.SILENT (\\Deleted)\r\n".encode(), [f"{tag}a OK STORE completed".encode()]),
        (f"{tag}b EXPUNGE\r\n".encode(),
         [b"* %d EXPUNGE" % n for n in gone] + [f"{tag}b OK EXPUNGE completed".encode()]),
    ]  # fmt: skip


def test_imaptest_sort_subject_and_uid_sort(wires: Wires) -> None:
    """imaptest's sort-subject, then UID SORT after an expunge answers UIDs, and the search
    criteria narrow what is sorted."""
    wire = wires.signed_in("alice")
    count = fill_dated(wire, "SortSubject", sorts.SORT_SUBJECT)
    wire.run([
        select("s1", "SortSubject", exists=count, uidnext=count + 1, closed=False),
        answer("a1", "SORT (SUBJECT) US-ASCII ALL", b"* SORT 9 10 1 14 3 5 11 6 15 2 7 12 13 8 4"),
        answer("a2", "SORT (REVERSE SUBJECT) US-ASCII ALL",
               b"* SORT 4 8 2 7 12 13 15 6 3 5 11 14 1 9 10"),
        answer("a3", "sort (subject reverse size) us-ascii all",
               b"* SORT 10 9 1 14 11 5 3 6 15 13 12 7 2 8 4"),
        answer("a4", "SORT (SUBJECT) UTF-8 SUBJECT c", b"* SORT 2 7 12 13"),
        answer("a5", "SORT (SUBJECT) UTF-8 NOT SUBJECT c", b"* SORT 9 10 1 14 3 5 11 6 15 8 4"),
        answer("a6", "SORT (REVERSE SUBJECT) UTF-8 LARGER 100", b"* SORT 12 13 11"),
        *expunge("b1", "1", [1]),
        answer("c1", "UID SORT (SUBJECT) US-ASCII ALL", b"* SORT 9 10 14 3 5 11 6 15 2 7 12 13 8 4"),
        answer("c2", "SORT (SUBJECT) US-ASCII ALL", b"* SORT 8 9 13 2 4 10 5 14 1 6 11 12 7 3"),
        answer("c3", "UID SORT (SUBJECT) US-ASCII UID 1:3", b"* SORT 3 2"),
        answer("c4", "SORT (SUBJECT) US-ASCII DELETED", b"* SORT"),
    ])  # fmt: skip
    logout(wire)


def test_imaptest_sort_arrival_date_size_and_addresses(wires: Wires) -> None:
    wire = wires.signed_in("alice")
    scripts: list[tuple[str, str, list[tuple[str, str]]]] = [
        ("SortArrival", sorts.SORT_ARRIVAL, [
            ("(arrival)", "1 3 2 4 5"), ("(reverse arrival)", "2 4 5 3 1"),
            ("(arrival reverse size)", "1 3 5 4 2"),
        ]),
        ("SortDate", sorts.SORT_DATE, [
            ("(date)", "1 3 7 5 2 4 6"), ("(reverse date)", "2 4 6 5 3 7 1"),
            ("(date reverse size)", "1 7 3 5 6 4 2"),
        ]),
        ("SortSize", sorts.SORT_SIZE, [
            ("(size)", "1 8 2 6 3 5 4 7"), ("(reverse size)", "4 7 3 5 2 6 1 8"),
            ("(size reverse arrival)", "8 1 6 2 5 3 7 4"),
        ]),
        ("SortAddresses", sorts.SORT_ADDRESSES, [
            ("(from)", "3 1 2"), ("(to)", "3 1 2"), ("(cc)", "3 1 2"),
            ("(reverse from)", "1 2 3"), ("(reverse to)", "1 2 3"), ("(reverse cc)", "1 2 3"),
            ("(from reverse arrival)", "3 2 1"), ("(to reverse arrival)", "3 2 1"),
            ("(cc reverse arrival)", "3 2 1"),
        ]),
        ("SortDisplayFrom", sorts.SORT_DISPLAY_FROM, [
            ("(displayfrom)", "2 3 4 1 5"), ("(reverse displayfrom)", "5 1 4 3 2"),
        ]),
        ("SortDisplayTo", sorts.SORT_DISPLAY_TO, [
            ("(displayto)", "6 2 3 8 4 1 5 7"), ("(reverse displayto)", "7 5 1 4 8 3 2 6"),
        ]),
    ]  # fmt: skip
    for number, (mailbox, mbox, expected) in enumerate(scripts):
        count = fill_dated(wire, mailbox, mbox)
        steps = [select(f"s{number}", mailbox, exists=count, uidnext=count + 1, closed=number > 0)]
        for index, (criteria, order) in enumerate(expected):
            steps.append(answer(f"t{number}{index}", f"sort {criteria} us-ascii all",
                                b"* SORT " + order.encode()))  # fmt: skip
        wire.run(steps)
    logout(wire)


def test_imaptest_esort_answers_esearch_in_sort_order(wires: Wires) -> None:
    """imaptest's esort (arrival order is sequence order there), and on sort-arrival, where
    it is not: MIN and MAX are the first and last in sort order, ALL keeps the order."""
    wire = wires.signed_in("bob")
    fill_dated(wire, "ESortPlain", sorts.SORT_SIZE)
    fill_dated(wire, "ESort", sorts.SORT_ARRIVAL)
    wire.run([
        select("s1", "ESortPlain", exists=8, uidnext=9, closed=False),
        answer("a1", "sort return (min) (arrival) us-ascii 1:5", b'* ESEARCH (TAG "a1") MIN 1'),
        answer("a2", "sort return (max) (arrival) us-ascii 1:5", b'* ESEARCH (TAG "a2") MAX 5'),
        answer("a3", "sort return (all) (arrival) us-ascii 1:5", b'* ESEARCH (TAG "a3") ALL 1:5'),
        answer("a4", "sort return (count) (arrival) us-ascii 1:5", b'* ESEARCH (TAG "a4") COUNT 5'),
        select("s2", "ESort", exists=5, uidnext=6),
        answer("b1", "SORT RETURN (MIN MAX COUNT ALL) (ARRIVAL) US-ASCII ALL",
               b'* ESEARCH (TAG "b1") MIN 1 MAX 5 ALL 1,3,2,4:5 COUNT 5'),
        answer("b2", "UID SORT RETURN () (REVERSE ARRIVAL) US-ASCII ALL",
               b'* ESEARCH (TAG "b2") UID ALL 2,4:5,3,1'),
        answer("b3", "SORT RETURN (MIN MAX COUNT) (SIZE) US-ASCII LARGER 1000",
               b'* ESEARCH (TAG "b3") COUNT 0'),
    ])  # fmt: skip
    logout(wire)


def test_sort_with_modseq_reports_the_highest(wires: Wires) -> None:
    """A MODSEQ search key in SORT (RFC 7162 3.1.5): ``(MODSEQ n)`` after the numbers."""
    wire = wires.signed_in("bob")
    fill_dated(wire, "SortModseq", sorts.SORT_ADDRESSES)
    wire.run([
        (b"e1 ENABLE CONDSTORE\r\n", [b"* ENABLED CONDSTORE", b"e1 OK ENABLE completed"]),
        select("s1", "SortModseq", exists=3, uidnext=4, closed=False),
        (b"a1 STORE 2 +FLAGS.SILENT (\\Flagged)\r\n",
         [b"* 2 FETCH (UID 2 MODSEQ (${flagged}))", b"a1 OK STORE completed"]),
    ])  # fmt: skip
    flagged = wire.number("flagged")
    wire.run([
        answer("a2", f"SORT (FROM) US-ASCII MODSEQ {flagged}", b"* SORT 2 (MODSEQ ${flagged})"),
        answer("a3", "SORT RETURN (COUNT) (FROM) US-ASCII MODSEQ 1",
               b'* ESEARCH (TAG "a3") COUNT 3 MODSEQ ${flagged}'),
        answer("a4", f"SORT (FROM) US-ASCII MODSEQ {flagged + 1}", b"* SORT"),
    ])  # fmt: skip
    logout(wire)


def test_imaptest_thread_references(wires: Wires) -> None:
    """imaptest's thread ... thread8, expunges and appends included."""
    wire = wires.signed_in("alice")
    fill_dated(wire, "Thread1", threads.THREAD)
    for number in (2, 3, 4, 6, 7):
        fill_dated(wire, f"Thread{number}", getattr(threads, f"THREAD{number}"))
    wire.run([
        select("s1", "Thread1", exists=3, uidnext=4, closed=False),
        answer("a1", "thread references us-ascii all", b"* THREAD (3 2)(1)"),
        *expunge("a2", "1", [1]),
        answer("a3", "thread references us-ascii all", b"* THREAD (2 1)"),
        answer("a4", "UID THREAD REFERENCES US-ASCII ALL", b"* THREAD (3 2)"),
        select("s2", "Thread2", exists=2, uidnext=3),
        answer("b1", "thread references us-ascii all", b"* THREAD (1)(2)"),
        select("s3", "Thread3", exists=2, uidnext=3),
        answer("b2", "thread references us-ascii all", b"* THREAD (1 2)"),
        select("s4", "Thread4", exists=2, uidnext=3),
        answer("b3", "thread references us-ascii all", b"* THREAD (1 2)"),
        select("s6", "Thread6", exists=2, uidnext=3),
        answer("b4", "thread references us-ascii all", b"* THREAD ((1)(2))"),
        answer("b5", "THREAD REFERENCES UTF-8 DELETED", b"* THREAD"),
        select("s7", "Thread7", exists=4, uidnext=5),
        answer("c1", "thread references us-ascii all", b"* THREAD (1 (2 3)(4))"),
        *expunge("c2", "2", [2]),
        answer("c3", "thread references us-ascii all", b"* THREAD (1 3 2)"),
    ])  # fmt: skip
    logout(wire)


def test_imaptest_thread5_and_thread8_append_after_expunge(wires: Wires) -> None:
    """Messages appended to the selected mailbox after an expunge thread with the rest."""
    wire = wires.signed_in("bob")
    five = sorts.messages(threads.THREAD5)
    eight = sorts.messages(threads.THREAD8)

    wire.run([(b"c0 CREATE Thread5\r\n", [b"c0 OK CREATE completed"])])
    wire.run(
        [append(f"p{uid}", "Thread5", uid, message) for uid, message in enumerate(five[:4], 1)]
    )
    wire.run([
        select("s5", "Thread5", exists=4, uidnext=5, closed=False),
        answer("a1", "thread references us-ascii all", b"* THREAD (1 (2 4)(3))"),
        *expunge("a2", "1,2", [2, 1]),
        answer("a3", "thread references us-ascii all", b"* THREAD (1)(2)"),
        (b"a4 UNSELECT\r\n", [b"a4 OK UNSELECT completed"]),
        append("a5", "Thread5", 5, five[4]),
        select("s6", "Thread5", exists=3, uidnext=6, closed=False),
        answer("a6", "thread references us-ascii all", b"* THREAD (1)((2)(3))"),
    ])  # fmt: skip
    fill_dated(wire, "Thread8", threads.THREAD8.rsplit("From ", 1)[0])
    wire.run([
        select("s8", "Thread8", exists=2, uidnext=3),
        answer("b1", "thread references us-ascii all", b"* THREAD (1 2)"),
        *expunge("b2", "2", [2]),
        answer("b3", "thread references us-ascii all", b"* THREAD (1)"),
        (b"b4 UNSELECT\r\n", [b"b4 OK UNSELECT completed"]),
        append("b5", "Thread8", 3, eight[2]),
        select("s9", "Thread8", exists=2, uidnext=4, closed=False),
        answer("b6", "thread references us-ascii all", b"* THREAD (1 2)"),
    ])  # fmt: skip
    logout(wire)


def test_imaptest_thread_orderedsubject(wires: Wires) -> None:
    wire = wires.signed_in("alice")
    fill_dated(wire, "Ordered", sorts.SORT_SUBJECT)
    fill_dated(wire, "Ordered2", threads.ORDERED2)
    wire.run([
        select("s1", "Ordered", exists=15, uidnext=16, closed=False),
        answer("a1", "thread orderedsubject us-ascii all",
               b"* THREAD (1)(2 (7)(12)(13))(3 (5)(11))(4)(6)(8)(9 10)(14)(15)"),
        select("s2", "Ordered2", exists=8, uidnext=9),
        answer("a2", "thread orderedsubject us-ascii all", b"* THREAD (4 (2)(8)(6))(3 (1)(7)(5))"),
        answer("a3", "UID THREAD ORDEREDSUBJECT UTF-8 SUBJECT b", b"* THREAD (4 (2)(8)(6))"),
    ])  # fmt: skip
    logout(wire)


def test_sort_and_thread_errors(wires: Wires) -> None:
    """Outside the selected state BAD; grammar errors BAD; an unknown charset NO
    [BADCHARSET]; the session carries on."""
    wire = wires.signed_in("bob")
    fill_dated(wire, "SortErrors", sorts.SORT_ADDRESSES)
    wire.run([
        (b"a1 SORT (ARRIVAL) UTF-8 ALL\r\n", [b"a1 BAD SORT not allowed when authenticated"]),
        (b"a2 UID THREAD REFERENCES UTF-8 ALL\r\n", [b"a2 BAD THREAD not allowed when authenticated"]),
        select("s1", "SortErrors", exists=3, uidnext=4, closed=False),
        (b"b1 SORT (BOGUS) UTF-8 ALL\r\n", [b"b1 BAD unknown sort key BOGUS"]),
        (b"b2 SORT (ARRIVAL)\r\n", [b"b2 BAD expected ' ', found ''"]),
        (b"b3 SORT (ARRIVAL) KOI8-R ALL\r\n",
         [b"b3 NO [BADCHARSET (UTF-8 US-ASCII)] charset koi8-r is not supported"]),
        (b"b4 THREAD REFS UTF-8 ALL\r\n", [b"b4 BAD unknown threading algorithm REFS"]),
        (b"b5 THREAD REFERENCES UTF-8 FROBNICATE\r\n", [b"b5 BAD unknown search key FROBNICATE"]),
        (b"b6 SORT RETURN (SAVE ALL) (ARRIVAL) UTF-8 ALL\r\n",
         [b'* ESEARCH (TAG "b6") ALL 1:3', b"b6 OK SORT completed"]),
        answer("b7", "SORT (CC) UTF-8 ALL", b"* SORT 3 1 2"),
    ])  # fmt: skip
    logout(wire)
