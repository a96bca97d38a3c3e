"""NOTIFY (RFC 5465): the client names mailboxes and events once, and the server tells it of
them while it waits for its next command, IDLE or not.

- The selected mailbox (SELECTED, SELECTED-DELAYED): what ``refresh`` sends, at once;
  SELECTED-DELAYED keeps expunges for the next command that may carry them.
- Other mailboxes (INBOXES, PERSONAL, SUBSCRIBED, SUBTREE, MAILBOXES): a STATUS line when
  their counts change (MessageNew, MessageExpunge: MESSAGES UIDNEXT UIDVALIDITY; FlagChange:
  UIDVALIDITY HIGHESTMODSEQ), and with NOTIFY SET STATUS one for each at once.
- MailboxName, SubscriptionChange: a LIST line for a mailbox that appeared, disappeared
  (\\NonExistent) or changed subscription.

Wake-ups come from the change bus (mailbox ids, and the user's own topic for names and
subscriptions); each only means "look again", so what is sent is the difference from what
this session was last told.
"""

from __future__ import annotations

import asyncio
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from enclave.core.errors import EnclaveError
from enclave.core.mail.mailboxes import user_topic
from enclave.imap.parts import SessionParts
from enclave.imap.wire import listing, response
from enclave.imap.wire.notify import SPELLING, Group

if TYPE_CHECKING:
    from enclave.imap.wire.commands import Request

SUPPORTED = frozenset(
    {"MESSAGENEW", "MESSAGEEXPUNGE", "FLAGCHANGE", "MAILBOXNAME", "SUBSCRIPTIONCHANGE"}
)
COUNTS = ("MESSAGES", "UIDNEXT", "UIDVALIDITY")


@dataclass
class Watch:
    """One NOTIFY SET: what to watch, and what the client was last told."""

    selected: frozenset[str] | None  # events for the selected mailbox, None: not watched
    delayed: bool  # SELECTED-DELAYED: expunges wait for a command
    groups: list[Group]
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    mailboxes: dict[str, tuple[str, frozenset[str]]] = field(default_factory=dict)  # id: name
    told: dict[str, bytes] = field(default_factory=dict)  # mailbox id: last STATUS line
    names: dict[str, bool] = field(default_factory=dict)  # name: subscribed, as last told
    stack: ExitStack = field(default_factory=ExitStack)
    topics: set[str] = field(default_factory=set)  # registered with the bus

    @property
    def events(self) -> frozenset[str]:
        """The events asked for the mailboxes other than the selected one."""
        return frozenset().union(*(group.events for group in self.groups))


class NotifyCommands(SessionParts):
    async def do_NOTIFY(self, request: Request) -> None:
        groups: list[Group] | None = request.args["groups"]
        wanted = frozenset().union(*(group.events for group in groups or ()))
        if wanted - SUPPORTED:  # refused: what was set before stays on
            supported = " ".join(SPELLING[e] for e in sorted(SUPPORTED))
            await self.send(response.tagged(
                request.tag, "NO", "unsupported event", f"BADEVENT ({supported})"
            ))  # fmt: skip
            return
        self.stop_notify()
        if groups is None:
            await self.ok(request)
            return
        selected = [g for g in groups if g.filter in ("SELECTED", "SELECTED-DELAYED")]
        watch = Watch(
            selected=frozenset().union(*(g.events for g in selected)) if selected else None,
            delayed=any(g.filter == "SELECTED-DELAYED" for g in selected),
            groups=[g for g in groups if g not in selected],
        )
        await self._resolve(watch)
        self.notify = watch
        self.listen()
        for box_id, (name, events) in watch.mailboxes.items():
            line = await self._status_for(name, events)
            watch.told[box_id] = line
            if request.args["status"] and line:
                await self.send(line)
        await self.ok(request)

    def listen(self) -> None:
        """Be woken by every watched mailbox, the selected one and the user's own topic."""
        watch = self.notify
        if watch is None:
            return
        topics = set(watch.mailboxes) | {user_topic(self.user)}
        if self.view is not None and watch.selected is not None:
            topics.add(self.view.mailbox.id)
        bus = self.services.mailboxes.bus
        for topic in topics - watch.topics:
            watch.stack.enter_context(bus.watch(topic, watch.changed))
        watch.topics |= topics

    def stop_notify(self) -> None:
        if self.notify is not None:
            self.notify.stack.close()
            self.notify = None

    async def _resolve(self, watch: Watch) -> None:
        """The mailboxes the groups name now (ids, so renames keep being watched)."""
        mailboxes = self.services.mailboxes
        boxes = await mailboxes.list_all(self.user)
        subscribed = await mailboxes.subscriptions(self.user)
        watch.names = {box.name: box.name in subscribed for box in boxes}
        for group in watch.groups:
            wanted = {self.mailbox_name(raw) for raw in group.names}
            for box in boxes:
                if box.noselect or not _in_group(group, box.name, wanted, subscribed):
                    continue
                _, events = watch.mailboxes.get(box.id, (box.name, frozenset()))
                watch.mailboxes[box.id] = (box.name, events | group.events)

    async def _status_for(self, name: str, events: frozenset[str]) -> bytes:
        items: list[str] = []
        if events & {"MESSAGENEW", "MESSAGEEXPUNGE"}:
            items += ["MESSAGES"]
        if "MESSAGENEW" in events:
            items += ["UIDNEXT", "UIDVALIDITY"]
        if "FLAGCHANGE" in events:
            items += [i for i in ("UIDVALIDITY", "HIGHESTMODSEQ") if i not in items]
        elif self.condstore and items:
            items.append("HIGHESTMODSEQ")
        if not items:
            return b""
        status = await self.services.mailboxes.status(self.user, name)
        values = b" ".join(item.encode() + b" %d" % status[item] for item in items)
        return response.untagged(b"STATUS " + self.wire_name(name) + b" (" + values + b")")

    async def notified(self) -> None:
        """Something watched changed: tell the client what, as NOTIFY asked."""
        watch = self.notify
        if watch is None:
            return
        watch.changed.clear()
        if self.view is not None and watch.selected is not None and not self.idling:
            await self.refresh(allow_expunge=not watch.delayed)
        for box_id, (name, events) in list(watch.mailboxes.items()):
            if self.view is not None and box_id == self.view.mailbox.id:
                continue
            try:
                line = await self._status_for(name, events)
            except EnclaveError:  # deleted or renamed meanwhile: the name change says so
                continue
            if line and line != watch.told.get(box_id):
                watch.told[box_id] = line
                await self.send(line)
        if watch.events & {"MAILBOXNAME", "SUBSCRIPTIONCHANGE"}:
            await self._names_changed(watch)

    async def _names_changed(self, watch: Watch) -> None:
        mailboxes = self.services.mailboxes
        boxes = {box.name: box for box in await mailboxes.list_all(self.user)}
        subscribed = await mailboxes.subscriptions(self.user)
        events = watch.events
        for name in sorted(set(boxes) | set(watch.names)):
            was = watch.names.get(name)
            now = name in subscribed if name in boxes else None
            if was == now:
                continue
            name_change = (was is None) != (now is None)
            if name_change and "MAILBOXNAME" not in events:
                continue
            if not name_change and "SUBSCRIPTIONCHANGE" not in events:
                continue
            attributes = ["\\NonExistent"] if now is None else []
            if now:
                attributes.append("\\Subscribed")
            line = b"LIST (" + " ".join(attributes).encode() + b') "/" ' + self.wire_name(name)
            await self.send(response.untagged(line))
        watch.names = {name: name in subscribed for name in boxes}
        await self._resolve(watch)  # new mailboxes may now be in a group


def _in_group(group: Group, name: str, wanted: set[str], subscribed: set[str]) -> bool:
    if group.filter == "INBOXES":
        return name == "INBOX"
    if group.filter == "PERSONAL":
        return True
    if group.filter == "SUBSCRIBED":
        return name in subscribed
    if group.filter == "MAILBOXES":
        return name in wanted
    return any(name == top or listing.matches(top + "/*", name) for top in wanted)  # SUBTREE
