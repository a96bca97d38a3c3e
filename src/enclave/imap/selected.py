"""Commands on a selected mailbox (RFC 3501 6.3.1-2, 6.4; UIDPLUS, MOVE, CONDSTORE, ESEARCH),
and ``refresh``, which tells the client what other sessions and deliveries changed."""

from __future__ import annotations

import functools
from typing import Any

from enclave.core.errors import NotFound
from enclave.core.mail.mailboxes import MailboxInfo
from enclave.imap import fetch
from enclave.imap.parts import SessionParts
from enclave.imap.view import View
from enclave.imap.wire import binary, response
from enclave.imap.wire.commands import FetchItem, Request, Resync
from enclave.imap.wire.search import in_set

SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
SEND_BATCH = 64 * 1024  # FETCH replies go out in batches: a TLS record per line costs


class SelectedCommands(SessionParts):
    # --- selecting -----------------------------------------------------------------------

    async def _select(self, request: Request, readonly: bool) -> None:
        resync = request.args["qresync"]
        if resync is not None and not self.qresync:
            await self.send(response.tagged(request.tag, "BAD", "ENABLE QRESYNC first"))
            return
        if self.view is not None:  # RFC 7162 3.2.11: the old mailbox's responses end here
            self.view = None
            await self.send(response.untagged("OK [CLOSED] previous mailbox closed"))
        name = self.mailbox_name(request.args["mailbox"])
        mailboxes = self.services.mailboxes
        box = await mailboxes.get(self.user, name)
        info, states = await mailboxes.state(self.user, box.id)
        if request.args["condstore"]:
            self.condstore = True
        view = View.load(info, states, readonly=readonly, condstore=self.condstore)
        recent_from = info.recent_uid  # EXAMINE looks without claiming (RFC 3501 6.3.2)
        if not readonly and not self.rev2 and info.uidnext > info.recent_uid:
            recent_from = await mailboxes.claim_recent(self.user, box.id, info.uidnext)
        if not self.rev2:  # IMAP4rev2 has no \\Recent (RFC 9051 appendix E)
            view.recent = {uid for uid in view.uids if uid >= recent_from}
        unseen = next(
            (i + 1 for i, uid in enumerate(view.uids) if "\\Seen" not in view.flags[uid]), None
        )
        lines: list[str | bytes] = [*_flag_lines(view), f"{view.exists} EXISTS"]
        if self.rev2:  # the mailbox's name as the server spells it, in place of RECENT
            lines.append(b'LIST () "/" ' + self.wire_name(info.name))
        else:
            lines.append(f"{len(view.recent)} RECENT")
        lines += [
            f"OK [UIDVALIDITY {info.uidvalidity}] UIDs valid",
            f"OK [UIDNEXT {info.uidnext}] predicted next UID",
            f"OK [HIGHESTMODSEQ {info.highestmodseq}] modification sequence",
        ]
        if unseen is not None and not self.rev2:
            lines.append(f"OK [UNSEEN {unseen}] first unseen")
        for line in lines:
            await self.send(response.untagged(line))
        if resync is not None and resync.uidvalidity == info.uidvalidity:
            await self._resync(view, resync)
        self.view = view
        await self.ok(request, "selected", "READ-ONLY" if readonly else "READ-WRITE")

    async def do_SELECT(self, request: Request) -> None:
        await self._select(request, readonly=False)

    async def do_EXAMINE(self, request: Request) -> None:
        await self._select(request, readonly=True)

    def _view(self) -> View:
        assert self.view is not None
        return self.view

    async def enable_condstore(self) -> None:
        """A CONDSTORE-enabling command was seen (RFC 7162 3.1): from now on every FETCH the
        session sends carries MODSEQ, in the selected mailbox too, which is told its
        HIGHESTMODSEQ the first time (RFC 7162 3.1.2.1)."""
        self.condstore = True
        if self.view is not None and not self.view.condstore:
            self.view.condstore = True
            await self.send(
                response.untagged(f"OK [HIGHESTMODSEQ {self.view.mailbox.highestmodseq}] now")
            )

    async def do_CLOSE(self, request: Request) -> None:
        view = self._view()
        if not view.readonly:  # silently expunge (RFC 3501 6.4.2)
            await self.services.mailboxes.expunge(self.user, view.mailbox.id)
        self.view = None
        await self.ok(request)

    async def do_UNSELECT(self, request: Request) -> None:
        self.view = None
        await self.ok(request)

    async def do_CHECK(self, request: Request) -> None:
        await self.refresh(allow_expunge=True)
        await self.ok(request)

    # --- what changed elsewhere ----------------------------------------------------------

    async def refresh(self, *, allow_expunge: bool) -> None:
        """Untagged EXPUNGE, EXISTS and FETCH for changes since the view was last current.
        EXPUNGE waits while ``allow_expunge`` is false (RFC 3501 7.4.1)."""
        view = self._view()
        info, changed, gone = await self.services.mailboxes.changes(
            self.user, view.mailbox.id, view.modseq
        )
        view.held_expunges.update(uid for uid in gone if view.seq(uid) is not None)
        if allow_expunge and view.held_expunges:
            await self._contexts_expunging(view, view.held_expunges)
            for uid in sorted(view.held_expunges, reverse=True):
                seq = view.remove(uid)
                if seq is not None and not self.qresync:
                    await self.send(response.untagged(f"{seq} EXPUNGE"))
            if self.qresync:
                vanished = response.sequence_set(view.held_expunges)
                await self.send(response.untagged(b"VANISHED " + vanished))
            view.held_expunges.clear()
        before = view.exists
        updates: list[int] = []
        arrived: list[int] = []
        for state in changed:
            if state.uid in view.held_expunges:
                continue
            is_new = view.seq(state.uid) is None
            if view.add(state):
                (arrived if is_new else updates).append(state.uid)
        await self._announce(frozenset().union(*(s.flags for s in changed)))
        if arrived:
            await self._claim_recent(view, info, arrived)
        if view.exists != before:
            counts = response.untagged(f"{view.exists} EXISTS")  # one write: a client reads both
            if not self.rev2:
                counts += response.untagged(f"{len(view.recent)} RECENT")
            await self.send(counts)
        for uid in updates:  # view.add has recorded their flags and modseqs
            seq = view.seq(uid)
            items = [(b"FLAGS", response.flag_set(view.flags_of(uid)))]
            if view.condstore:
                items.append((b"MODSEQ", b"(%d)" % view.modseqs[uid]))
            await self.send(response.fetch(seq or 0, [(b"UID", b"%d" % uid), *items]))
        view.modseq = info.highestmodseq if not view.held_expunges else view.modseq
        view.mailbox = info
        touched = [s.uid for s in changed if s.uid not in view.held_expunges]
        await self._contexts_changed(view, touched)

    async def _resync(self, view: View, resync: Resync) -> None:
        """SELECT (QRESYNC ...): what was expunged and what changed since the client's modseq,
        limited to the UIDs it says it knows (RFC 7162 3.2.5)."""
        _, changed, gone = await self.services.mailboxes.changes(
            self.user, view.mailbox.id, resync.modseq
        )
        largest = max(view.mailbox.uidnext - 1, 1)
        known = resync.known_uids
        vanished = [u for u in gone if known is None or in_set(u, known, largest)]
        if vanished:
            line = b"VANISHED (EARLIER) " + response.sequence_set(vanished)
            await self.send(response.untagged(line))
        for state in changed:
            seq = view.seq(state.uid)
            if seq is None or (known is not None and not in_set(state.uid, known, largest)):
                continue
            await self.send(response.fetch(seq, [
                (b"UID", b"%d" % state.uid),
                (b"FLAGS", response.flag_set(view.flags_of(state.uid))),
                (b"MODSEQ", b"(%d)" % view.modseqs.get(state.uid, state.modseq)),
            ]))  # fmt: skip

    async def _claim_recent(self, view: View, info: MailboxInfo, arrived: list[int]) -> None:
        """New messages are \\Recent for the first session to see them (RFC 3501 2.3.2);
        a read-only session sees them so without taking them from the others."""
        if self.rev2:
            return
        first = info.recent_uid
        if not view.readonly:
            first = await self.services.mailboxes.claim_recent(
                self.user, view.mailbox.id, max(arrived) + 1
            )
        view.recent.update(uid for uid in arrived if uid >= first)

    async def _announce(self, flags: frozenset[str]) -> None:
        """A keyword is named in an untagged FLAGS (and PERMANENTFLAGS) before any FETCH
        carries it (RFC 3501 7.2.6)."""
        view = self._view()
        new = view.unannounced(flags)
        if new:
            view.keywords |= new
            for line in _flag_lines(view):
                await self.send(response.untagged(line))

    # --- FETCH, STORE, SEARCH ------------------------------------------------------------

    async def _targets(
        self, request: Request, changed_since: int | None = None
    ) -> list[int] | None:
        """The UIDs a command's sequence set names; with ``changed_since`` (CONDSTORE), only
        those changed after it, found through the modseq index, not by walking the set."""
        view = self._view()
        sequence = request.args["sequence"]
        if not request.uid and not view.valid_seq(sequence):
            await self.send(response.tagged(request.tag, "BAD", "message number out of range"))
            return None
        if changed_since is None:
            return view.resolve(sequence, by_uid=request.uid)
        _, changed, _ = await self.services.mailboxes.changes(
            self.user, view.mailbox.id, changed_since
        )
        return [s.uid for s in changed if view.contains(sequence, s.uid, by_uid=request.uid)]

    async def do_FETCH(self, request: Request) -> None:
        view = self._view()
        changed_since = request.args["changed_since"]
        items = request.args["items"]
        if request.args["vanished"] and not (request.uid and self.qresync):
            await self.send(
                response.tagged(request.tag, "BAD", "VANISHED needs UID FETCH and QRESYNC")
            )
            return
        if changed_since is not None or any(item.name == "MODSEQ" for item in items):
            await self.enable_condstore()
        uids = await self._targets(request, changed_since)
        if uids is None:
            return
        if request.args["vanished"]:  # RFC 7162 3.2.6: expunged UIDs of the set first
            _, _, gone = await self.services.mailboxes.changes(
                self.user, view.mailbox.id, changed_since
            )
            largest = max(view.mailbox.uidnext - 1, 1)
            vanished = [u for u in gone if in_set(u, request.args["sequence"], largest)]
            if vanished:
                line = b"VANISHED (EARLIER) " + response.sequence_set(vanished)
                await self.send(response.untagged(line))
        rows, forms = await self.services.mailboxes.listing(
            self.user, view.mailbox.id, uids, forms=fetch.needs_content(items)
        )
        if fetch.sets_seen(items) and not view.readonly:
            unseen = [row.uid for row in rows if "\\Seen" not in row.flags]
            if unseen:
                changed, _ = await self.services.mailboxes.store(
                    self.user, view.mailbox.id, unseen, "add", ["\\Seen"]
                )
                for state in changed:
                    view.add(state)
                if not any(item.name == "FLAGS" for item in items):
                    items = [*items, FetchItem("FLAGS")]
        out: list[bytes] = []
        pending = 0
        missing = len(uids) - len(rows)  # expunged by another session since the view knew them
        for row in rows:
            seq = view.seq(row.uid)
            if seq is None:
                continue

            load = functools.partial(self.services.mailboxes.content, self.user, row)
            try:
                pairs = await fetch.render(
                    row, view.flags_of(row.uid), items, fetch.Source(forms.get(row.uid), load),
                    with_uid=request.uid, modseq=view.modseqs.get(row.uid, row.modseq),
                    with_modseq=view.condstore,
                )  # fmt: skip
            except NotFound:  # its content went with an expunge meanwhile: the rest still come
                missing += 1
                continue
            except binary.UnknownCTE as exc:  # BINARY of a part it cannot decode (RFC 3516)
                await self.send(b"".join(out))
                await self.send(response.tagged(request.tag, "NO", str(exc), "UNKNOWN-CTE"))
                return
            line = response.fetch(seq, pairs)
            out.append(line)
            pending += len(line)
            if pending > SEND_BATCH:
                await self.send(b"".join(out))
                out.clear()
                pending = 0
        await self.send(b"".join(out))
        await self.refresh(allow_expunge=request.uid)
        if missing:
            await self.send(response.tagged(
                request.tag, "NO", "some of the requested messages no longer exist",
                "EXPUNGEISSUED",
            ))  # fmt: skip
            return
        await self.ok(request)

    async def do_STORE(self, request: Request) -> None:
        view = self._view()
        if view.readonly:
            await self.send(response.tagged(request.tag, "NO", "mailbox is read-only", "READ-ONLY"))
            return
        uids = await self._targets(request)
        if uids is None:
            return
        args: dict[str, Any] = request.args
        if args["unchanged_since"] is not None:
            await self.enable_condstore()
        changed, refused = await self.services.mailboxes.store(
            self.user, view.mailbox.id, uids, args["mode"], args["flags"], args["unchanged_since"]
        )
        await self._announce(frozenset().union(*(state.flags for state in changed)))
        for state in changed:
            view.add(state)
            if args["silent"] and not view.condstore:
                continue
            flags = response.flag_set(view.flags_of(state.uid))
            items = [] if args["silent"] else [(b"FLAGS", flags)]
            if request.uid or view.condstore:
                items.insert(0, (b"UID", b"%d" % state.uid))
            if view.condstore:
                items.append((b"MODSEQ", b"(%d)" % state.modseq))
            await self.send(response.fetch(view.seq(state.uid) or 0, items))
        await self.refresh(allow_expunge=request.uid)
        if refused:
            numbers = refused if request.uid else [view.seq(u) or 0 for u in refused]
            await self.ok(request, "some messages changed meanwhile",
                          "MODIFIED " + response.sequence_set(numbers).decode())  # fmt: skip
            return
        await self.ok(request)

    # --- COPY, MOVE, EXPUNGE -------------------------------------------------------------

    async def _copy(self, request: Request, *, move: bool) -> None:
        view = self._view()
        if move and view.readonly:
            await self.send(response.tagged(request.tag, "NO", "mailbox is read-only", "READ-ONLY"))
            return
        uids = await self._targets(request)
        if uids is None:
            return
        target = self.mailbox_name(request.args["mailbox"])
        try:
            await self.services.mailboxes.get(self.user, target)
        except NotFound:
            await self.send(response.tagged(request.tag, "NO", "no such mailbox", "TRYCREATE"))
            return
        validity, source, created = await self.services.mailboxes.copy(
            self.user, view.mailbox.id, uids, target, move=move
        )
        code = None
        if source:
            code = (f"COPYUID {validity} {response.sequence_set(source).decode()} "
                    f"{response.sequence_set(created).decode()}")  # fmt: skip
        if move:
            if code:
                await self.send(response.untagged(f"OK [{code}] moved"))
            await self.refresh(allow_expunge=True)
            await self.ok(request)
        else:
            await self.ok(request, code=code)

    async def do_COPY(self, request: Request) -> None:
        await self._copy(request, move=False)

    async def do_MOVE(self, request: Request) -> None:
        await self._copy(request, move=True)

    async def do_EXPUNGE(self, request: Request) -> None:
        view = self._view()
        if view.readonly:
            await self.send(response.tagged(request.tag, "NO", "mailbox is read-only", "READ-ONLY"))
            return
        uids = view.resolve(request.args["sequence"], by_uid=True) if request.uid else None
        await self.services.mailboxes.expunge(self.user, view.mailbox.id, uids)
        await self.refresh(allow_expunge=True)
        await self.ok(request)


def _flag_lines(view: View) -> list[str]:
    """FLAGS and PERMANENTFLAGS: the system flags and the keywords in use, and (read-write)
    that new keywords may be created."""
    known = " ".join((*SYSTEM_FLAGS, *sorted(view.keywords)))
    permanent = "" if view.readonly else f"{known} \\*"
    return [f"FLAGS ({known})", f"OK [PERMANENTFLAGS ({permanent})] flags"]
