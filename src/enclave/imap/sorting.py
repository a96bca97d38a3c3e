"""SORT and THREAD on the selected mailbox (RFC 5256, RFC 5957 SORT=DISPLAY, RFC 5267 ESORT),
and their UID forms.

The search criteria go through ``SelectedCommands._search``; then only what the sort keys
need is read, for the matching messages only: the header blocks kept at delivery
(``Mailboxes.derived``) for address, subject and date keys and for threading, the rows for
ARRIVAL and SIZE, and for DATE or threading only when some message has no usable Date field.
Sorting and threading run in a worker thread: their cost grows with the mailbox.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from enclave.imap import fetch
from enclave.imap.parts import SessionParts
from enclave.imap.wire import response, sort, thread
from enclave.imap.wire.message import Message
from enclave.imap.wire.search import key_names

if TYPE_CHECKING:
    from enclave.core.mail.mailboxes import MessageRow
    from enclave.imap.view import View
    from enclave.imap.wire.commands import Request


class SortCommands(SessionParts):
    async def do_SORT(self, request: Request) -> None:
        view = self._view()
        criteria: list[sort.Criterion] = request.args["criteria"]
        key = request.args["key"]
        uses_modseq = "MODSEQ" in key_names(key)
        if uses_modseq:
            await self.enable_condstore()
        found = await self._search(view, key)
        messages = await self._sortables(
            view,
            found,
            header=sort.needs_header(criteria),
            rows=sort.needs_rows(criteria),
            dates=any(c.key == "DATE" for c in criteria),
        )
        order = await asyncio.to_thread(sort.sort, messages, criteria)
        uid_of = {seq: uid for seq, uid, _ in found}
        numbers = [uid_of[seq] if request.uid else seq for seq in order]
        modseq = max((m for _, _, m in found), default=0) if uses_modseq else 0
        returns = request.args["returns"]
        if returns is not None:
            await self.send(_esort(request, numbers, returns, modseq))
        else:
            line = b"SORT" + b"".join(b" %d" % n for n in numbers)
            if modseq:
                line += b" (MODSEQ %d)" % modseq
            await self.send(response.untagged(line))
        await self.refresh(allow_expunge=request.uid)
        await self.ok(request)

    async def do_THREAD(self, request: Request) -> None:
        view = self._view()
        key = request.args["key"]
        if "MODSEQ" in key_names(key):
            await self.enable_condstore()
        found = await self._search(view, key)
        messages = await self._sortables(view, found, header=True, rows=False, dates=True)
        algorithm = (
            thread.references
            if request.args["algorithm"] == "REFERENCES"
            else thread.ordered_subject
        )
        uid_of = {seq: uid for seq, uid, _ in found}

        def threads() -> bytes:
            roots = algorithm(messages)
            return thread.render(roots, uid_of.__getitem__ if request.uid else lambda seq: seq)

        rendered = await asyncio.to_thread(threads)
        await self.send(response.untagged(b"THREAD " + rendered if rendered else b"THREAD"))
        await self.refresh(allow_expunge=request.uid)
        await self.ok(request)

    async def _sortables(
        self,
        view: View,
        found: list[tuple[int, int, int]],
        *,
        header: bool,
        rows: bool,
        dates: bool,
    ) -> list[sort.Sortable]:
        """The matching messages with what the keys need. A message expunged meanwhile (its
        row or its forms gone) is left out."""
        mailboxes, box = self.services.mailboxes, view.mailbox.id
        uids = [uid for _, uid, _ in found]
        headers: dict[int, bytes | None] = dict.fromkeys(uids, b"")
        if header and uids:
            forms = await mailboxes.derived(self.user, box, uids)
            headers = {uid: fetch.kept_header(forms.get(uid)) for uid in uids}
            missing = any(h is None for h in headers.values())
            undated = dates and await asyncio.to_thread(_any_undated, headers)
            rows = rows or missing or undated
        by_uid: dict[int, MessageRow] = {}
        if rows and uids:
            by_uid = {row.uid: row for row in await mailboxes.rows(self.user, box, uids)}
        out: list[sort.Sortable] = []
        for seq, uid, _ in found:
            row = by_uid.get(uid)
            if rows and row is None:
                continue
            kept = headers.get(uid)
            if kept is None and row is not None:  # forms from before FORMS_VERSION: parse
                raw = await mailboxes.content(self.user, row)
                kept = await asyncio.to_thread(_header_of, raw)
            if kept is None:
                continue
            out.append(sort.Sortable(seq, kept, row.internal_date if row else None,
                                     row.size if row else 0))  # fmt: skip
        return out


def _header_of(raw: bytes) -> bytes | None:
    return Message(raw).section("HEADER")


def _any_undated(headers: dict[int, bytes | None]) -> bool:
    return any(h is not None and sort.sent_date(h) is None for h in headers.values())


def _esort(request: Request, numbers: list[int], returns: list[str], modseq: int) -> bytes:
    """RFC 5267 section 3.2: one ESEARCH line; MIN and MAX are the first and last messages in
    sort order, ALL lists them in that order."""
    wanted = returns or ["ALL"]
    parts = [b'(TAG "%s")' % request.tag.encode()] + ([b"UID"] if request.uid else [])
    if numbers:
        if "MIN" in wanted:
            parts.append(b"MIN %d" % numbers[0])
        if "MAX" in wanted:
            parts.append(b"MAX %d" % numbers[-1])
        if "ALL" in wanted:
            parts.append(b"ALL " + sort.sequence_in_order(numbers))
    if "COUNT" in wanted:
        parts.append(b"COUNT %d" % len(numbers))
    if modseq and numbers:
        parts.append(b"MODSEQ %d" % modseq)
    return response.untagged(b"ESEARCH " + b" ".join(parts))
