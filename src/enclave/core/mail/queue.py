"""The outbound queue: mail for remote recipients, kept in the database (so it survives
restarts), delivered to each domain's MX hosts or a smarthost, retried on a schedule, and
reported back to the sender (RFC 3464) when it fails for good or expires.

A message is one encrypted content object referenced by one row per recipient. A row is
claimed ("sending") before the network call and settled after; rows a crash leaves in
"sending" are queued again at start-up, so a message may be sent twice but never lost.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog

from enclave.backends.db.engine import Database
from enclave.backends.db.platform import Scoped, Tx, transaction
from enclave.backends.db.scoped import TenantScope
from enclave.backends.smtp_client import DsnParams, Outcome
from enclave.core import clock
from enclave.core.audit import AuditEvent, AuditLog
from enclave.core.authz import Authorizer
from enclave.core.content import ContentStore, ObjectSealer, StoredObject
from enclave.core.errors import Invalid, NotFound
from enclave.core.mail import dsn
from enclave.core.mail.routing import MailRouter
from enclave.core.mail.store import MailStore
from enclave.core.principal import Principal

log = structlog.get_logger("enclave.queue")
BATCH = 50


class Transport(Protocol):
    async def __call__(
        self,
        host: str,
        port: int,
        mail_from: str,
        recipients: list[str],
        data: bytes,
        *,
        helo: str,
        time_limit: float,
        username: str | None = None,
        password: str | None = None,
        verify_tls: bool = False,
        dsn: DsnParams | None = None,
    ) -> dict[str, Outcome]: ...


@dataclass(frozen=True)
class QueuePolicy:
    hostname: str
    retry_schedule: tuple[int, ...]
    max_age: timedelta
    mx_port: int
    smarthost: tuple[str, int] | None
    smarthost_login: tuple[str, str] | None
    timeout: float
    poll_seconds: float


@dataclass(frozen=True)
class QueuedItem:
    id: str
    queue_id: str
    tenant: str
    mail_from: str
    recipient: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None


class OutboundQueue:
    def __init__(
        self,
        db: Database,
        content: ContentStore,
        store: MailStore,
        router: MailRouter,
        audit: AuditLog,
        authz: Authorizer,
        policy: QueuePolicy,
        transport: Transport,
        mx_lookup: Callable[[str], Awaitable[list[str]]],
    ) -> None:
        self._db = db
        self._content = content
        self._store = store
        self._router = router
        self._audit = audit
        self._authz = authz
        self._policy = policy
        self._transport = transport
        self._mx = mx_lookup
        self.wakeup = asyncio.Event()

    # --- adding --------------------------------------------------------------------------

    async def enqueue(
        self,
        principal: Principal,
        mail_from: str,
        recipients: list[str],
        message: bytes,
        request: dsn.DsnRequest | None = None,
    ) -> str:
        queue_id = uuid.uuid4().hex[:12].upper()
        now = clock.now()

        async def attach(tx: Tx, scoped: Scoped, stored: StoredObject, _: ObjectSealer) -> int:
            for recipient in dict.fromkeys(recipients):
                await scoped.outbound.add(
                    id=str(uuid.uuid4()),
                    queue_id=queue_id,
                    blob=stored.name,
                    mail_from=mail_from,
                    recipient=recipient,
                    status="queued",
                    attempts=0,
                    next_attempt_at=now,
                    expires_at=now + self._policy.max_age,
                    last_error=None,
                    dsn=request.row(recipient) if request else None,
                    created_at=now,
                    updated_at=now,
                )
            return len(dict.fromkeys(recipients))

        await self._content.put(TenantScope(principal.tenant_id or ""), message, attach)
        self.wakeup.set()
        return queue_id

    # --- delivering ----------------------------------------------------------------------

    async def _tenants(self) -> list[str]:
        async with transaction(self._db) as tx:
            return [row["id"] for row in await tx.tenants.all()]

    async def recover(self) -> int:
        """At start-up: rows a crash left in "sending" go back to the queue."""
        count = 0
        for tenant_id in await self._tenants():
            async with transaction(self._db, write=True) as tx:
                count += await (await tx.scoped(TenantScope(tenant_id))).outbound.requeue_stale(
                    clock.now()
                )
        return count

    async def run_once(self) -> int:
        """Attempt every due row once; returns how many rows were attempted."""
        attempted = 0
        for tenant_id in await self._tenants():
            scope = TenantScope(tenant_id)
            now = clock.now()
            async with transaction(self._db, write=True) as tx:
                scoped = await tx.scoped(scope)
                rows = [
                    r
                    for r in await scoped.outbound.due(now, BATCH)
                    if await scoped.outbound.claim(r["id"], now)
                ]
            groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
            for row in rows:
                groups[(row["queue_id"], row["recipient"].rpartition("@")[2].lower())].append(row)
            for (_, domain), group in groups.items():
                await self._attempt(scope, domain, group)
                attempted += len(group)
        return attempted

    async def _attempt(self, scope: TenantScope, domain: str, rows: list[Any]) -> None:
        """Send one message to one domain and settle every row: delivered, retried or
        bounced, whatever is raised on the way (a row left "sending" would wait for the next
        restart)."""
        first = rows[0]
        recipients = [r["recipient"] for r in rows]
        try:
            data = await self._content.read(scope, first["blob"])
        except NotFound:
            outcomes = dict.fromkeys(recipients, Outcome(554, "5.3.0 queued message lost"))
        else:
            asked = dsn.DsnRequest.from_rows([(r["dsn"], r["recipient"]) for r in rows])
            try:
                outcomes = await self._send(domain, first["mail_from"], recipients, data, asked)
            except Exception as exc:  # a fault of ours or the library's: retry on schedule
                log.exception("sending failed", queue_id=first["queue_id"], domain=domain)
                reason = f"4.3.0 {type(exc).__name__}: {exc}"
                outcomes = dict.fromkeys(recipients, Outcome(0, reason))
        try:
            await self._settle(scope, rows, outcomes)
        except Exception:
            log.exception("settling failed", queue_id=first["queue_id"], domain=domain)
            await self._release(scope, rows)

    async def _release(self, scope: TenantScope, rows: list[Any]) -> None:
        """Best effort, after a failure to settle: put claimed rows back in the queue."""
        now = clock.now()
        try:
            async with transaction(self._db, write=True) as tx:
                scoped = await tx.scoped(scope)
                claimed = {r["id"] for r in rows}
                for row in await scoped.outbound.pending():
                    if row["id"] in claimed and row["status"] == "sending":
                        await scoped.outbound.change(
                            row["id"], status="queued", next_attempt_at=now, updated_at=now
                        )
        except Exception:
            log.exception("releasing claimed rows failed; they are queued again at start-up")

    async def _send(
        self,
        domain: str,
        mail_from: str,
        recipients: list[str],
        data: bytes,
        asked: dsn.DsnRequest,
    ) -> dict[str, Outcome]:
        policy = self._policy
        params = DsnParams(
            ret=asked.ret,
            envid=asked.envid,
            notify={r: d.notify for r, d in asked.recipients.items() if d.notify},
            orcpt={r: d.orcpt for r, d in asked.recipients.items() if d.orcpt},
        )
        if policy.smarthost is not None:
            host, port = policy.smarthost
            user, password = policy.smarthost_login or (None, None)
            return await self._transport(
                host,
                port,
                mail_from,
                recipients,
                data,
                helo=policy.hostname,
                time_limit=policy.timeout,
                username=user,
                password=password,
                verify_tls=user is not None,
                dsn=params,
            )
        try:
            hosts = await self._mx(domain)
        except LookupError as exc:
            return dict.fromkeys(recipients, Outcome(550, f"5.1.2 {exc}"))
        except Exception as exc:  # DNS trouble is temporary
            return dict.fromkeys(recipients, Outcome(0, f"4.4.3 DNS lookup failed: {exc}"))
        outcomes: dict[str, Outcome] = {}
        for host in hosts:
            outcomes = await self._transport(
                host,
                policy.mx_port,
                mail_from,
                recipients,
                data,
                helo=policy.hostname,
                time_limit=policy.timeout,
                dsn=params,
            )
            if any(o.code for o in outcomes.values()):  # the host answered: its word counts
                break
        return outcomes

    async def _settle(
        self, scope: TenantScope, rows: list[Any], outcomes: dict[str, Outcome]
    ) -> None:
        """Record each row's outcome, then report what the sender asked to hear of (RFC
        3461): failures unless NOTIFY says otherwise, "relayed" for NOTIFY=SUCCESS when the
        next hop does not take the request on, "delayed" once for NOTIFY=DELAY."""
        now = clock.now()
        entries: dict[str, list[dsn.Entry]] = defaultdict(list)  # by action
        async with transaction(self._db, write=True) as tx:
            scoped = await tx.scoped(scope)
            for row in rows:
                recipient = row["recipient"]
                outcome = outcomes.get(recipient, Outcome(0, "no reply"))
                asked = dsn.DsnRequest.from_row(row["dsn"], recipient)
                orcpt = rcpt.orcpt if (rcpt := asked.of(recipient)) else None
                reply = f"{outcome.code} {outcome.message}".strip()
                expired = not outcome.delivered and now >= row["expires_at"]
                if outcome.delivered or outcome.permanent or expired:
                    if not await scoped.outbound.remove(row["id"]):
                        continue  # deleted by an administrator meanwhile: nothing to settle
                    await scoped.blobs.incref(row["blob"], -1)
                    if outcome.delivered:
                        if not outcome.dsn_passed and dsn.wants(asked, recipient, "relayed"):
                            entry = dsn.Entry(recipient, "relayed", "2.0.0", reply, orcpt)
                            entries["relayed"].append(entry)
                        continue
                    status = dsn.status_code(outcome.code, outcome.message, expired=expired)
                    log.info("delivery failed", recipient=recipient, status=status, reason=reply)
                    if dsn.wants(asked, recipient, "failed"):
                        entries["failed"].append(
                            dsn.Entry(recipient, "failed", status, reply, orcpt)
                        )
                    continue
                attempts = int(row["attempts"]) + 1
                if attempts == 1 and dsn.wants(asked, recipient, "delayed"):
                    status = dsn.status_code(outcome.code, outcome.message)
                    status = status if status.startswith("4") else "4.0.0"
                    entries["delayed"].append(dsn.Entry(recipient, "delayed", status, reply, orcpt))
                schedule = self._policy.retry_schedule
                delay = schedule[min(attempts - 1, len(schedule) - 1)]
                await scoped.outbound.change(
                    row["id"],
                    status="queued",
                    attempts=attempts,
                    next_attempt_at=min(now + timedelta(seconds=delay), row["expires_at"]),
                    last_error=reply[:1000],
                    updated_at=now,
                )
        for found in entries.values():
            try:
                await self._report(scope, rows[0], found)
            except Exception:  # the rows are settled; the report alone is lost
                log.exception("delivery report failed", queue_id=rows[0]["queue_id"])

    async def _report(self, scope: TenantScope, row: Any, entries: list[dsn.Entry]) -> None:
        sender = row["mail_from"]
        if not sender:
            return  # never report on a report
        target = await self._router.resolve(sender)
        if target is None:
            return
        try:
            original = await self._content.read(scope, row["blob"])
        except NotFound:
            original = b""
        report = dsn.report(
            reporting_mta=self._policy.hostname,
            sender=sender,
            entries=entries,
            original=original,
            request=dsn.DsnRequest.from_row(row["dsn"], row["recipient"]),
            arrival=row["created_at"],
            now=clock.now(),
        )
        await self._store.deliver(target.tenant_id, list(target.user_ids), report)

    async def run_forever(self) -> None:
        await self.recover()
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("queue run failed")
            try:
                await asyncio.wait_for(self.wakeup.wait(), timeout=self._policy.poll_seconds)
            except TimeoutError:
                pass
            self.wakeup.clear()

    # --- administration ------------------------------------------------------------------

    async def list_items(self, actor: Principal) -> list[QueuedItem]:
        """The queue names tenants' correspondents: the host console only."""
        await self._authz.host_console(actor, "queue.list", "queue")
        return await self._items()

    async def _items(self) -> list[QueuedItem]:
        result: list[QueuedItem] = []
        async with transaction(self._db) as tx:
            for tenant in await tx.tenants.all():
                scoped = await tx.scoped(TenantScope(tenant["id"]))
                for row in await scoped.outbound.pending():
                    result.append(
                        QueuedItem(
                            id=row["id"],
                            queue_id=row["queue_id"],
                            tenant=tenant["name"],
                            mail_from=row["mail_from"],
                            recipient=row["recipient"],
                            status=row["status"],
                            attempts=int(row["attempts"]),
                            next_attempt_at=row["next_attempt_at"],
                            last_error=row["last_error"],
                        )
                    )
        return result

    async def _matching(self, key: str) -> list[QueuedItem]:
        items = await self._items()
        found = [i for i in items if key in (i.queue_id, i.id)]
        if not found and len(key) >= 8:  # an unambiguous prefix of a row id
            found = [i for i in items if i.id.startswith(key)]
            if len(found) > 1:
                raise Invalid(f"{key!r} matches {len(found)} queued rows; give more of the id")
        if not found:
            raise NotFound(f"nothing queued matches {key!r}")
        return found

    async def retry(self, actor: Principal, key: str) -> int:
        await self._authz.host_console(actor, "queue.retry", f"queue:{key}")
        items = await self._matching(key)
        await self._each(
            items,
            lambda scoped, item: scoped.outbound.change(
                item.id, status="queued", next_attempt_at=clock.now()
            ),
        )
        await self._audit.record_now(AuditEvent.by(actor, "queue.retry", f"queue:{key}"))
        self.wakeup.set()
        return len(items)

    async def delete(self, actor: Principal, key: str) -> int:
        await self._authz.host_console(actor, "queue.delete", f"queue:{key}")
        items = await self._matching(key)

        async def drop(scoped: Scoped, item: QueuedItem) -> None:
            row = [r for r in await scoped.outbound.pending() if r["id"] == item.id]
            if row and await scoped.outbound.remove(item.id):
                await scoped.blobs.incref(row[0]["blob"], -1)

        await self._each(items, drop)
        await self._audit.record_now(
            AuditEvent.by(
                actor, "queue.delete", f"queue:{key}", reason=f"{len(items)} recipient(s)"
            )
        )
        return len(items)

    async def _each(
        self, items: list[QueuedItem], action: Callable[[Scoped, QueuedItem], Awaitable[Any]]
    ) -> None:
        async with transaction(self._db, write=True) as tx:
            tenants = {t["name"]: t["id"] for t in await tx.tenants.all()}
            for item in items:
                await action(await tx.scoped(TenantScope(tenants[item.tenant])), item)
