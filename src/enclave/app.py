"""The composition root: settings -> backends -> core services -> listeners.

Everything is built here, once, and handed down through constructors; nothing looks services
up at run time. ``open_services`` is used by the CLI for one-shot commands and by ``serve``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta

import structlog
import uvicorn

from enclave import logs
from enclave.backends import smtp_client
from enclave.backends.blobs import open_blob_store
from enclave.backends.db import migrate
from enclave.backends.db.engine import Database
from enclave.backends.dns import DnsClient
from enclave.config import Settings
from enclave.core import clock, cpu
from enclave.core.audit import AuditLog, read_signing_key
from enclave.core.audit_access import AuditAccess
from enclave.core.auth import Authenticator
from enclave.core.authz import Authorizer
from enclave.core.content import ContentStore
from enclave.core.documents.documents import Documents
from enclave.core.documents.labels import Labels
from enclave.core.documents.libraries import Libraries
from enclave.core.documents.locks import Locks
from enclave.core.documents.metadata import Metadata
from enclave.core.documents.search import DocumentIndexer, DocumentSearch
from enclave.core.events import ChangeBus
from enclave.core.identity import UserService
from enclave.core.keys import KeyService, read_master_key
from enclave.core.mail.compose import Composer
from enclave.core.mail.dkim import DkimSigner
from enclave.core.mail.indexing import MailIndexer
from enclave.core.mail.mailboxes import Mailboxes
from enclave.core.mail.outbox import Outbox
from enclave.core.mail.queue import OutboundQueue, QueuePolicy
from enclave.core.mail.reading import MailReader
from enclave.core.mail.routing import MailRouter
from enclave.core.mail.store import MailStore
from enclave.core.operators import EligibilityPolicy, OperatorService
from enclave.core.platform_health import PlatformHealth
from enclave.core.principal import Principal
from enclave.core.ratelimit import FailureLimiter
from enclave.core.search.index import SearchIndex
from enclave.core.search.queue import IndexQueue
from enclave.core.tenancy import TenantService
from enclave.imap.fetch import derive as imap_forms
from enclave.imap.fetch import minimal as imap_minimal_forms
from enclave.services import Services

log = structlog.get_logger("enclave")


def eligibility_policy(settings: Settings) -> EligibilityPolicy:
    policy = settings.operators.policy
    return EligibilityPolicy(
        citizenship=tuple(policy.citizenship),
        check_levels=tuple(policy.check_levels),
        min_check_level=policy.min_check_level,
        max_check_age_days=policy.max_check_age_days,
        max_training_age_days=policy.max_training_age_days,
        require_mfa=policy.require_mfa,
    )


def queue_policy(settings: Settings) -> QueuePolicy:
    queue = settings.queue
    smarthost = None
    if queue.smarthost:
        host, _, port = queue.smarthost.partition(":")
        smarthost = (host, int(port or 587))
    login = None
    if queue.smarthost_username and queue.smarthost_password_file:
        password = settings.path(queue.smarthost_password_file).read_text().strip()
        login = (queue.smarthost_username, password)
    return QueuePolicy(
        hostname=settings.smtp.hostname or settings.deployment.hostnames[0],
        retry_schedule=tuple(queue.retry_schedule_seconds),
        max_age=timedelta(hours=queue.max_age_hours),
        mx_port=queue.mx_port,
        smarthost=smarthost,
        smarthost_login=login,
        timeout=queue.connect_timeout_seconds,
        poll_seconds=queue.poll_seconds,
    )


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    async with AsyncExitStack() as stack:
        db = Database(settings.database_url)
        stack.push_async_callback(db.close)
        await migrate.upgrade(db)
        keys = KeyService(read_master_key(settings.path(settings.keys.master_key_file)))
        blobs = open_blob_store(settings.blobs.backend, settings.path(settings.blobs.path))
        audit = AuditLog(
            db,
            read_signing_key(settings.path(settings.keys.audit_signing_key_file)),
            settings.audit.checkpoint_interval,
        )
        operators = OperatorService(db, keys, audit, eligibility_policy(settings))
        authz = Authorizer(audit, operators.eligibility_problem)
        limiter = FailureLimiter(
            per_account=settings.auth.account_failures,
            per_address=settings.auth.address_failures,
            window_seconds=settings.auth.window_seconds,
        )
        content = ContentStore(db, keys, blobs)
        index = SearchIndex(keys)
        index_queue = IndexQueue(db, index)
        index_queue.register(DocumentIndexer(db, content))
        index_queue.register(MailIndexer(db, content))
        router = MailRouter(db, audit, authz)
        bus = ChangeBus()
        # IMAP's forms, kept at delivery (minimal ones for a message that takes too long)
        store = MailStore(
            db, content, bus, derive=imap_forms, degraded=imap_minimal_forms, index=index_queue
        )
        mailboxes = Mailboxes(db, content, store, bus, index)
        users = UserService(db, keys, audit, authz)
        dkim = DkimSigner(db, keys)
        dns = DnsClient(settings.dns.nameservers, settings.dns.port, settings.dns.timeout_seconds)
        queue = OutboundQueue(
            db,
            content,
            store,
            router,
            audit,
            authz,
            queue_policy(settings),
            smtp_client.send,
            dns.mail_exchangers,
        )
        outbox = Outbox(
            db,
            router,
            store,
            signer=dkim.sign,
            enqueue=queue.enqueue,
            hostname=queue_policy(settings).hostname,
        )
        yield Services(
            settings=settings,
            db=db,
            blobs=blobs,
            keys=keys,
            audit=audit,
            audit_access=AuditAccess(db, audit, authz),
            authz=authz,
            tenants=TenantService(db, keys, blobs, audit, authz),
            users=users,
            operators=operators,
            auth=Authenticator(
                db,
                keys,
                audit,
                operators,
                limiter,
                failure_delay=settings.auth.failure_delay_ms / 1000,
                session_ttl=timedelta(hours=settings.auth.session_ttl_hours),
                session_idle=timedelta(minutes=settings.auth.session_idle_minutes),
            ),
            content=content,
            health=PlatformHealth(db, authz),
            mail_router=router,
            mail_store=store,
            outbox=outbox,
            composer=Composer(outbox, router, users, settings.smtp.max_message_bytes),
            dkim=dkim,
            queue=queue,
            mailboxes=mailboxes,
            mail_reader=MailReader(db, content, mailboxes),
            libraries=Libraries(db, audit, authz),
            documents=Documents(db, content, audit, index_queue),
            locks=Locks(db, audit),
            metadata=Metadata(db, audit, index_queue),
            search=DocumentSearch(db, index, index_queue),
            index_queue=index_queue,
            labels=Labels(db, audit, authz),
        )


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: ``serve`` owns SIGTERM/SIGINT for every
    listener in the process."""

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def]
        yield


HOUSEKEEPING_SECONDS = 3600
# Requests still running this long after a stop was asked for (a slow client's download) are
# cut: the database and the listeners close after them.
SHUTDOWN_GRACE_SECONDS = 10
SYSTEM = Principal.system("housekeeping")


async def _housekeeping(services: Services) -> None:
    """Hourly: purge old trash, collect orphaned and unreferenced objects and their index
    entries, forget expired sessions."""
    grace = services.settings.blobs.orphan_grace_seconds
    while True:
        await asyncio.sleep(HOUSEKEEPING_SECONDS)
        try:
            trash_before = clock.now() - timedelta(days=services.settings.documents.trash_days)
            trashed = 0
            for tenant in await services.tenants.list_tenants(SYSTEM):
                trashed += await services.documents.purge_expired_trash(tenant.id, trash_before)
            removed = await services.content.collect_garbage(grace)
            for tenant in await services.tenants.list_tenants(SYSTEM):
                await services.index_queue.sweep(tenant.id)
            expired = await services.auth.purge_expired_sessions()
            log.info("housekeeping", objects_removed=removed, sessions_purged=expired,
                     trash_purged=trashed)  # fmt: skip
        except Exception:  # keep serving; the next round retries
            log.exception("housekeeping failed")


def server_tls(settings: Settings) -> ssl.SSLContext:
    """The mail listeners' TLS context. It sends no TLS 1.3 session tickets: they come after
    the handshake, unasked, just when a client sends its first command. A client that reads
    on one thread and writes on another (imaplib2, so offlineimap) then has OpenSSL read the
    tickets while it writes on the same connection, which OpenSSL does not allow: about one
    IMAP STARTTLS in eight lost that command and waited for the 60 s login timeout. Mail
    connections last; a full handshake each time costs little."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(
        settings.path(settings.tls.cert_file), settings.path(settings.tls.key_file)
    )
    context.num_tickets = 0
    return context


async def serve(settings: Settings, *, ready: asyncio.Event | None = None) -> None:
    """Run every listener on one event loop until SIGTERM or SIGINT, then stop cleanly."""
    logs.configure()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    workers = settings.deployment.cpu_workers  # a long-lived server: worth the processes
    await cpu.start(cpu.default_workers() if workers is None else workers)
    try:
        await _serve_until(stop, settings, ready)
    finally:
        cpu.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def _serve_until(
    stop: asyncio.Event, settings: Settings, ready: asyncio.Event | None
) -> None:
    """The listeners and background work of ``serve``, from start-up to a clean stop."""
    from enclave.imap.server import start_imap
    from enclave.smtp.server import start_inbound, start_submission
    from enclave.web.app import create_app

    async with open_services(settings) as services:
        tls = settings.http.tls
        web = create_app(services)
        config = uvicorn.Config(
            web,
            host=settings.listen.bind,
            port=settings.listen.http_port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
            ssl_certfile=str(settings.path(settings.tls.cert_file)) if tls else None,
            ssl_keyfile=str(settings.path(settings.tls.key_file)) if tls else None,
            proxy_headers=bool(settings.http.trusted_proxies),
            forwarded_allow_ips=settings.http.trusted_proxies or None,
        )
        http = _Server(config)
        task = asyncio.create_task(http.serve(), name="http")
        while not http.started:
            if task.done():
                await task  # raises the bind error
                raise RuntimeError("HTTP listener stopped during start-up")
            await asyncio.sleep(0.05)
        listen = settings.listen
        tls_context = server_tls(settings)
        listeners = [
            await start_inbound(services, listen.bind, listen.smtp_port, tls_context),
            await start_submission(services, listen.bind, listen.submission_port, tls_context),
            await start_imap(services, listen.bind, listen.imap_port, tls_context),
        ]
        implicit = {}  # RFC 8314 implicit TLS, beside the STARTTLS listeners; port 0 is off
        if listen.imaps_port:
            listeners.append(
                await start_imap(
                    services, listen.bind, listen.imaps_port, tls_context, implicit=True
                )
            )
            implicit["imaps"] = f"{listen.bind}:{listen.imaps_port}"
        if listen.submissions_port:
            listeners.append(
                await start_submission(
                    services, listen.bind, listen.submissions_port, tls_context, implicit=True
                )
            )
            implicit["submissions"] = f"{listen.bind}:{listen.submissions_port}"
        log.info(
            "listening",
            http=f"{listen.bind}:{listen.http_port}",
            smtp=f"{listen.bind}:{listen.smtp_port}",
            submission=f"{listen.bind}:{listen.submission_port}",
            imap=f"{listen.bind}:{listen.imap_port}",
            **implicit,
        )
        if ready is not None:
            ready.set()
        housekeeping = asyncio.create_task(_housekeeping(services), name="housekeeping")
        queue_worker = asyncio.create_task(services.queue.run_forever(), name="queue")
        indexer = asyncio.create_task(services.index_queue.run_forever(), name="search-index")
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        # Background work first: what it has not done stays queued in the database, and a
        # busy index worker must not hold up the listeners' shutdown.
        background = [stopper, housekeeping, queue_worker, indexer]
        for each in background:
            each.cancel()
        await asyncio.wait(background, timeout=5)
        for server in listeners:
            server.close()
        web.state.live.close()  # live streams never end by themselves
        http.should_exit = True
        await task
        for server in listeners:
            await server.wait_closed()
        log.info("stopped")
