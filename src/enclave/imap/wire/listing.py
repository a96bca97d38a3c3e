"""What LIST and LSUB answer (RFC 3501 6.3.8-9, RFC 5258 LIST-EXTENDED, RFC 6154). Pure:
mailbox names, subscriptions and the request's options in, the lines to send out.

Rules kept here:
- Subscriptions are names: a subscribed name whose mailbox is gone is listed under the
  SUBSCRIBED selection as ``\\NonExistent`` (which implies, so never repeats, ``\\Noselect``).
- RECURSIVEMATCH: a name that matches but does not meet the selection itself is listed with
  ``CHILDINFO ("SUBSCRIBED")`` when a descendant meets it and that descendant does not match
  the patterns (RFC 5258 3.5).
- LSUB: a name that ``%`` matches and that is not subscribed, but has a subscribed
  descendant, is listed ``\\Noselect`` (RFC 3501 6.3.9).
- Child attributes always come (``\\HasChildren``/``\\HasNoChildren``, RFC 3348), and so do the
  special-use ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

DELIMITER = "/"
SELECTION_OPTIONS = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
RETURN_OPTIONS = frozenset({"SUBSCRIBED", "CHILDREN", "STATUS", "SPECIAL-USE"})


@dataclass(frozen=True)
class Box:
    name: str
    noselect: bool = False
    special_use: str | None = None


@dataclass(frozen=True)
class Listed:
    name: str
    attributes: tuple[str, ...]
    childinfo: bool = False  # CHILDINFO ("SUBSCRIBED") extended data
    selectable: bool = True  # worth a LIST-STATUS line


@dataclass
class Query:
    patterns: list[str]
    selection: set[str] = field(default_factory=set)
    returns: set[str] = field(default_factory=set)


def check_options(selection: Iterable[str], returns: Iterable[str]) -> str | None:
    """Why these LIST options are refused (BAD), or None."""
    chosen = set(selection)
    for option in chosen:
        if option not in SELECTION_OPTIONS:
            return f"unknown selection option {option}"
    if "RECURSIVEMATCH" in chosen and not chosen - {"RECURSIVEMATCH", "REMOTE"}:
        return "RECURSIVEMATCH needs another selection option"
    for option in returns:
        if option not in RETURN_OPTIONS:
            return f"unknown return option {option}"
    return None


@lru_cache(maxsize=256)
def _pattern(pattern: str) -> re.Pattern[str]:
    regex = "".join(
        ".*" if ch == "*" else "[^/]*" if ch == "%" else re.escape(ch) for ch in pattern
    )
    flags = re.IGNORECASE if pattern[:5].upper() == "INBOX" else 0
    return re.compile(regex, flags | re.DOTALL)


def matches(pattern: str, name: str) -> bool:
    """LIST wildcards: ``*`` matches anything, ``%`` anything but the delimiter."""
    return _pattern(pattern).fullmatch(name) is not None


def _any(patterns: list[str], name: str) -> bool:
    return any(matches(pattern, name) for pattern in patterns)


def _parents(name: str) -> list[str]:
    parts = name.split(DELIMITER)
    return [DELIMITER.join(parts[:depth]) for depth in range(1, len(parts))]


class Hierarchy:
    """The user's mailbox names with the questions LIST asks of them."""

    def __init__(self, boxes: Iterable[Box], subscribed: Iterable[str]) -> None:
        self.boxes = {box.name: box for box in boxes}
        self.subscribed = set(subscribed)
        self._parents = {parent for name in self.boxes for parent in _parents(name)}

    def _attributes(self, name: str, *, subscribed: bool) -> list[str]:
        box = self.boxes.get(name)
        attributes = ["\\HasChildren" if name in self._parents else "\\HasNoChildren"]
        if box is None:
            attributes.append("\\NonExistent")
        elif box.noselect:
            attributes.append("\\Noselect")
        if box is not None and box.special_use:
            attributes.append(box.special_use)
        if subscribed and name in self.subscribed:
            attributes.append("\\Subscribed")
        return attributes

    def matching(self, query: Query) -> list[Listed]:
        patterns, selection = query.patterns, query.selection
        if "SUBSCRIBED" in selection:
            meets = set(self.subscribed)
        elif "SPECIAL-USE" in selection:
            meets = {name for name, box in self.boxes.items() if box.special_use}
        else:
            meets = set(self.boxes)
        with_subscribed = "SUBSCRIBED" in selection or "SUBSCRIBED" in query.returns
        found: dict[str, Listed] = {}
        for name in sorted(meets):
            if _any(patterns, name):
                attributes = self._attributes(name, subscribed=with_subscribed)
                selectable = name in self.boxes and not self.boxes[name].noselect
                found[name] = Listed(name, tuple(attributes), selectable=selectable)
        if "RECURSIVEMATCH" in selection:
            for name in sorted(meets):
                if _any(patterns, name):
                    continue  # listed itself; its parents need no CHILDINFO for it
                for parent in _parents(name):
                    if parent not in found and _any(patterns, parent):
                        attributes = self._attributes(parent, subscribed=with_subscribed)
                        selectable = parent in self.boxes and not self.boxes[parent].noselect
                        found[parent] = Listed(parent, tuple(attributes), True, selectable)
        return [found[name] for name in sorted(found, key=_order)]

    def lsub(self, patterns: list[str]) -> list[Listed]:
        found: dict[str, Listed] = {}
        for name in sorted(self.subscribed):
            if _any(patterns, name):
                box = self.boxes.get(name)
                noselect = box is None or box.noselect
                found[name] = Listed(name, ("\\Noselect",) if noselect else ())
                continue
            for parent in _parents(name):
                wildcard = any("%" in p and matches(p, parent) for p in patterns)
                if wildcard and parent not in self.subscribed and parent not in found:
                    found[parent] = Listed(parent, ("\\Noselect",))
        return [found[name] for name in sorted(found, key=_order)]


def _order(name: str) -> tuple[bool, str]:
    return (name != "INBOX", name)
