"""What the command classes (``selected``, ``searching``, ``sorting``, ``notifying``) use of
one another and of the session, declared once for the type checker. The session class
combines them; at run time this base adds nothing."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from enclave.core.principal import Principal
    from enclave.imap.notifying import Watch
    from enclave.imap.view import View
    from enclave.imap.wire.commands import Request
    from enclave.imap.wire.search import Key
    from enclave.services import Services


class SessionParts:
    if TYPE_CHECKING:
        services: Services
        view: View | None
        condstore: bool
        qresync: bool  # ENABLE QRESYNC: VANISHED replaces EXPUNGE (RFC 7162 3.2)
        rev2: bool  # ENABLE IMAP4rev2: RFC 9051 (no \\Recent, ESEARCH for SEARCH, UTF-8 names)
        notify: Watch | None  # NOTIFY SET: what to tell between commands
        idling: bool  # IDLE refreshes the selected mailbox itself

        @property
        def user(self) -> Principal: ...

        async def send(self, data: bytes) -> None: ...

        async def ok(
            self, request: Request, text: str | None = None, code: str | None = None
        ) -> None: ...

        def mailbox_name(self, raw: bytes) -> str: ...

        def wire_name(self, name: str) -> bytes: ...

        # SelectedCommands
        def _view(self) -> View: ...

        async def enable_condstore(self) -> None: ...

        async def refresh(self, *, allow_expunge: bool) -> None: ...

        # SearchCommands
        async def _search(
            self, view: View, key: Key, only: Collection[int] | None = None
        ) -> list[tuple[int, int, int]]: ...

        async def _contexts_expunging(self, view: View, uids: set[int]) -> None: ...

        async def _contexts_changed(self, view: View, uids: list[int]) -> None: ...
