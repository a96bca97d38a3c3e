"""The selected mailbox as one session sees it: the sequence-number map, the flags it has
reported, and the modification sequence up to which it is current. Pure bookkeeping."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from enclave.core.mail.mailboxes import SYSTEM_FLAGS, MailboxInfo, MessageState
from enclave.imap.wire.search import in_set
from enclave.imap.wire.tokens import SAVED, SeqSet

if TYPE_CHECKING:
    from enclave.imap.searching import SearchContext


@dataclass
class View:
    mailbox: MailboxInfo
    readonly: bool
    condstore: bool
    uids: list[int] = field(default_factory=list)
    flags: dict[int, frozenset[str]] = field(default_factory=dict)
    modseqs: dict[int, int] = field(default_factory=dict)
    modseq: int = 0
    held_expunges: set[int] = field(default_factory=set)
    recent: set[int] = field(default_factory=set)  # \Recent for this session alone
    keywords: set[str] = field(default_factory=set)  # announced in FLAGS
    contexts: dict[str, SearchContext] = field(default_factory=dict)  # SEARCH (UPDATE) by tag
    saved: list[int] = field(default_factory=list)  # UIDs of SEARCH RETURN (SAVE): "$"

    @classmethod
    def load(
        cls, mailbox: MailboxInfo, states: list[MessageState], *, readonly: bool, condstore: bool
    ) -> View:
        view = cls(mailbox, readonly, condstore, modseq=mailbox.highestmodseq)
        for state in states:
            view.uids.append(state.uid)
            view.flags[state.uid] = state.flags
            view.modseqs[state.uid] = state.modseq
        view.keywords = {flag for state in states for flag in state.flags} - SYSTEM_FLAGS
        return view

    def flags_of(self, uid: int) -> frozenset[str]:
        """The flags the client sees: the stored ones, and \\Recent where it is this
        session's."""
        flags = self.flags.get(uid, frozenset())
        return flags | {"\\Recent"} if uid in self.recent else flags

    def unannounced(self, flags: frozenset[str]) -> set[str]:
        """Keywords the client has not yet been told of in an untagged FLAGS."""
        return set(flags) - SYSTEM_FLAGS - self.keywords

    @property
    def exists(self) -> int:
        return len(self.uids)

    def seq(self, uid: int) -> int | None:
        index = bisect_left(self.uids, uid)
        if index < len(self.uids) and self.uids[index] == uid:
            return index + 1
        return None

    def resolve(self, sequence: SeqSet, *, by_uid: bool) -> list[int]:
        """The UIDs a sequence set names, ascending; unknown numbers are skipped (RFC 3501)."""
        if sequence == SAVED:  # the saved result, less what has been expunged since
            return [uid for uid in self.saved if uid in self.flags]
        if not self.uids:
            return []
        found: set[int] = set()
        if by_uid:
            largest = self.uids[-1]
            for low, high in sequence:
                lo, hi = largest if low is None else low, largest if high is None else high
                lo, hi = min(lo, hi), max(lo, hi)
                start, stop = bisect_left(self.uids, lo), bisect_left(self.uids, hi + 1)
                found.update(self.uids[start:stop])
        else:
            largest = len(self.uids)
            for low, high in sequence:
                lo, hi = largest if low is None else low, largest if high is None else high
                lo, hi = max(1, min(lo, hi)), min(largest, max(lo, hi))
                found.update(self.uids[lo - 1 : hi])
        return sorted(found)

    def contains(self, sequence: SeqSet, uid: int, *, by_uid: bool) -> bool:
        """Whether a sequence set names this message (one test, for a few known UIDs)."""
        if sequence == SAVED:
            return uid in self.saved and uid in self.flags
        if by_uid:
            return self.seq(uid) is not None and in_set(uid, sequence, self.uids[-1])
        seq = self.seq(uid)
        return seq is not None and in_set(seq, sequence, self.exists)

    def valid_seq(self, sequence: SeqSet) -> bool:
        """Message numbers beyond EXISTS are an error for non-UID commands."""
        return sequence == SAVED or all(
            (low is None or low <= self.exists) and (high is None or high <= self.exists)
            for low, high in sequence
        )

    def remove(self, uid: int) -> int | None:
        """Forget an expunged message; returns the sequence number it had."""
        seq = self.seq(uid)
        if seq is not None:
            del self.uids[seq - 1]
            self.flags.pop(uid, None)
            self.modseqs.pop(uid, None)
            self.recent.discard(uid)
        return seq

    def add(self, state: MessageState) -> bool:
        """Record a new or changed message; True if the client must hear about it."""
        known = state.uid in self.flags
        if known and self.flags[state.uid] == state.flags:
            self.modseqs[state.uid] = state.modseq
            return False
        if not known:
            index = bisect_left(self.uids, state.uid)
            self.uids.insert(index, state.uid)
        self.flags[state.uid] = state.flags
        self.modseqs[state.uid] = state.modseq
        return True
