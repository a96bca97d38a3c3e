"""IMAP conformance faults found by Dovecot's imaptest, each replayed as an exact transcript
(the helpers and the shared deployment come from ``test_imap_transcripts``)."""

from __future__ import annotations

from tests.frontends import test_imap_transcripts as transcripts
from tests.frontends.test_imap_transcripts import (
    NOTE,
    PERMANENT_FLAGS,
    SELECT_FLAGS,
    Wires,
    fill,
    logout,
    select,
)

server = transcripts.server
wires = transcripts.wires

FROM_WITH_COMMENTS = (
    b"From: <user-from (comment)@ (comment) domain.org>\r\n"
    b"To: RealTo <user-to@domain.org>\r\n"
    b"Subject: commented\r\n\r\nbody\r\n"
)


def examine(tag: str, mailbox: str, exists: int, uidnext: int, recent: int) -> transcripts.Step:
    name = mailbox.lower().encode()
    return (f"{tag} EXAMINE {mailbox}\r\n".encode(), [
        SELECT_FLAGS, b"* OK [PERMANENTFLAGS ()] flags", b"* %d EXISTS" % exists,
        b"* %d RECENT" % recent, b"* OK [UIDVALIDITY ${%s}] UIDs valid" % name,
        b"* OK [UIDNEXT %d] predicted next UID" % uidnext,
        b"* OK [HIGHESTMODSEQ ${%s_modseq}] modification sequence" % name,
        b"* OK [UNSEEN 1] first unseen", f"{tag} OK [READ-ONLY] selected".encode(),
    ])  # fmt: skip


def test_recent_is_reported_to_the_first_session_only(wires: Wires) -> None:
    """\\Recent (RFC 3501 2.3.2): EXAMINE shows it without taking it, STATUS counts it, the
    first SELECT takes it (later ones see none), a message copied into the selected mailbox
    is recent for the session that hears of it, and SEARCH RECENT, NEW and OLD follow."""
    first, second = wires.signed_in("alice"), wires.signed_in("alice")
    fill(first, "Recents", NOTE, NOTE)
    first.run([
        examine("a1", "Recents", exists=2, uidnext=3, recent=2),
        (b"a2 STATUS Recents (MESSAGES RECENT UNSEEN)\r\n",
         [b'* STATUS "Recents" (MESSAGES 2 RECENT 2 UNSEEN 2)', b"a2 OK STATUS completed"]),
        select("a3", "Recents", exists=2, uidnext=3, unseen=1, recent=2, closed=True),
        (b"a4 STATUS Recents (RECENT)\r\n",
         [b'* STATUS "Recents" (RECENT 0)', b"a4 OK STATUS completed"]),
    ])  # fmt: skip
    second.run([select("b1", "Recents", exists=2, uidnext=3, unseen=1, recent=0)])
    first.run([
        (b"a5 STORE 1 +FLAGS (\\Seen)\r\n",
         [b"* 1 FETCH (FLAGS (\\Recent \\Seen))", b"a5 OK STORE completed"]),
        (b"a6 SEARCH RECENT\r\n", [b"* SEARCH 1 2", b"a6 OK SEARCH completed"]),
        (b"a7 SEARCH NEW\r\n", [b"* SEARCH 2", b"a7 OK SEARCH completed"]),
        (b"a8 SEARCH OLD\r\n", [b"* SEARCH", b"a8 OK SEARCH completed"]),
    ])  # fmt: skip
    second.run([
        (b"b2 NOOP\r\n", [b"* 1 FETCH (UID 1 FLAGS (\\Seen))", b"b2 OK NOOP completed"]),
        (b"b3 SEARCH OLD\r\n", [b"* SEARCH 1 2", b"b3 OK SEARCH completed"]),
        (b"b4 COPY 1:2 Recents\r\n", [b"b4 OK [COPYUID ${recents} 1:2 3:4] COPY completed"]),
        (b"b5 NOOP\r\n", [b"* 4 EXISTS", b"* 2 RECENT", b"b5 OK NOOP completed"]),
        (b"b6 FETCH 3:4 FLAGS\r\n", [
            b"* 3 FETCH (FLAGS (\\Recent \\Seen))", b"* 4 FETCH (FLAGS (\\Recent))",
            b"b6 OK FETCH completed",
        ]),
    ])  # fmt: skip
    first.run([(b"c1 NOOP\r\n", [b"* 4 EXISTS", b"* 2 RECENT", b"c1 OK NOOP completed"])])
    logout(first)
    logout(second)


def test_uidvalidity_changes_when_a_name_is_deleted_and_created_again(wires: Wires) -> None:
    """UIDs must never repeat under one UIDVALIDITY (RFC 3501 2.3.1.1): a mailbox deleted and
    created again within the same second, or a name taken over by a rename, gets a new one."""
    wire = wires.signed_in("bob")
    fill(wire, "Reborn", NOTE)
    wire.run([
        (b"a1 STATUS Reborn (UIDVALIDITY UIDNEXT)\r\n",
         [b'* STATUS "Reborn" (UIDVALIDITY ${old} UIDNEXT 2)', b"a1 OK STATUS completed"]),
        (b"a2 DELETE Reborn\r\n", [b"a2 OK DELETE completed"]),
        (b"a3 CREATE Reborn\r\n", [b"a3 OK CREATE completed"]),
        (b"a4 STATUS Reborn (UIDVALIDITY UIDNEXT)\r\n",
         [b'* STATUS "Reborn" (UIDVALIDITY ${new} UIDNEXT 1)', b"a4 OK STATUS completed"]),
        (b"a5 CREATE Renamed2\r\n", [b"a5 OK CREATE completed"]),
        (b"a6 STATUS Renamed2 (UIDVALIDITY)\r\n",
         [b'* STATUS "Renamed2" (UIDVALIDITY ${second})', b"a6 OK STATUS completed"]),
        (b"a7 RENAME Reborn Renamed3\r\n", [b"a7 OK RENAME completed"]),
        (b"a8 RENAME Renamed2 Reborn\r\n", [b"a8 OK RENAME completed"]),
        (b"a9 STATUS Reborn (UIDVALIDITY)\r\n",
         [b'* STATUS "Reborn" (UIDVALIDITY ${second})', b"a9 OK STATUS completed"]),
    ])  # fmt: skip
    assert wire.number("old") < wire.number("new") < wire.number("second")
    logout(wire)


def test_new_keyword_is_announced_in_flags_before_fetch(wires: Wires) -> None:
    """A keyword first set by STORE, APPEND or COPY is named in an untagged FLAGS and
    PERMANENTFLAGS before any FETCH carries it (RFC 3501 7.2.6)."""
    wire = wires.signed_in("alice")
    fill(wire, "Keywords", NOTE)
    with_one = SELECT_FLAGS[:-1] + b" $Hello)"
    with_two = SELECT_FLAGS[:-1] + b" $Hello $World)"
    wire.run([
        select("a1", "Keywords", exists=1, uidnext=2, unseen=1),
        (b"a2 STORE 1 +FLAGS ($Hello)\r\n", [
            with_one, PERMANENT_FLAGS.replace(b" \\*)", b" $Hello \\*)"),
            b"* 1 FETCH (FLAGS ($Hello \\Recent))", b"a2 OK STORE completed",
        ]),
        (b"a3 STORE 1 +FLAGS ($Hello)\r\n", [b"a3 OK STORE completed"]),  # known: no FLAGS
        (b"a4 APPEND Keywords ($World) {%d+}\r\n%s\r\n" % (len(NOTE), NOTE), [
            with_two, PERMANENT_FLAGS.replace(b" \\*)", b" $Hello $World \\*)"),
            b"* 2 EXISTS", b"* 2 RECENT", b"a4 OK [APPENDUID ${keywords} 2] APPEND completed",
        ]),
        (b"a5 CREATE Keywords2\r\n", [b"a5 OK CREATE completed"]),
        (b"a6 COPY 1:2 Keywords2\r\n",
         [b"a6 OK [COPYUID ${keywords2} 1:2 1:2] COPY completed"]),
        (b"a7 SELECT Keywords2\r\n", [
            b"* OK [CLOSED] previous mailbox closed",
            with_two, PERMANENT_FLAGS.replace(b" \\*)", b" $Hello $World \\*)"),
            b"* 2 EXISTS", b"* 2 RECENT", b"* OK [UIDVALIDITY ${keywords2}] UIDs valid",
            b"* OK [UIDNEXT 3] predicted next UID",
            b"* OK [HIGHESTMODSEQ ${keywords2_modseq}] modification sequence",
            b"* OK [UNSEEN 1] first unseen", b"a7 OK [READ-WRITE] selected",
        ]),
    ])  # fmt: skip
    logout(wire)


def test_list_extended_refuses_unknown_options(wires: Wires) -> None:
    """RFC 5258: unknown selection or return options, and RECURSIVEMATCH alone (or with only
    REMOTE), are BAD; REMOTE alone is a plain LIST."""
    wire = wires.signed_in("bob")
    wire.run([
        (b'a1 LIST (IMAPTEST) "" ""\r\n', [b"a1 BAD unknown selection option IMAPTEST"]),
        (b'a2 LIST (RECURSIVEMATCH) "" ""\r\n',
         [b"a2 BAD RECURSIVEMATCH needs another selection option"]),
        (b'a3 LIST (RECURSIVEMATCH REMOTE) "" ""\r\n',
         [b"a3 BAD RECURSIVEMATCH needs another selection option"]),
        (b'a4 LIST "" "" RETURN (IMAPTEST)\r\n', [b"a4 BAD unknown return option IMAPTEST"]),
        (b'a5 LIST (REMOTE) "" INBOX\r\n',
         [b'* LIST (\\HasNoChildren) "/" "INBOX"', b"a5 OK LIST completed"]),
        # Every atom character is a pattern character; '&' that starts no canonical
        # modified UTF-7 sequence is matched as itself (it used to be refused).
        (b'a7 LIST "" !#$&\'+,-.0123456789:;<=>?@^_`|[}%*\r\n', [b"a7 OK LIST completed"]),
        (b'a6 list "" INBOX return (children)\r\n',
         [b'* LIST (\\HasNoChildren) "/" "INBOX"', b"a6 OK LIST completed"]),
    ])  # fmt: skip
    logout(wire)


def test_list_subscribed_reports_nonexistent_and_childinfo(wires: Wires) -> None:
    """A subscribed name outlives its mailbox (\\NonExistent under SUBSCRIBED); RECURSIVEMATCH
    names a parent whose subscribed child the pattern does not match with CHILDINFO."""
    wire = wires.signed_in("bob")
    steps = [(b"a%d CREATE Ext/%s\r\n" % (i, n), [b"a%d OK CREATE completed" % i])
             for i, n in enumerate((b"test1", b"test2/test1", b"test3", b"test6"), 1)]  # fmt: skip
    steps += [(b"b%d SUBSCRIBE Ext/%s\r\n" % (i, n), [b"b%d OK SUBSCRIBE completed" % i])
              for i, n in enumerate((b"test1", b"test2/test1", b"test6"), 1)]  # fmt: skip
    wire.run(steps)
    wire.run([
        (b"c1 DELETE Ext/test6\r\n", [b"c1 OK DELETE completed"]),
        (b'c2 LIST (SUBSCRIBED) "" Ext/*\r\n', [
            b'* LIST (\\HasNoChildren \\Subscribed) "/" "Ext/test1"',
            b'* LIST (\\HasNoChildren \\Subscribed) "/" "Ext/test2/test1"',
            b'* LIST (\\HasNoChildren \\NonExistent \\Subscribed) "/" "Ext/test6"',
            b"c2 OK LIST completed",
        ]),
        (b'c3 LIST (SUBSCRIBED RECURSIVEMATCH) "" Ext/test2% RETURN (CHILDREN)\r\n', [
            b'* LIST (\\HasChildren) "/" "Ext/test2" (CHILDINFO ("SUBSCRIBED"))',
            b"c3 OK LIST completed",
        ]),
        (b'c4 LIST (SUBSCRIBED RECURSIVEMATCH) "" (Ext/test2 Ext/test2/test1)\r\n', [
            b'* LIST (\\HasNoChildren \\Subscribed) "/" "Ext/test2/test1"',
            b"c4 OK LIST completed",
        ]),
        (b'c5 LIST "" Ext/% RETURN (SUBSCRIBED)\r\n', [
            b'* LIST (\\HasNoChildren \\Subscribed) "/" "Ext/test1"',
            b'* LIST (\\HasChildren) "/" "Ext/test2"',
            b'* LIST (\\HasNoChildren) "/" "Ext/test3"',
            b"c5 OK LIST completed",
        ]),
    ])  # fmt: skip
    logout(wire)


def test_lsub_lists_only_subscribed_names_and_noselect_parents(wires: Wires) -> None:
    """LSUB returns subscribed names only (CREATE subscribes nothing), and a name that ``%``
    matches with a subscribed child below it as \\Noselect (RFC 3501 6.3.9)."""
    wire = wires.signed_in("alice")
    wire.run([
        (b"a1 CREATE Subs/test\r\n", [b"a1 OK CREATE completed"]),
        (b"a2 CREATE Subs/test2/test\r\n", [b"a2 OK CREATE completed"]),
        (b"a3 CREATE Subs/test3/test3\r\n", [b"a3 OK CREATE completed"]),
        (b'a4 LSUB "" Subs/*\r\n', [b"a4 OK LSUB completed"]),
        (b"a5 SUBSCRIBE Subs/test\r\n", [b"a5 OK SUBSCRIBE completed"]),
        (b"a6 SUBSCRIBE Subs/test2/test\r\n", [b"a6 OK SUBSCRIBE completed"]),
        (b'a7 LSUB "" Subs/%\r\n', [
            b'* LSUB () "/" "Subs/test"', b'* LSUB (\\Noselect) "/" "Subs/test2"',
            b"a7 OK LSUB completed",
        ]),
        (b'a8 LSUB "" *test\r\n', [
            b'* LSUB () "/" "Subs/test"', b'* LSUB () "/" "Subs/test2/test"',
            b"a8 OK LSUB completed",
        ]),
        (b"a9 UNSUBSCRIBE Subs/test\r\n", [b"a9 OK UNSUBSCRIBE completed"]),
        (b"b1 UNSUBSCRIBE Subs/never\r\n", [b"b1 OK UNSUBSCRIBE completed"]),
        (b'b2 LSUB "" Subs/*\r\n', [b'* LSUB () "/" "Subs/test2/test"', b"b2 OK LSUB completed"]),
    ])  # fmt: skip
    logout(wire)


def test_search_from_matches_an_address_written_with_comments(wires: Wires) -> None:
    """``<user-from (comment)@ (comment) domain.org>`` is the address user-from@domain.org."""
    wire = wires.signed_in("bob")
    fill(wire, "Commented", FROM_WITH_COMMENTS, NOTE)
    wire.run([
        select("a1", "Commented", exists=2, uidnext=3, unseen=1),
        (b"a2 SEARCH FROM user-from@domain.org\r\n", [b"* SEARCH 1", b"a2 OK SEARCH completed"]),
        (b"a3 SEARCH FROM ser-fro\r\n", [b"* SEARCH 1", b"a3 OK SEARCH completed"]),
        (b"a4 SEARCH TO realto\r\n", [b"* SEARCH 1", b"a4 OK SEARCH completed"]),
    ])  # fmt: skip
    logout(wire)


def test_first_condstore_fetch_reports_highestmodseq_and_esearch_modseq(wires: Wires) -> None:
    """The first CONDSTORE-enabling FETCH in a selected mailbox is preceded by OK
    [HIGHESTMODSEQ]; ESEARCH MIN or MAX alone carries that message's modseq, otherwise the
    highest of those found (RFC 7162 3.1, RFC 4731 3.2)."""
    wire = wires.signed_in("alice")
    fill(wire, "Modseqs", NOTE, NOTE, NOTE, NOTE)
    wire.run([
        select("a1", "Modseqs", exists=4, uidnext=5, unseen=1),
        (b"a2 FETCH 1 MODSEQ\r\n", [
            b"* OK [HIGHESTMODSEQ ${modseqs_modseq}] now",
            b"* 1 FETCH (MODSEQ (${m1_old}))", b"a2 OK FETCH completed",
        ]),
        (b"a3 STORE 1 +FLAGS.SILENT \\Seen\r\n", [b"* 1 FETCH (UID 1 MODSEQ (${m1}))", b"a3 OK STORE completed"]),
        (b"a4 STORE 3 +FLAGS.SILENT \\Seen\r\n", [b"* 3 FETCH (UID 3 MODSEQ (${m3}))", b"a4 OK STORE completed"]),
        (b"a5 STORE 2 +FLAGS.SILENT \\Seen\r\n", [b"* 2 FETCH (UID 2 MODSEQ (${m2}))", b"a5 OK STORE completed"]),
        (b'a6 SEARCH RETURN (MIN) 1:3 MODSEQ "/flags/\\\\seen" all 1\r\n',
         [b'* ESEARCH (TAG "a6") MIN 1 MODSEQ ${m1}', b"a6 OK SEARCH completed"]),
        (b'a7 SEARCH RETURN (MAX) 1:3 MODSEQ "/flags/\\\\seen" all 1\r\n',
         [b'* ESEARCH (TAG "a7") MAX 3 MODSEQ ${m3}', b"a7 OK SEARCH completed"]),
        (b'a8 SEARCH RETURN () 1:3 MODSEQ "/flags/\\\\seen" all 1\r\n',
         [b'* ESEARCH (TAG "a8") ALL 1:3 MODSEQ ${m2}', b"a8 OK SEARCH completed"]),
    ])  # fmt: skip
    assert wire.number("m1") < wire.number("m3") < wire.number("m2")
    logout(wire)


def test_fetch_of_a_message_another_session_expunged_returns_the_rest(wires: Wires) -> None:
    """A message expunged by another session while this one still numbers it: FETCH returns
    every other message and ends NO [EXPUNGEISSUED], and the session carries on."""
    first, second = wires.signed_in("bob"), wires.signed_in("bob")
    fill(first, "Vanishing", NOTE, NOTE, NOTE)
    first.run([select("a1", "Vanishing", exists=3, uidnext=4, unseen=1)])
    second.run([
        select("b1", "Vanishing", exists=3, uidnext=4, unseen=1, recent=0),
        (b"b2 STORE 2 +FLAGS.SILENT (\\Deleted)\r\n", [b"b2 OK STORE completed"]),
        (b"b3 EXPUNGE\r\n", [b"* 2 EXPUNGE", b"b3 OK EXPUNGE completed"]),
    ])  # fmt: skip
    first.run([
        (b"a2 FETCH 1:3 (UID RFC822.SIZE BODY.PEEK[TEXT])\r\n", [
            b"* 1 FETCH (UID 1 RFC822.SIZE 36 BODY[TEXT] {19}\r\nliteral plus body\r\n)",
            b"* 3 FETCH (UID 3 RFC822.SIZE 36 BODY[TEXT] {19}\r\nliteral plus body\r\n)",
            b"a2 NO [EXPUNGEISSUED] some of the requested messages no longer exist",
        ]),
        (b"a3 NOOP\r\n", [b"* 2 EXPUNGE", b"a3 OK NOOP completed"]),
        (b"a4 FETCH 1:* (UID)\r\n",
         [b"* 1 FETCH (UID 1)", b"* 2 FETCH (UID 3)", b"a4 OK FETCH completed"]),
    ])  # fmt: skip
    logout(first)
    logout(second)


def test_search_update_follows_the_mailbox_and_partial_slices(wires: Wires) -> None:
    """RFC 5267: SEARCH RETURN (UPDATE) keeps telling ADDTO/REMOVEFROM (REMOVEFROM before
    the EXPUNGEs, numbered as before them) until CANCELUPDATE; PARTIAL m:n returns positions
    m to n of the result (NIL past its end; m:n in either order)."""
    wire = wires.signed_in("bob")
    fill(wire, "Contexts", NOTE, NOTE, NOTE, NOTE, NOTE)
    wire.run([
        select("a1", "Contexts", exists=5, uidnext=6, unseen=1),
        (b"a2 SEARCH RETURN (UPDATE) BODY body SEEN\r\n",
         [b'* ESEARCH (TAG "a2")', b"a2 OK SEARCH completed"]),
        (b"a3 STORE 1,2,4 +FLAGS.SILENT (\\Seen)\r\n",
         [b'* ESEARCH (TAG "a2") ADDTO (1 1:2,4)', b"a3 OK STORE completed"]),
        (b"a4 STORE 1:2 -FLAGS.SILENT (\\Seen)\r\n",
         [b'* ESEARCH (TAG "a2") REMOVEFROM (1 1:2)', b"a4 OK STORE completed"]),
        (b"a5 STORE 3:5 +FLAGS.SILENT (\\Deleted)\r\n", [b"a5 OK STORE completed"]),
        (b"a6 EXPUNGE\r\n", [
            b'* ESEARCH (TAG "a2") REMOVEFROM (1 4)',
            b"* 5 EXPUNGE", b"* 4 EXPUNGE", b"* 3 EXPUNGE", b"a6 OK EXPUNGE completed",
        ]),
        (b"a7 UID SEARCH RETURN (UPDATE ALL) UNSEEN\r\n",
         [b'* ESEARCH (TAG "a7") UID ALL 1:2', b"a7 OK SEARCH completed"]),
        (b"a8 APPEND Contexts (\\Seen) {%d+}\r\n%s\r\n" % (len(NOTE), NOTE), [
            b"* 3 EXISTS", b"* 3 RECENT", b'* ESEARCH (TAG "a2") ADDTO (1 3)',
            b"a8 OK [APPENDUID ${contexts} 6] APPEND completed",
        ]),
        (b'a9 CANCELUPDATE "a2"\r\n', [b"a9 OK CANCELUPDATE completed"]),
        (b'b1 CANCELUPDATE "a2"\r\n', [b"b1 BAD no search 'a2'"]),
        (b"b2 STORE 1 +FLAGS.SILENT (\\Seen)\r\n",
         [b'* ESEARCH (TAG "a7") UID REMOVEFROM (1 1)', b"b2 OK STORE completed"]),
        (b"b3 SEARCH RETURN (PARTIAL 3:2) ALL\r\n",
         [b'* ESEARCH (TAG "b3") PARTIAL (2:3 2:3)', b"b3 OK SEARCH completed"]),
        (b"b4 SEARCH RETURN (PARTIAL 4:9) ALL\r\n",
         [b'* ESEARCH (TAG "b4") PARTIAL (4:9 NIL)', b"b4 OK SEARCH completed"]),
        (b"b5 SEARCH RETURN (PARTIAL 1:*) ALL\r\n", [b"b5 BAD expected a number"]),
    ])  # fmt: skip
    logout(wire)
