"""Change notifications between sessions in one process (IMAP IDLE, untagged updates).

A topic is a mailbox id; a notification only says "look again": sessions re-read what changed
since the modification sequence they last saw, so a lost or merged wake-up costs nothing.
In-process for one node; a NATS subject per topic replaces it when nodes multiply.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager


class ChangeBus:
    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)

    @contextmanager
    def watch(self, topic: str, event: asyncio.Event | None = None) -> Iterator[asyncio.Event]:
        """An event set whenever ``topic`` changes, for as long as the block runs; pass one
        ``event`` to several watches to be woken by any of their topics."""
        event = event or asyncio.Event()
        self._waiters[topic].add(event)
        try:
            yield event
        finally:
            self._waiters[topic].discard(event)
            if not self._waiters[topic]:
                del self._waiters[topic]

    def publish(self, topic: str) -> None:
        for event in self._waiters.get(topic, ()):
            event.set()
