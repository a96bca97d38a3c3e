"""NOTIFY (RFC 5465) byte for byte: a client that asked for events hears of them while it
sends nothing (no IDLE needed): STATUS for watched mailboxes, EXISTS for the selected one,
LIST for names and subscriptions that change."""

from __future__ import annotations

from tests.frontends import test_imap_transcripts as transcripts
from tests.frontends.test_imap_transcripts import NOTE, PERMANENT_FLAGS, SELECT_FLAGS, Wires, logout

server = transcripts.server
wires = transcripts.wires


def append(tag: str, mailbox: bytes, uid: int) -> transcripts.Step:
    key = mailbox.lower()
    return (b"%s APPEND %s {%d+}\r\n%s\r\n" % (tag.encode(), mailbox, len(NOTE), NOTE),
            [b"%s OK [APPENDUID ${%s} %d] APPEND completed" % (tag.encode(), key, uid)])  # fmt: skip


def test_notify_tells_a_quiet_client_of_new_mail_names_and_subscriptions(wires: Wires) -> None:
    watcher, other = wires.signed_in("alice"), wires.signed_in("alice")
    watcher.run([
        (b"a1 CREATE Watched\r\n", [b"a1 OK CREATE completed"]),
        (b"a2 NOTIFY SET STATUS (SELECTED (MessageNew MessageExpunge FlagChange)) "
         b"(MAILBOXES Watched (MessageNew MessageExpunge)) "
         b"(PERSONAL (MailboxName SubscriptionChange))\r\n", [
            b'* STATUS "Watched" (MESSAGES 0 UIDNEXT 1 UIDVALIDITY ${watched})',
            b"a2 OK NOTIFY completed",
        ]),
    ])  # fmt: skip
    other.run([append("b1", b"Watched", 1)])
    watcher.run([(b"", [b'* STATUS "Watched" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY ${watched})'])])
    other.run([(b"b2 CREATE Another\r\n", [b"b2 OK CREATE completed"])])
    watcher.run([(b"", [b'* LIST () "/" "Another"'])])
    other.run([(b"b3 SUBSCRIBE Another\r\n", [b"b3 OK SUBSCRIBE completed"])])
    watcher.run([(b"", [b'* LIST (\\Subscribed) "/" "Another"'])])
    other.run([(b"b4 DELETE Another\r\n", [b"b4 OK DELETE completed"])])
    watcher.run([(b"", [b'* LIST (\\NonExistent) "/" "Another"'])])
    # The selected mailbox: EXISTS at once, without a command or IDLE.
    watcher.run([
        (b"a3 SELECT Watched\r\n", [
            SELECT_FLAGS, PERMANENT_FLAGS, b"* 1 EXISTS", b"* 1 RECENT",
            b"* OK [UIDVALIDITY ${watched}] UIDs valid", b"* OK [UIDNEXT 2] predicted next UID",
            b"* OK [HIGHESTMODSEQ ${modseq}] modification sequence",
            b"* OK [UNSEEN 1] first unseen", b"a3 OK [READ-WRITE] selected",
        ]),
    ])  # fmt: skip
    other.run([append("b5", b"Watched", 2)])
    watcher.run([(b"", [b"* 2 EXISTS", b"* 2 RECENT"])])
    watcher.run([
        (b"a4 NOTIFY SET (SELECTED (MessageNew AnnotationChange))\r\n", [
            b"a4 NO [BADEVENT (FlagChange MailboxName MessageExpunge MessageNew "
            b"SubscriptionChange)] unsupported event",
        ]),
        # A refused SET leaves the last one on; NONE turns it off, and mail waits for the next
        # command as without NOTIFY.
        (b"a5 NOTIFY NONE\r\n", [b"a5 OK NOTIFY completed"]),
    ])  # fmt: skip
    other.run([append("b6", b"Watched", 3)])
    watcher.run([(b"a6 NOOP\r\n", [b"* 3 EXISTS", b"* 3 RECENT", b"a6 OK NOOP completed"])])
    logout(watcher)
    logout(other)


def test_notify_grammar_errors_are_bad(wires: Wires) -> None:
    wire = wires.signed_in("bob")
    wire.run([
        (b"a1 NOTIFY\r\n", [b"a1 BAD expected ' ', found ''"]),
        (b"a2 NOTIFY SET (NOWHERE (MessageNew))\r\n", [b"a2 BAD unknown NOTIFY filter NOWHERE"]),
        (b"a3 NOTIFY SET (INBOXES (Gossip))\r\n", [b"a3 BAD unknown NOTIFY event GOSSIP"]),
        (b"a4 NOTIFY SET (INBOXES NONE)\r\n", [b"a4 OK NOTIFY completed"]),
    ])  # fmt: skip
    logout(wire)
