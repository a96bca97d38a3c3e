"""THREAD (RFC 5256 sections 4 and 5): the grammar, the ORDEREDSUBJECT and REFERENCES
algorithms, and the thread response. Pure.

REFERENCES follows the RFC's steps 1-6 in order; where the text leaves a choice:

- 1.B breaks a message's existing parent link before linking it to its last reference, and
  then refuses that new link if it would make a loop, so the message becomes a root (as
  Dovecot does; imaptest's ``thread`` script depends on it).
- Only the last ``MAX_REFERENCES`` message IDs of a References field are linked, so a
  hostile header cannot make linking quadratic in its length; the parent (the last one) is
  always among them.

Every walk over the tree is iterative: a reply chain thousands deep is ordinary data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime
from itertools import pairwise
from typing import Any

from enclave.imap.wire.sort import Sortable, casemap, parse_charset_and_keys
from enclave.imap.wire.tokens import Cursor, ParseError

ALGORITHMS = frozenset({"ORDEREDSUBJECT", "REFERENCES"})
MAX_REFERENCES = 1000
_MSG_ID = re.compile(rb"<([^<>\s]+)>")


def parse_thread(cursor: Cursor) -> dict[str, Any]:
    """``THREAD algorithm charset search-keys``."""
    cursor.sp()
    algorithm = cursor.atom().upper()
    if algorithm not in ALGORITHMS:
        raise ParseError(f"unknown threading algorithm {algorithm}")
    cursor.sp()
    return {"algorithm": algorithm, "key": parse_charset_and_keys(cursor)}


class Node:
    """A message in a thread tree, or a dummy (``message`` None) standing for one that is
    referenced but not in the set."""

    __slots__ = ("children", "message", "parent")

    def __init__(self, message: Sortable | None = None) -> None:
        self.message = message
        self.parent: Node | None = None
        self.children: list[Node] = []

    def first(self) -> Sortable:
        """The message that speaks for this node: itself, or a dummy's first child."""
        node = self
        while node.message is None:
            node = node.children[0]
        return node.message


def _date_key(node: Node) -> tuple[datetime, int]:
    message = node.first()
    return (message.sent, message.seq)


def _walk(roots: list[Node]) -> Iterator[Node]:
    """Every node below the given ones, parents before their children."""
    stack = list(reversed(roots))
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children))


# --- ORDEREDSUBJECT ------------------------------------------------------------------------


def ordered_subject(messages: list[Sortable]) -> list[Node]:
    """Sorted by base subject, then sent date; each run of one base subject is a thread
    whose first message is the parent of all the others; threads sorted by the sent date of
    their first message (RFC 5256 section 4)."""
    ordered = sorted(messages, key=lambda m: (casemap(m.base_subject), m.sent, m.seq))
    threads: list[Node] = []
    subject: str | None = None
    for message in ordered:
        node = Node(message)
        this = casemap(message.base_subject)
        if threads and this == subject:
            node.parent = threads[-1]
            threads[-1].children.append(node)
        else:
            threads.append(node)
            subject = this
    threads.sort(key=_date_key)
    return threads


# --- REFERENCES ----------------------------------------------------------------------------


def _ids(value: bytes) -> list[bytes]:
    return _MSG_ID.findall(value)


def _references(message: Sortable) -> list[bytes]:
    """References, else the first message ID of In-Reply-To (RFC 5256 section 4, step 1)."""
    found: list[bytes] = []
    for value in message.values(b"references"):
        found += _ids(value)
    if not found:
        for value in message.values(b"in-reply-to"):
            found = _ids(value)[:1]
            if found:
                break
    return found[-MAX_REFERENCES:]


def _is_ancestor(candidate: Node, node: Node) -> bool:
    """Whether ``candidate`` is ``node`` or above it."""
    if not candidate.children:  # the usual case, a new message: no walk up the chain
        return candidate is node
    current: Node | None = node
    while current is not None:
        if current is candidate:
            return True
        current = current.parent
    return False


def _unlink(node: Node) -> None:
    if node.parent is not None:
        node.parent.children.remove(node)
        node.parent = None


def _link(parent: Node, child: Node) -> None:
    child.parent = parent
    parent.children.append(child)


def _pruned(roots: list[Node]) -> list[Node]:
    """Step 3: dummies without children go; below the root a dummy is replaced by its
    children; at the root only when it has just one. Children are pruned before their
    parents, so a dummy's count is what remains of it."""
    order = list(_walk(roots))
    replaced: dict[int, list[Node]] = {}
    for node in reversed(order):
        kids: list[Node] = []
        for child in node.children:
            kids += replaced[id(child)]
        node.children = kids
        for child in kids:
            child.parent = node
        replaced[id(node)] = [node] if node.message is not None else kids
    top: list[Node] = []
    for root in roots:
        root.parent = None
        if root.message is not None or len(root.children) > 1:
            top.append(root)
        elif root.children:
            only = root.children[0]
            only.parent = None
            top.append(only)
    return top


def _merge_subjects(roots: list[Node]) -> list[Node]:
    """Step 5: threads whose first messages share a base subject are gathered."""

    def subject(node: Node) -> str:
        return casemap(node.first().base_subject)

    table: dict[str, Node] = {}
    for node in roots:  # (B)
        key = subject(node)
        if not key:
            continue
        held = table.get(key)
        if held is None:
            table[key] = node
        elif held.message is not None and (
            node.message is None or (held.message.is_reply and not node.message.is_reply)
        ):
            table[key] = node
    gone: set[int] = set()
    for node in list(roots):  # (C)
        key = subject(node)
        if not key:
            continue
        held = table[key]
        if held is node:
            continue
        gone.add(id(node))
        if held.message is None and node.message is None:
            for child in node.children:
                _link(held, child)
            node.children = []
        elif held.message is None:
            _link(held, node)
        elif node.message is not None and node.message.is_reply and not held.message.is_reply:
            _link(held, node)
        else:  # a new dummy takes the table message's place: the held node becomes it
            moved = Node(held.message)
            for child in held.children:
                _link(moved, child)
            held.message, held.children = None, []
            _link(held, moved)
            _link(held, node)
    return [node for node in roots if id(node) not in gone]


def references(messages: list[Sortable]) -> list[Node]:
    """The REFERENCES algorithm (RFC 5256 section 4), steps 1 to 6."""
    nodes: dict[bytes, Node] = {}
    unnamed: list[Node] = []  # messages without an ID of their own (none, or a duplicate)
    for message in sorted(messages, key=lambda m: m.seq):  # (1)
        ids = _ids(b" ".join(message.values(b"message-id")))[:1]
        own = ids[0] if ids else None
        node = nodes.get(own) if own is not None else None
        if node is None or node.message is not None:
            node = Node(message)
            if own is not None and own not in nodes:
                nodes[own] = node
            else:  # a unique ID of its own, which nothing can reference
                unnamed.append(node)
        else:
            node.message = message  # a dummy made by an earlier reference becomes real
        chain = [nodes.setdefault(ref, Node()) for ref in _references(message)]
        for parent, child in pairwise(chain):  # (1.A)
            if child.parent is None and not _is_ancestor(child, parent):
                _link(parent, child)
        _unlink(node)  # (1.B)
        if chain and not _is_ancestor(node, chain[-1]):
            _link(chain[-1], node)
    roots = [node for node in [*nodes.values(), *unnamed] if node.parent is None]  # (2)
    roots = _pruned(roots)  # (3)
    for root in roots:  # (4)
        if root.message is None:
            root.children.sort(key=_date_key)
    roots.sort(key=_date_key)
    roots = _merge_subjects(roots)  # (5)
    _sort_siblings(roots)  # (6)
    return roots


def _sort_siblings(roots: list[Node]) -> None:
    """Step 6: every set of siblings by sent date, the deepest first (a dummy, only ever at
    the top, sorts by its first child)."""
    for node in reversed(list(_walk(roots))):
        node.children.sort(key=_date_key)
    roots.sort(key=_date_key)


# --- the response ----------------------------------------------------------------------------


def render(roots: list[Node], number: Callable[[int], int] = lambda seq: seq) -> bytes:
    """``(1 2)(3 (4)(5))``: a run of only children is one parenthesised list; two or more
    children are nested lists; a dummy is a list of lists (RFC 5256 section 5)."""
    out: list[bytes] = []
    stack: list[Node | bytes] = list(reversed(roots))
    while stack:
        item = stack.pop()
        if isinstance(item, bytes):
            out.append(item)
            continue
        node = item
        if node.message is None and len(node.children) == 1:
            stack.append(node.children[0])
            continue
        out.append(b"(")
        if node.message is not None:
            numbers = [b"%d" % number(node.message.seq)]
            while len(node.children) == 1:
                node = node.children[0]
                numbers.append(b"%d" % number(node.first().seq))
            out.append(b" ".join(numbers))
            if node.children:
                out.append(b" ")
        stack.append(b")")
        stack.extend(reversed(node.children))
    return b"".join(out)
