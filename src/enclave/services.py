"""The bundle of core services one process runs, built by the composition root (``app``)."""

from __future__ import annotations

from dataclasses import dataclass

from enclave.backends.blobs import BlobStore
from enclave.backends.db.engine import Database
from enclave.config import Settings
from enclave.core.audit import AuditLog
from enclave.core.audit_access import AuditAccess
from enclave.core.auth import Authenticator
from enclave.core.authz import Authorizer
from enclave.core.content import ContentStore
from enclave.core.documents.documents import Documents
from enclave.core.documents.labels import Labels
from enclave.core.documents.libraries import Libraries
from enclave.core.documents.locks import Locks
from enclave.core.documents.metadata import Metadata
from enclave.core.documents.search import DocumentSearch
from enclave.core.identity import UserService
from enclave.core.keys import KeyService
from enclave.core.mail.compose import Composer
from enclave.core.mail.dkim import DkimSigner
from enclave.core.mail.mailboxes import Mailboxes
from enclave.core.mail.outbox import Outbox
from enclave.core.mail.queue import OutboundQueue
from enclave.core.mail.reading import MailReader
from enclave.core.mail.routing import MailRouter
from enclave.core.mail.store import MailStore
from enclave.core.operators import OperatorService
from enclave.core.platform_health import PlatformHealth
from enclave.core.search.queue import IndexQueue
from enclave.core.tenancy import TenantService


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    blobs: BlobStore
    keys: KeyService
    audit: AuditLog
    audit_access: AuditAccess
    authz: Authorizer
    tenants: TenantService
    users: UserService
    operators: OperatorService
    auth: Authenticator
    content: ContentStore
    health: PlatformHealth
    mail_router: MailRouter
    mail_store: MailStore
    outbox: Outbox
    composer: Composer
    dkim: DkimSigner
    queue: OutboundQueue
    mailboxes: Mailboxes
    mail_reader: MailReader
    libraries: Libraries
    documents: Documents
    locks: Locks
    metadata: Metadata
    labels: Labels
    search: DocumentSearch
    index_queue: IndexQueue
