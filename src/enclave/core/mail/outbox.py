"""Mail sent by an authenticated user: who may send as what, local delivery, the Sent copy,
and handing remote recipients to the outbound queue."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses

from enclave.backends.db.engine import Database
from enclave.backends.db.platform import transaction
from enclave.backends.db.scoped import TenantScope
from enclave.core import clock, names
from enclave.core.errors import Forbidden, Invalid
from enclave.core.mail import dsn
from enclave.core.mail.dsn import DsnRequest
from enclave.core.mail.routing import MailRouter, Recipient
from enclave.core.mail.store import MailStore
from enclave.core.principal import Principal, Realm

# Signs a message for the sender's domain (DKIM); returns the bytes to send.
Signer = Callable[[str, bytes], Awaitable[bytes]]
# Queues a message for remote recipients (with the sender's DSN request); returns its id.
Enqueue = Callable[[Principal, str, list[str], bytes, DsnRequest | None], Awaitable[str]]


def header_senders(raw: bytes) -> list[str]:
    """The addresses in the message's From and Sender header fields."""
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
    values = [str(v) for name in ("from", "sender") for v in headers.get_all(name, [])]
    return [address for _, address in getaddresses(values) if address]


@dataclass(frozen=True)
class Submitted:
    queue_id: str
    local: int
    remote: int


class Outbox:
    def __init__(
        self,
        db: Database,
        router: MailRouter,
        store: MailStore,
        signer: Signer | None = None,
        enqueue: Enqueue | None = None,
        hostname: str = "localhost",
    ) -> None:
        self._db = db
        self._hostname = hostname  # the reporting MTA in delivery reports
        self._router = router
        self._store = store
        self._signer = signer
        self._enqueue = enqueue

    def attach(self, *, signer: Signer | None = None, enqueue: Enqueue | None = None) -> None:
        """Late wiring (the queue is built after the outbox in the composition root)."""
        self._signer = signer or self._signer
        self._enqueue = enqueue or self._enqueue

    async def may_send_as(self, principal: Principal, address: str) -> bool:
        """A user sends as their own address or an alias that delivers to them."""
        if principal.realm is not Realm.TENANT or principal.restricted:
            return False
        try:
            clean = names.address(address)
        except Invalid:
            return False
        if clean == principal.name:
            return True
        async with transaction(self._db) as tx:
            scoped = await tx.scoped(TenantScope(principal.tenant_id or ""))
            alias = await scoped.aliases.get(clean)
        return alias is not None and alias["user_id"] == principal.id

    async def submit(
        self,
        principal: Principal,
        mail_from: str,
        local: list[Recipient],
        remote: list[str],
        raw: bytes,
        request: DsnRequest | None = None,
    ) -> Submitted:
        """Sign, deliver locally, file the Sent copy, queue the rest; returns after commit.
        Local recipients whose NOTIFY asks for SUCCESS get the sender a "delivered" report."""
        if not await self.may_send_as(principal, mail_from):
            raise Forbidden(f"{principal.name} may not send as {mail_from}")
        for author in header_senders(raw):  # the From a reader sees, which DKIM will vouch for
            if not await self.may_send_as(principal, author):
                raise Forbidden(f"{principal.name} may not send as {author} (From header)")
        if remote and self._enqueue is None:
            raise Invalid("no outbound queue configured")
        message = await self._signer(mail_from, raw) if self._signer else raw
        # The sender's own copy first: if it does not fit, nothing has gone anywhere yet.
        await self._store.deliver(
            principal.tenant_id or "",
            [principal.id],
            message,
            special_use="\\Sent",
            flags=("\\Seen",),
        )
        by_tenant: dict[str, list[str]] = defaultdict(list)
        for recipient in local:
            by_tenant[recipient.tenant_id].extend(recipient.user_ids)
        for tenant_id, user_ids in by_tenant.items():
            await self._store.deliver(tenant_id, user_ids, message)
        queue_id = uuid.uuid4().hex[:12].upper()
        if remote and self._enqueue is not None:
            queue_id = await self._enqueue(principal, mail_from, remote, message, request)
        if request is not None:
            await self._report_delivered(principal, mail_from, local, message, request)
        return Submitted(queue_id=queue_id, local=len(local), remote=len(remote))

    async def _report_delivered(
        self,
        principal: Principal,
        mail_from: str,
        local: list[Recipient],
        message: bytes,
        request: DsnRequest,
    ) -> None:
        entries = []
        for recipient in local:
            address = recipient.address
            asked = request.of(address)
            if dsn.wants(request, address, "delivered"):
                orcpt = asked.orcpt if asked else None
                entries.append(dsn.Entry(address, "delivered", "2.0.0", None, orcpt))
        if entries:
            now = clock.now()
            report = dsn.report(
                reporting_mta=self._hostname, sender=mail_from, entries=entries,
                original=message, request=request, arrival=now, now=now,
            )  # fmt: skip
            await self._store.deliver(principal.tenant_id or "", [principal.id], report)
