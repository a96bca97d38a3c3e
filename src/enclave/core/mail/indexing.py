"""What a message says to the shared encrypted index: its header values and the text of its
text parts (``core.mail.text``), indexed once per content object however many mailboxes hold
it. Nothing is kept for snippets: IMAP checks its candidates against the message itself."""

from __future__ import annotations

from enclave.backends.db.engine import Database
from enclave.backends.db.platform import transaction
from enclave.backends.db.scoped import TenantScope
from enclave.core import cpu
from enclave.core.content import ContentStore
from enclave.core.errors import IntegrityError, NotFound
from enclave.core.mail.text import search_text
from enclave.core.search.index import MAIL_KIND, IndexFields
from enclave.core.search.queue import Action, Forget, Put

KIND = MAIL_KIND
HEADER_WEIGHT = 3  # a word in the subject or an address counts for more than one in the body


class MailIndexer:
    kind = KIND

    def __init__(self, db: Database, content: ContentStore) -> None:
        self._db = db
        self._content = content

    async def actions(self, scope: TenantScope, object_id: str, deep: bool) -> list[Action]:
        """Index the message content object ``object_id`` (a blob name) unless it already
        is: the name is a keyed hash of the content, so an entry never goes stale."""
        async with transaction(self._db) as tx:
            scoped = await tx.scoped(scope)
            if await scoped.search_entries.get(KIND, object_id) is not None:
                return []
            blob = await scoped.blobs.get(object_id)
        if blob is None or blob["refcount"] <= 0:
            return [Forget([object_id])]
        try:
            raw = await self._content.read(scope, object_id)
        except (NotFound, IntegrityError):
            return [Forget([object_id])]
        text = await cpu.run(search_text, raw, size=len(raw))
        fields = ((text.header, HEADER_WEIGHT), (text.body, 1))
        return [Put(object_id, IndexFields(None, fields, None, text.complete, substrings=True))]
