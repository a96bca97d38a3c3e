"""SEARCH on the selected mailbox. A message as SEARCH sees it (``wire.search.Subject``) is
its row, its header block (kept at delivery, so header keys read no message) and, only for
BODY and TEXT, its whole content. Text keys first ask the encrypted index which messages may
match (``Mailboxes.candidates``), so only those are read and tested exactly. A search with RETURN (UPDATE) stays with the view and is
told of every arrival, change and expunge (ADDTO/REMOVEFROM), matching only those messages."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from enclave.core.mail.mailboxes import MessageRow
from enclave.core.mail.text import body_text, decoded, with_addresses
from enclave.imap import fetch
from enclave.imap.parts import SessionParts
from enclave.imap.wire import response
from enclave.imap.wire.headers import header_values
from enclave.imap.wire.message import Message
from enclave.imap.wire.search import (
    BODY_KEYS,
    HEADER_KEYS,
    ROW_KEYS,
    Key,
    bind_saved,
    key_names,
    matches,
)
from enclave.imap.wire.tokens import SeqSet

if TYPE_CHECKING:
    from enclave.imap.view import View
    from enclave.imap.wire.commands import Request


class Searchable:
    def __init__(
        self,
        seq: int,
        uid: int,
        flags: frozenset[str],
        modseq: int,
        row: MessageRow | None,
        header: bytes | None = None,
        raw: bytes | None = None,
    ) -> None:
        self.seq, self.uid, self.flags, self.modseq = seq, uid, flags, modseq
        # Rows are read only when a key needs a date or size (ROW_KEYS and content keys).
        self.internal_date = row.internal_date if row else datetime.min
        self.size = row.size if row else 0
        if header is None and raw is not None:
            header = Message(raw).section("HEADER")
        self._header = header or b""
        self._raw = raw

    def header(self, name: str) -> list[str]:
        values = [decoded(v) for v in header_values(self._header, None if name == "*" else name)]
        return with_addresses(name, values)  # addresses also as parsed: comments dropped

    def body_text(self) -> str:
        return "" if self._raw is None else body_text(self._raw)

    def sent(self) -> date | None:
        values = self.header("date")
        try:
            return parsedate_to_datetime(values[0]).date() if values else None
        except (TypeError, ValueError, IndexError):
            return None


@dataclass
class SearchContext:
    """A SEARCH RETURN (UPDATE) kept current as the mailbox changes (RFC 5267 4)."""

    key: Key
    uid: bool
    found: set[int]  # UIDs


class SearchCommands(SessionParts):
    """SEARCH (RFC 3501 6.4.4, ESEARCH RFC 4731, CONTEXT=SEARCH RFC 5267) and CANCELUPDATE."""

    async def do_SEARCH(self, request: Request) -> None:
        view = self._view()
        key, returns = request.args["key"], request.args["returns"]
        if returns is None and self.rev2:  # IMAP4rev2 answers every SEARCH with ESEARCH
            returns = []
        uses_modseq = "MODSEQ" in key_names(key)
        if uses_modseq:
            await self.enable_condstore()
        found = await self._search(view, key)
        numbers = [uid if request.uid else seq for seq, uid, _ in found]
        if returns is None:
            line = "SEARCH" + "".join(f" {n}" for n in numbers)
            if uses_modseq and found:
                line += f" (MODSEQ {max(m for _, _, m in found)})"
            await self.send(response.untagged(line))
        else:
            if "SAVE" in returns:
                view.saved = _saved(found, returns)
            if returns != ["SAVE"]:  # SAVE alone answers nothing (RFC 5182 2.1)
                modseqs = found if uses_modseq else []
                await self.send(_esearch(request, numbers, returns, modseqs))
            if "UPDATE" in returns:
                view.contexts[request.tag] = SearchContext(
                    key, request.uid, {uid for _, uid, _ in found}
                )
        await self.refresh(allow_expunge=request.uid)
        await self.ok(request)

    async def do_CANCELUPDATE(self, request: Request) -> None:
        view = self._view()
        tags: list[str] = request.args["tags"]
        unknown = [tag for tag in tags if tag not in view.contexts]
        if unknown:
            await self.send(response.tagged(request.tag, "BAD", f"no search {unknown[0]!r}"))
            return
        for tag in tags:
            del view.contexts[tag]
        await self.ok(request)

    async def _search(
        self, view: View, key: Key, only: Collection[int] | None = None
    ) -> list[tuple[int, int, int]]:
        """(seq, uid, modseq) of the matching messages (among ``only``, if given), reading
        only what the keys need: flags and numbers from the view, dates and sizes from the
        rows, header keys from the header blocks kept at delivery, message content only for
        BODY and TEXT."""
        key = bind_saved(key, uid_ranges(view.saved))
        names = key_names(key)
        body = bool(names & BODY_KEYS)
        header = bool(names & HEADER_KEYS) and not body
        mailboxes, box = self.services.mailboxes, view.mailbox.id
        wanted = None if only is None else set(only)
        uids = list(view.uids) if wanted is None else [u for u in view.uids if u in wanted]
        needles = _needles(key)
        narrowed = await mailboxes.candidates(self.user, box, needles) if needles and uids else None
        if narrowed is not None:  # the index's candidates: the exact test below decides
            uids = [uid for uid in uids if uid in narrowed]
        rows = (
            {row.uid: row for row in await mailboxes.rows(self.user, box, uids)}
            if body or header or names & ROW_KEYS
            else {}
        )
        forms = await mailboxes.derived(self.user, box, uids) if header else {}
        found: list[tuple[int, int, int]] = []
        largest_uid = view.uids[-1] if view.uids else 0

        def test(batch: list[Searchable]) -> list[tuple[int, int, int]]:
            return [(m.seq, m.uid, m.modseq) for m in batch
                    if matches(key, m, largest_seq=view.exists, largest_uid=largest_uid)]  # fmt: skip

        for start in range(0, len(uids), CONTENT_BATCH):
            chunk = uids[start : start + CONTENT_BATCH]
            reading = [
                rows[uid] for uid in chunk if uid in rows
                and (body or (header and fetch.kept_header(forms.get(uid)) is None))
            ]  # fmt: skip
            raws = {row.uid: raw async for row, raw in mailboxes.contents(self.user, reading)}
            subjects = []
            for uid in chunk:
                row = rows.get(uid)
                if row is None and rows:
                    continue  # expunged since the view was loaded
                subjects.append(Searchable(
                    view.seq(uid) or 0, uid, view.flags_of(uid), view.modseqs.get(uid, 0), row,
                    fetch.kept_header(forms.get(uid)), raws.get(uid),
                ))  # fmt: skip
            # Parsing message text is CPU-bound: in a worker thread, off the event loop.
            found += await asyncio.to_thread(test, subjects) if raws else test(subjects)
        return found

    # --- UPDATE: what the refresh tells the searches that follow the mailbox --------------

    async def _contexts_expunging(self, view: View, uids: set[int]) -> None:
        """REMOVEFROM for messages about to be reported expunged, numbered as they still
        are (so it must go out before the EXPUNGE responses)."""
        for tag, context in view.contexts.items():
            gone = context.found & uids
            if gone:
                await self.send(_update(tag, context, view, "REMOVEFROM", gone, context.found))
                context.found -= gone

    async def _contexts_changed(self, view: View, uids: list[int]) -> None:
        """ADDTO and REMOVEFROM for messages that arrived or changed: each is matched again,
        the rest of the mailbox is not read."""
        if not view.contexts or not uids:
            return
        for tag, context in view.contexts.items():
            now = {uid for _, uid, _ in await self._search(view, context.key, only=uids)}
            removed = (context.found & set(uids)) - now
            added = now - context.found
            if removed:
                await self.send(_update(tag, context, view, "REMOVEFROM", removed, context.found))
                context.found -= removed
            if added:
                context.found |= added
                await self.send(_update(tag, context, view, "ADDTO", added, context.found))


CONTENT_BATCH = 256  # messages read and tested at a time (bounds the memory of a BODY search)
TEXT_KEYS = frozenset({"BODY", "TEXT", "SUBJECT", "FROM", "TO", "CC", "BCC"})


def _needles(key: Key) -> list[str]:
    """The strings every match must contain: those of the text keys ANDed at the top of the
    search (under OR or NOT a key narrows nothing)."""
    if key[0] == "AND":
        return [needle for each in key[1] for needle in _needles(each)]
    if key[0] in TEXT_KEYS:
        return [key[1]]
    if key[0] == "HEADER":
        return [key[2]]
    return []


def _saved(found: list[tuple[int, int, int]], returns: list[str]) -> list[int]:
    """What RETURN (SAVE) keeps: every match, or with MIN/MAX alone only those (RFC 5182 2.1)."""
    uids = [uid for _, uid, _ in found]
    if not uids or set(returns) & {"ALL", "COUNT"} or not set(returns) & {"MIN", "MAX"}:
        return uids
    kept = {uids[0]} if "MIN" in returns else set()
    return sorted(kept | ({uids[-1]} if "MAX" in returns else set()))


def uid_ranges(uids: list[int]) -> SeqSet:
    """UIDs as a sequence set (one range each)."""
    return tuple((uid, uid) for uid in uids)


def _update(
    tag: str, context: SearchContext, view: View, kind: str, uids: set[int], result: set[int]
) -> bytes:
    """* ESEARCH (TAG "t") [UID] ADDTO|REMOVEFROM (position set): the position is where the
    first of them stands in the result (after an addition, before a removal)."""
    position = sorted(result).index(min(uids)) + 1
    numbers = sorted(uids) if context.uid else [view.seq(u) or 0 for u in sorted(uids)]
    prefix = f'(TAG "{tag}") ' + ("UID " if context.uid else "")
    line = f"ESEARCH {prefix}{kind} ({position} {response.sequence_set(numbers).decode()})"
    return response.untagged(line)


def _esearch(
    request: Request, numbers: list[int], returns: list[str], found: list[tuple[int, int, int]]
) -> bytes:
    """RFC 4731: * ESEARCH (TAG "x") [UID] MIN n MAX n COUNT n ALL set; RFC 5267: PARTIAL."""
    wanted = [r for r in returns if r != "SAVE"] or ["ALL"]
    parts = [f'(TAG "{request.tag}")'] + (["UID"] if request.uid else [])
    if numbers:
        if "MIN" in wanted:
            parts.append(f"MIN {min(numbers)}")
        if "MAX" in wanted:
            parts.append(f"MAX {max(numbers)}")
        if "ALL" in wanted:
            parts.append("ALL " + response.sequence_set(numbers).decode())
    if "COUNT" in wanted:
        parts.append(f"COUNT {len(numbers)}")
    if "PARTIAL" in wanted:
        first, last = request.args["partial"]
        chosen = numbers[first - 1 : last]
        listed = response.sequence_set(chosen).decode() if chosen else "NIL"
        parts.append(f"PARTIAL ({first}:{last} {listed})")
    if found:  # the modseq of the one message MIN or MAX names, else the highest (RFC 4731 3.2)
        by_number = {uid if request.uid else seq: modseq for seq, uid, modseq in found}
        if wanted == ["MIN"]:
            parts.append(f"MODSEQ {by_number[min(numbers)]}")
        elif wanted == ["MAX"]:
            parts.append(f"MODSEQ {by_number[max(numbers)]}")
        else:
            parts.append(f"MODSEQ {max(by_number.values())}")
    return response.untagged("ESEARCH " + " ".join(parts))
