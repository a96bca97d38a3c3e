"""QRESYNC (RFC 7162 section 3.2) byte for byte: what Thunderbird and K-9 resynchronise with.
A client that knows a mailbox's UIDVALIDITY and a modseq learns in its SELECT what vanished
and what changed since, and hears VANISHED instead of EXPUNGE from then on."""

from __future__ import annotations

from tests.frontends import test_imap_transcripts as transcripts
from tests.frontends.test_imap_transcripts import NOTE, Wires, fill, logout, select

server = transcripts.server
wires = transcripts.wires


def test_qresync_select_reports_vanished_and_changed_since_a_modseq(wires: Wires) -> None:
    first, second = wires.signed_in("alice"), wires.signed_in("alice")
    fill(first, "Resynced", NOTE, NOTE, NOTE, NOTE)
    first.run([
        (b"a1 ENABLE QRESYNC\r\n", [b"* ENABLED QRESYNC", b"a1 OK ENABLE completed"]),
        select("a2", "Resynced", exists=4, uidnext=5, unseen=1),
    ])  # fmt: skip
    base = first.number("resynced_modseq")
    first.run([
        (b"a3 STORE 2 +FLAGS (\\Seen)\r\n",
         [b"* 2 FETCH (UID 2 FLAGS (\\Recent \\Seen) MODSEQ (${m2}))", b"a3 OK STORE completed"]),
        (b"a4 UID STORE 3 +FLAGS.SILENT (\\Deleted)\r\n",
         [b"* 3 FETCH (UID 3 MODSEQ (${m3}))", b"a4 OK STORE completed"]),
        # With QRESYNC on, expunges are reported as UIDs (no renumbering to track).
        (b"a5 EXPUNGE\r\n", [b"* VANISHED 3", b"a5 OK EXPUNGE completed"]),
        (b"a6 FETCH 1:* (UID)\r\n", [
            b"* 1 FETCH (UID 1 MODSEQ (${m1_any}))", b"* 2 FETCH (UID 2 MODSEQ (${m2}))",
            b"* 3 FETCH (UID 4 MODSEQ (${m4_any}))", b"a6 OK FETCH completed",
        ]),
    ])  # fmt: skip
    validity = first.number("resynced")
    second.run([
        (b"b1 ENABLE QRESYNC CONDSTORE\r\n",
         [b"* ENABLED QRESYNC CONDSTORE", b"b1 OK ENABLE completed"]),
        (b"b2 SELECT Resynced (QRESYNC (%d %d 1:4))\r\n" % (validity, base), [
            transcripts.SELECT_FLAGS, transcripts.PERMANENT_FLAGS, b"* 3 EXISTS", b"* 0 RECENT",
            b"* OK [UIDVALIDITY ${resynced}] UIDs valid", b"* OK [UIDNEXT 5] predicted next UID",
            b"* OK [HIGHESTMODSEQ ${now}] modification sequence", b"* OK [UNSEEN 1] first unseen",
            b"* VANISHED (EARLIER) 3", b"* 2 FETCH (UID 2 FLAGS (\\Seen) MODSEQ (${m2}))",
            b"b2 OK [READ-WRITE] selected",
        ]),
        # The UIDs it does not know are left out: nothing changed in 1, and 4 is unchanged.
        (b"b3 UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)\r\n" % base, [
            b"* VANISHED (EARLIER) 3", b"* 2 FETCH (UID 2 FLAGS (\\Seen) MODSEQ (${m2}))",
            b"b3 OK FETCH completed",
        ]),
        (b"b4 UID FETCH 4 (FLAGS) (CHANGEDSINCE %d VANISHED)\r\n" % base, [b"b4 OK FETCH completed"]),
        (b"b5 FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)\r\n" % base,
         [b"b5 BAD VANISHED needs UID FETCH and QRESYNC"]),
        (b"b6 UID FETCH 1:* (FLAGS) (VANISHED)\r\n", [b"b6 BAD VANISHED needs CHANGEDSINCE"]),
        # Another mailbox: CLOSED ends the old one's responses before the new one's begin.
        (b"b7 EXAMINE INBOX (QRESYNC (1 1))\r\n", [
            b"* OK [CLOSED] previous mailbox closed", transcripts.SELECT_FLAGS,
            b"* OK [PERMANENTFLAGS ()] flags", b"* ${inbox_exists} EXISTS",
            b"* ${inbox_recent} RECENT", b"* OK [UIDVALIDITY ${inbox}] UIDs valid",
            b"* OK [UIDNEXT ${inbox_next}] predicted next UID",
            b"* OK [HIGHESTMODSEQ ${inbox_modseq}] modification sequence",
            b"b7 OK [READ-ONLY] selected",
        ]),
    ])  # fmt: skip
    # An unknown UIDVALIDITY (1) is a full resync: no VANISHED, no FETCH for it.
    assert second.number("now") > base
    logout(first)
    logout(second)


def test_qresync_parameters_need_enable_qresync(wires: Wires) -> None:
    wire = wires.signed_in("bob")
    wire.run([
        (b"a1 SELECT INBOX (QRESYNC (1 1))\r\n", [b"a1 BAD ENABLE QRESYNC first"]),
        (b"a2 SELECT INBOX (IMAPTEST)\r\n", [b"a2 BAD unknown SELECT parameter IMAPTEST"]),
        (b"a3 ENABLE QRESYNC\r\n", [b"* ENABLED QRESYNC", b"a3 OK ENABLE completed"]),
        (b"a4 SELECT INBOX (QRESYNC (1 1 1:* (1:2 1:2)))\r\n", [
            transcripts.SELECT_FLAGS, transcripts.PERMANENT_FLAGS, b"* ${n} EXISTS",
            b"* ${r} RECENT", b"* OK [UIDVALIDITY ${inbox}] UIDs valid",
            b"* OK [UIDNEXT ${next}] predicted next UID",
            b"* OK [HIGHESTMODSEQ ${modseq}] modification sequence",
            b"a4 OK [READ-WRITE] selected",
        ]),
    ])  # fmt: skip
    logout(wire)
