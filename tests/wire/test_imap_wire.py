"""The IMAP wire layer on byte strings: framing with literals, the grammar, responses."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from enclave.imap.wire import mutf7, response
from enclave.imap.wire.commands import (
    FetchItem,
    Resync,
    TaggedParseError,
    UnknownCommand,
    parse,
)
from enclave.imap.wire.framing import (
    Command,
    CommandFramer,
    LineTooLong,
    LiteralBudget,
    NeedContinuation,
    Refused,
)
from enclave.imap.wire.search import CharsetNotSupported, matches


def frame(data: bytes, **kw: int) -> list[object]:
    framer = CommandFramer(**kw)
    framer.feed(data)
    events = []
    while (event := framer.next_event()) is not None:
        events.append(event)
    return events


def one(data: bytes):  # type: ignore[no-untyped-def]
    [command] = [e for e in frame(data) if isinstance(e, Command)]
    return parse(command)


# --- framing ---------------------------------------------------------------------------


def test_lines_and_partial_input() -> None:
    framer = CommandFramer()
    framer.feed(b"a1 NOOP\r\na2 CAPA")
    assert framer.next_event() == Command((b"a1 NOOP",))
    assert framer.next_event() is None
    framer.feed(b"BILITY\r\n")
    assert framer.next_event() == Command((b"a2 CAPABILITY",))


def test_synchronising_literal_asks_for_continuation() -> None:
    framer = CommandFramer()
    framer.feed(b"a LOGIN {5}\r\n")
    assert framer.next_event() == NeedContinuation(5)
    assert framer.next_event() is None
    framer.feed(b"alice {6+}\r\nsecret\r\n")
    assert framer.next_event() == Command((b"a LOGIN {5}", b"alice", b" {6+}", b"secret", b""))
    request = parse(Command((b"a LOGIN {5}", b"alice", b" {6+}", b"secret", b"")))
    assert request.args == {"user": b"alice", "password": b"secret"}


def test_oversized_literals_are_refused_before_reading() -> None:
    events = frame(b"a APPEND INBOX {999999}\r\nb NOOP\r\n", max_literal=1000)
    assert events == [Refused(b"a", "literal of 999999 octets is over the limit", 999999),
                      Command((b"b NOOP",))]  # fmt: skip
    # A non-synchronising one is swallowed (in bounded memory) and the session goes on.
    framer = CommandFramer(max_literal=10)
    framer.feed(b"a APPEND INBOX {20+}\r\n" + b"x" * 15)
    assert isinstance(framer.next_event(), Refused)
    framer.feed(b"x" * 5 + b" trailing\r\nb NOOP\r\n")
    assert framer.next_event() == Command((b"b NOOP",))


def test_overlong_line() -> None:
    events = frame(b"a " + b"x" * 200 + b"\r\nb NOOP\r\n", max_line=100)
    assert events == [LineTooLong(b"a"), Command((b"b NOOP",))]


def test_chained_literals_are_bounded_per_command() -> None:
    # Each literal fits, but one command may not chain them without end (the whole command
    # is bounded): the refusal comes before the client sends the literal that is too many.
    framer = CommandFramer(max_literal=100, max_literals=150)
    framer.feed(b"a XYZZY {100}\r\n")
    assert framer.next_event() == NeedContinuation(100)
    framer.feed(b"x" * 100 + b" {100}\r\n")
    refused = framer.next_event()
    assert isinstance(refused, Refused) and refused.tag == b"a" and refused.code == "TOOBIG"
    assert not refused.close
    framer.feed(b"b NOOP\r\n")
    assert framer.next_event() == Command((b"b NOOP",))
    # Non-synchronising ones are dropped in bounded memory and the session goes on...
    events = frame(
        b"a XYZZY {100+}\r\n" + b"x" * 100 + b" {100+}\r\n" + b"y" * 100 + b" {9+}\r\n"
        + b"z" * 9 + b"\r\nb NOOP\r\n", max_literal=100, max_literals=150, max_discard=1000,
    )  # fmt: skip
    assert [type(e) for e in events] == [Refused, Command] and events[1] == Command((b"b NOOP",))


def test_absurd_non_synchronising_literal_ends_the_connection() -> None:
    framer = CommandFramer(max_literal=8192, max_discard=65536)
    framer.feed(b"a1 XYZZY {20000000+}\r\n" + b"x" * 65536)
    refused = framer.next_event()
    assert isinstance(refused, Refused) and refused.close and refused.code == "TOOBIG"
    framer.feed(b"x" * 65536 + b"\r\nb NOOP\r\n")
    assert framer.next_event() is None  # nothing more: the session hangs up


def test_literal_budget_is_shared_by_every_connection() -> None:
    budget = LiteralBudget(150)
    first = CommandFramer(max_literal=100, budget=budget)
    second = CommandFramer(max_literal=100, budget=budget)
    first.feed(b"a APPEND INBOX {100}\r\n")
    assert first.next_event() == NeedContinuation(100)
    second.feed(b"b APPEND INBOX {100}\r\n")
    refused = second.next_event()
    assert isinstance(refused, Refused) and refused.code == "LIMIT" and refused.tag == b"b"
    first.feed(b"m" * 100 + b"\r\n")
    assert isinstance(first.next_event(), Command)
    assert budget.used == 100  # held while the session works on the command
    assert first.next_event() is None  # asking for the next one gives it back
    assert budget.used == 0
    second.feed(b"c APPEND INBOX {100}\r\n")
    assert second.next_event() == NeedContinuation(100)
    second.close()  # a connection that ends mid-literal gives its share back too
    assert budget.used == 0
    third = CommandFramer(budget=budget)
    third.feed(b"d X {10}\r\n")
    third.next_event()
    del third
    assert budget.used == 0


def test_limits_rise_after_login() -> None:
    framer = CommandFramer(max_literal=8192, max_literals=8192)
    framer.feed(b"a APPEND INBOX {10000}\r\n")
    assert isinstance(framer.next_event(), Refused)
    framer.set_limits(max_literal=1 << 20, max_literals=2 << 20)
    framer.feed(b"b APPEND INBOX {10000}\r\n")
    assert framer.next_event() == NeedContinuation(10000)


# --- grammar ---------------------------------------------------------------------------


def test_rfc3501_fetch_examples() -> None:
    request = one(b"A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])\r\n")
    assert request.name == "FETCH" and request.args["sequence"] == ((2, 4),)
    assert request.args["items"] == [
        FetchItem("FLAGS"), FetchItem("BODY", section="HEADER.FIELDS (DATE FROM)"),
    ]  # fmt: skip
    request = one(
        b"a UID FETCH 1:* (UID BODY.PEEK[1.2.MIME]<0.100> RFC822.SIZE) (CHANGEDSINCE 7)\r\n"
    )
    assert request.uid and request.args["sequence"] == ((1, None),)
    assert request.args["items"][1] == FetchItem(
        "BODY", section="1.2.MIME", peek=True, partial=(0, 100)
    )
    assert request.args["items"][1].label == "BODY[1.2.MIME]<0>"
    assert request.args["changed_since"] == 7
    assert [i.name for i in one(b"x FETCH 1 ALL\r\n").args["items"]] == [
        "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE",
    ]  # fmt: skip


def test_store_forms() -> None:
    request = one(b"A003 STORE 2:4 +FLAGS (\\Deleted)\r\n")
    assert request.args["mode"] == "add" and request.args["flags"] == ["\\Deleted"]
    request = one(b"a UID STORE 5 (UNCHANGEDSINCE 12) FLAGS.SILENT \\Seen $Label1\r\n")
    assert request.args["silent"] and request.args["unchanged_since"] == 12
    assert request.args["flags"] == ["\\Seen", "$Label1"] and request.args["mode"] == "set"


def test_mailbox_commands() -> None:
    assert one(b'a SELECT "Sent Items" (CONDSTORE)\r\n').args == {
        "mailbox": b"Sent Items", "condstore": True, "qresync": None,
    }  # fmt: skip
    resync = one(b"a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n")
    assert resync.args["qresync"] == Resync(
        67890007, 20050715194045000, ((41, 41), (43, 211), (214, 541))
    )
    hinted = one(b"a EXAMINE INBOX (QRESYNC (1 2 1:* (1:3 4:6)) CONDSTORE)\r\n")
    assert hinted.args["qresync"] == Resync(1, 2, ((1, None),)) and hinted.args["condstore"]
    for bad in (b"a SELECT INBOX (QRESYNC)\r\n", b"a SELECT INBOX (FOO)\r\n",
                b"a SELECT INBOX (QRESYNC (0 1))\r\n"):  # fmt: skip
        with pytest.raises(TaggedParseError):
            one(bad)
    fetched = one(b"a UID FETCH 1:* FLAGS (CHANGEDSINCE 9 VANISHED)\r\n")
    assert fetched.args["changed_since"] == 9 and fetched.args["vanished"]
    with pytest.raises(TaggedParseError):
        one(b"a UID FETCH 1:* FLAGS (VANISHED)\r\n")
    listed = one(
        b'a LIST (SUBSCRIBED) "" ("INBOX" "Arch*") RETURN (SPECIAL-USE STATUS (MESSAGES UNSEEN))\r\n'
    )
    assert listed.args["selection"] == ["SUBSCRIBED"]
    assert listed.args["patterns"] == [b"INBOX", b"Arch*"]
    assert listed.args["returns"] == ["SPECIAL-USE", "STATUS"]
    assert listed.args["status"] == ["MESSAGES", "UNSEEN"]
    assert one(b'a LIST "" %\r\n').args["patterns"] == [b"%"]
    assert one(b"a STATUS INBOX (UIDNEXT MESSAGES)\r\n").args["items"] == ["UIDNEXT", "MESSAGES"]


def test_append_with_flags_and_date() -> None:
    request = parse(
        Command((b'a APPEND Drafts (\\Draft) "05-Jan-2026 10:00:00 +0100" {3+}', b"abc", b""))
    )
    assert request.args["flags"] == ["\\Draft"] and request.args["message"] == b"abc"
    assert request.args["date"] == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_errors_keep_the_tag() -> None:
    with pytest.raises(TaggedParseError) as info:
        one(b"t1 FETCH 1 (NOPE)\r\n")
    assert info.value.tag == "t1" and "NOPE" in str(info.value)
    with pytest.raises(UnknownCommand) as unknown:
        one(b"t2 FROBNICATE\r\n")
    assert unknown.value.tag == "t2"
    for bad in (b"t3 FETCH 0 FLAGS\r\n", b"t4 SELECT\r\n", b't5 LOGIN "unterminated\r\n',
                b"t6 STORE 1 FLAGZ (\\Seen)\r\n", b"t7 UID NOOP\r\n", b"t8 NOOP extra\r\n"):  # fmt: skip
        with pytest.raises(TaggedParseError):
            one(bad)


def test_search_parsing_and_matching() -> None:
    request = one(b'a UID SEARCH RETURN (MIN COUNT) CHARSET UTF-8 OR FROM "bob" SUBJECT {6+}\r\n'
                  b"gr\xc3\xbc\xc3\x9f UNSEEN SINCE 1-Feb-2026 NOT 2:3\r\n")  # fmt: skip
    assert request.args["returns"] == ["MIN", "COUNT"]
    key = request.args["key"]

    class Msg:
        seq, uid, size, modseq = 1, 10, 500, 3
        flags = frozenset({"\\Answered"})
        internal_date = datetime(2026, 2, 2, tzinfo=UTC)

        def header(self, name: str) -> list[str]:
            return {"FROM": ["Bob <bob@x.example>"], "SUBJECT": ["hi"]}.get(name.upper(), [])

        def body_text(self) -> str:
            return ""

        def sent(self) -> date | None:
            return None

    assert matches(key, Msg(), largest_seq=5, largest_uid=20)
    Msg.flags = frozenset({"\\Seen"})
    assert not matches(key, Msg(), largest_seq=5, largest_uid=20)
    with pytest.raises(TaggedParseError) as info:
        one(b"a SEARCH CHARSET KOI8-R ALL\r\n")
    assert (info.value.status, info.value.code) == ("NO", CharsetNotSupported.code)


# --- responses -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "keys",
    [b"(" * 1000 + b"ALL" + b")" * 1000, b"NOT " * 1000 + b"ALL", b"OR ALL " * 1000 + b"ALL"],
    ids=["parentheses", "not", "or"],
)
def test_search_nested_1000_levels_gets_a_tagged_bad(keys: bytes) -> None:
    with pytest.raises(TaggedParseError) as info:
        parse(Command((b"a7 SEARCH " + keys,)))
    assert info.value.tag == "a7" and info.value.status == "BAD"
    assert "nested" in str(info.value)


def test_search_nesting_within_the_bound_still_works() -> None:
    request = parse(Command((b"a SEARCH " + b"(" * 50 + b"NOT NOT SEEN" + b")" * 50,)))
    key = request.args["key"]
    for _ in range(51):
        assert key[0] == "AND"
        [key] = key[1]
    assert key == ("NOT", ("NOT", ("SEEN",)))


def test_strings_quote_or_become_literals() -> None:
    assert response.string('say "hi"\\') == b'"say \\"hi\\"\\\\"'
    assert response.string("caf\u00e9") == b"{5}\r\ncaf\xc3\xa9"
    assert response.string(None) == b"NIL"
    assert response.sequence_set([5, 1, 2, 3, 9, 10]) == b"1:3,5,9:10"
    moment = datetime(1996, 7, 17, 2, 44, 25, tzinfo=timezone(-timedelta(hours=7)))
    assert response.date_time(moment) == b'"17-Jul-1996 02:44:25 -0700"'
    assert response.tagged("a1", "OK", "done", "READ-WRITE") == b"a1 OK [READ-WRITE] done\r\n"


def test_modified_utf7_round_trip() -> None:
    for name, wire in [("INBOX", b"INBOX"), ("Entw\u00fcrfe", b"Entw&APw-rfe"), ("A&B", b"A&-B"),
                       ("\u65e5\u672c\u8a9e", b"&ZeVnLIqe-")]:  # fmt: skip
        assert mutf7.encode(name) == wire and mutf7.decode(wire) == name
    with pytest.raises(ValueError):
        mutf7.decode(b"bad&ZeV")


@pytest.mark.parametrize(
    "wire",
    [
        b"&AC4ALg-",  # ".." spelt in base64
        b"&ACo-",  # "*"
        b"&ACU-",  # "%"
        b"a&AGEAZQ-",  # "ae": printable ASCII may never be encoded
        b"&AOQ-&APY-",  # two shifts where one would do ("&AOQA9g-")
        b"&AOR-",  # padding bits set
        b"&AOQA-",  # a stray sextet after the last character
        b"&2D0-",  # half a surrogate pair
        b"&AOQ/-",  # "/" is not in modified BASE64
        b"Inbox&AOQ",  # never shifted back
    ],
)
def test_non_canonical_modified_utf7_is_refused(wire: bytes) -> None:
    with pytest.raises(ValueError):
        mutf7.decode(wire)


def test_canonical_modified_utf7_still_decodes() -> None:
    assert (
        mutf7.decode(b"~peter/mail/&U,BTFw-/&ZeVnLIqe-")
        == "~peter/mail/\u53f0\u5317/\u65e5\u672c\u8a9e"
    )
    assert mutf7.decode(b"&AOQA9g-&-") == "\u00e4\u00f6&"
    assert mutf7.decode(b"&2D3eAA-") == "\U0001f600"  # a surrogate pair


def test_list_patterns_keep_what_is_not_modified_utf7() -> None:
    # imaptest's list test: ordinary atom characters, "&" among them, match literally.
    atoms = b"!#$&'+,-.0123456789:;<=>?@^_`|[}%*"
    assert mutf7.decode_pattern(atoms) == atoms.decode()
    assert mutf7.decode_pattern(b"Entw&APw-rfe/%") == "Entw\u00fcrfe/%"
    assert mutf7.decode_pattern(b"A&-B*") == "A&B*"
    # A non-canonical sequence is text, never the wildcard it would decode to.
    assert mutf7.decode_pattern(b"&ACo-") == "&ACo-"
    assert mutf7.decode_pattern(b"x&") == "x&"
    with pytest.raises(ValueError):
        mutf7.decode_pattern(b"caf\xc3\xa9")  # names are 7-bit: no pattern has 8-bit bytes
