"""IMAP4rev2 (RFC 9051) beside IMAP4rev1, byte for byte: after ENABLE IMAP4rev2 a connection
has UTF-8 mailbox names, no \\Recent, a LIST line in SELECT, ESEARCH for every SEARCH, and the
saved search result "$" (SEARCHRES, RFC 5182), which rev1 clients may use as well."""

from __future__ import annotations

from tests.frontends import test_imap_transcripts as transcripts
from tests.frontends.test_imap_transcripts import NOTE, PERMANENT_FLAGS, SELECT_FLAGS, Wires, logout

server = transcripts.server
wires = transcripts.wires

NAME = "Entwürfe".encode()


def test_imap4rev2_names_select_and_search(wires: Wires) -> None:
    wire = wires.signed_in("alice")
    literal = b"{%d}\r\n%s" % (len(NAME), NAME)
    wire.run([
        (b"a1 ENABLE IMAP4rev2\r\n", [b"* ENABLED IMAP4rev2", b"a1 OK ENABLE completed"]),
        (b'a2 CREATE "' + NAME + b'"\r\n', [b"a2 OK CREATE completed"]),
        (b'a3 LIST "" "Entw*"\r\n',
         [b'* LIST (\\HasNoChildren) "/" ' + literal, b"a3 OK LIST completed"]),
        (b"a4 APPEND {%d+}\r\n%s {%d+}\r\n%s\r\n" % (len(NAME), NAME, len(NOTE), NOTE),
         [b"a4 OK [APPENDUID ${box} 1] APPEND completed"]),
        (b"a5 APPEND {%d+}\r\n%s (\\Seen) {%d+}\r\n%s\r\n" % (len(NAME), NAME, len(NOTE), NOTE),
         [b"a5 OK [APPENDUID ${box} 2] APPEND completed"]),
        # No RECENT and no UNSEEN; a LIST line names the mailbox as the server spells it.
        (b'a6 SELECT "' + NAME + b'"\r\n', [
            SELECT_FLAGS, PERMANENT_FLAGS, b"* 2 EXISTS", b'* LIST () "/" ' + literal,
            b"* OK [UIDVALIDITY ${box}] UIDs valid", b"* OK [UIDNEXT 3] predicted next UID",
            b"* OK [HIGHESTMODSEQ ${modseq}] modification sequence",
            b"a6 OK [READ-WRITE] selected",
        ]),
        (b"a7 FETCH 1:2 FLAGS\r\n", [
            b"* 1 FETCH (FLAGS ())", b"* 2 FETCH (FLAGS (\\Seen))", b"a7 OK FETCH completed",
        ]),
        (b"a8 SEARCH ALL\r\n", [b'* ESEARCH (TAG "a8") ALL 1:2', b"a8 OK SEARCH completed"]),
        (b"a9 UID SEARCH UNSEEN\r\n", [b'* ESEARCH (TAG "a9") UID ALL 1', b"a9 OK SEARCH completed"]),
        (b"b1 SEARCH DRAFT\r\n", [b'* ESEARCH (TAG "b1")', b"b1 OK SEARCH completed"]),
        # SEARCHRES: SAVE alone answers nothing; "$" is the saved result in later commands.
        (b"b2 SEARCH RETURN (SAVE) SEEN\r\n", [b"b2 OK SEARCH completed"]),
        (b"b3 FETCH $ (UID)\r\n", [b"* 2 FETCH (UID 2)", b"b3 OK FETCH completed"]),
        (b"b4 SEARCH $ OR DRAFT 1\r\n", [b'* ESEARCH (TAG "b4")', b"b4 OK SEARCH completed"]),
        (b"b5 UID SEARCH RETURN (SAVE MIN) ALL\r\n",
         [b'* ESEARCH (TAG "b5") UID MIN 1', b"b5 OK SEARCH completed"]),
        (b"b6 UID STORE $ +FLAGS.SILENT (\\Flagged)\r\n", [b"b6 OK STORE completed"]),
        (b"b7 SEARCH FLAGGED\r\n", [b'* ESEARCH (TAG "b7") ALL 1', b"b7 OK SEARCH completed"]),
        (b"b8 STORE 2 +FLAGS.SILENT (\\Deleted)\r\n", [b"b8 OK STORE completed"]),
        (b'b9 STATUS "' + NAME + b'" (MESSAGES DELETED)\r\n',
         [b"* STATUS " + literal + b" (MESSAGES 2 DELETED 1)", b"b9 OK STATUS completed"]),
    ])  # fmt: skip
    logout(wire)


def test_imap4rev1_clients_keep_modified_utf7_and_search(wires: Wires) -> None:
    """A connection that does not enable IMAP4rev2 sees the same mailbox in modified UTF-7
    and gets untagged SEARCH, and may use SEARCHRES too."""
    wire = wires.signed_in("bob")
    wire.run([
        (b'a1 CREATE "Entw&APw-rfe2"\r\n', [b"a1 OK CREATE completed"]),
        (b'a2 LIST "" "Entw*"\r\n',
         [b'* LIST (\\HasNoChildren) "/" "Entw&APw-rfe2"', b"a2 OK LIST completed"]),
        (b'a3 EXAMINE "Entw&APw-rfe2"\r\n', [
            SELECT_FLAGS, b"* OK [PERMANENTFLAGS ()] flags", b"* 0 EXISTS", b"* 0 RECENT",
            b"* OK [UIDVALIDITY ${box2}] UIDs valid", b"* OK [UIDNEXT 1] predicted next UID",
            b"* OK [HIGHESTMODSEQ ${modseq2}] modification sequence",
            b"a3 OK [READ-ONLY] selected",
        ]),
        (b"a4 SEARCH ALL\r\n", [b"* SEARCH", b"a4 OK SEARCH completed"]),
        (b"a5 SEARCH RETURN (SAVE) ALL\r\n", [b"a5 OK SEARCH completed"]),
        (b"a6 FETCH $ FLAGS\r\n", [b"a6 OK FETCH completed"]),
    ])  # fmt: skip
    logout(wire)
