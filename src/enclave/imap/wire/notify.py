"""The NOTIFY command's grammar (RFC 5465 section 8). Pure.

    NOTIFY NONE
    NOTIFY SET [STATUS] (filter events) (filter events) ...

A filter names mailboxes (SELECTED, SELECTED-DELAYED, INBOXES, PERSONAL, SUBSCRIBED,
SUBTREE names, MAILBOXES names); events are a list of event names (MessageNew may carry a
FETCH attribute list) or NONE.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from enclave.imap.wire.tokens import Cursor, ParseError

FILTERS = frozenset(
    {"SELECTED", "SELECTED-DELAYED", "INBOXES", "PERSONAL", "SUBSCRIBED", "SUBTREE", "MAILBOXES"}
)
WITH_NAMES = frozenset({"SUBTREE", "MAILBOXES"})
EVENTS = frozenset({
    "MESSAGENEW", "MESSAGEEXPUNGE", "FLAGCHANGE", "ANNOTATIONCHANGE", "MAILBOXNAME",
    "SUBSCRIPTIONCHANGE", "MAILBOXMETADATACHANGE", "SERVERMETADATACHANGE",
})  # fmt: skip
# The spelling the RFC gives, for BADEVENT replies.
SPELLING = {
    "MESSAGENEW": "MessageNew", "MESSAGEEXPUNGE": "MessageExpunge", "FLAGCHANGE": "FlagChange",
    "ANNOTATIONCHANGE": "AnnotationChange", "MAILBOXNAME": "MailboxName",
    "SUBSCRIPTIONCHANGE": "SubscriptionChange",
    "MAILBOXMETADATACHANGE": "MailboxMetadataChange",
    "SERVERMETADATACHANGE": "ServerMetadataChange",
}  # fmt: skip


@dataclass(frozen=True)
class Group:
    filter: str
    names: tuple[bytes, ...] = ()  # SUBTREE and MAILBOXES: the mailboxes, as sent
    events: frozenset[str] = field(default_factory=frozenset)  # upper-cased; empty for NONE


def parse_notify(cursor: Cursor) -> dict[str, Any]:
    cursor.sp()
    verb = cursor.atom().upper()
    if verb == "NONE":
        return {"groups": None, "status": False}
    if verb != "SET":
        raise ParseError("expected NOTIFY SET or NOTIFY NONE")
    cursor.sp()
    status = False
    if cursor.rest()[:6].upper() == b"STATUS":
        cursor.expect(cursor.rest()[:6])
        cursor.sp()
        status = True
    groups = [_group(cursor)]
    while cursor.maybe(b" "):
        groups.append(_group(cursor))
    return {"groups": groups, "status": status}


def _group(cursor: Cursor) -> Group:
    cursor.expect(b"(")
    name = cursor.atom().upper()
    if name not in FILTERS:
        raise ParseError(f"unknown NOTIFY filter {name}")
    names: list[bytes] = []
    if name in WITH_NAMES:
        cursor.sp()
        if cursor.maybe(b"("):
            while not cursor.maybe(b")"):
                if names:
                    cursor.sp()
                names.append(cursor.astring())
        else:
            names.append(cursor.astring())
    cursor.sp()
    events: set[str] = set()
    if cursor.rest()[:4].upper() == b"NONE":
        cursor.expect(cursor.rest()[:4])
    else:
        cursor.expect(b"(")
        while not cursor.maybe(b")"):
            if events:
                cursor.sp()
            event = cursor.atom().upper()
            if event not in EVENTS:
                raise ParseError(f"unknown NOTIFY event {event}")
            events.add(event)
            if event == "MESSAGENEW" and cursor.maybe(b" ("):  # FETCH attributes: skipped
                depth = 1
                while depth:
                    char = cursor.peek()
                    if char is None:
                        raise ParseError("unterminated MessageNew attributes")
                    depth += {ord("("): 1, ord(")"): -1}.get(char, 0)
                    cursor.expect(bytes([char]))
    cursor.expect(b")")
    return Group(name, tuple(names), frozenset(events))
