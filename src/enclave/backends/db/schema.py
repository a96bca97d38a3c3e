"""The schema, as SQLAlchemy Core tables. Migrations under ``migrations/`` create exactly this.

Every table holding tenant data carries ``tenant_id``; only the repositories in ``scoped.py``
touch those tables, and they cannot be built without a TenantScope. Portable types only, so the
same migrations run on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python, on every dialect."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value if value.tzinfo else value.replace(tzinfo=UTC)


def _tenant_fk() -> Column[str]:
    return Column(
        "tenant_id", String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
    )


# --- platform tables: not tenant content ----------------------------------------------

tenants = Table(
    "tenants",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(63), nullable=False, unique=True),
    Column("status", String(16), nullable=False),
    Column("require_mfa", Boolean, nullable=False, default=False),
    Column("default_quota_bytes", BigInteger, nullable=True),
    Column("wrapped_name_key", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

tenant_keys = Table(
    "tenant_keys",
    metadata,
    _tenant_fk(),
    Column("version", Integer, nullable=False),
    Column("wrapped_key", LargeBinary, nullable=True),  # NULL once retired: the key is gone
    Column("state", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("tenant_id", "version"),
)

domains = Table(
    "domains",
    metadata,
    Column("name", String(253), primary_key=True),
    _tenant_fk(),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_domains_tenant", "tenant_id"),
)

operators = Table(
    "operators",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("display_name", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("password_hash", Text, nullable=True),
    Column("totp_secret", LargeBinary, nullable=True),
    Column("citizenship", String(8), nullable=True),
    Column("check_level", String(32), nullable=True),
    Column("check_date", Date, nullable=True),
    Column("training_date", Date, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # SHA-256 of the bearer token
    Column("realm", String(16), nullable=False),
    Column("subject_id", String(36), nullable=False),
    Column("tenant_id", String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=True),
    Column("restricted", Boolean, nullable=False, default=False),
    Column("source", String(64), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("last_seen_at", UTCDateTime, nullable=True),  # idle expiry; None: not since sign-in
    Index("ix_sessions_subject", "realm", "subject_id"),
)

audit_entries = Table(
    "audit_entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("log", String(64), nullable=False),  # a tenant id, or "platform"
    Column("seq", Integer, nullable=False),
    Column("at", String(32), nullable=False),  # canonical ISO text: hashed as stored
    Column("actor", String(320), nullable=False),
    Column("realm", String(16), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(400), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("source", String(64), nullable=True),
    Column("reason", Text, nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("log", "seq", name="uq_audit_entries_log_seq"),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("log", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("at", String(32), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("signature", String(128), nullable=False),
    PrimaryKeyConstraint("log", "seq"),
)

dkim_keys = Table(
    "dkim_keys",
    metadata,
    Column("domain", String(253), ForeignKey("domains.name", ondelete="CASCADE"), primary_key=True),
    Column("selector", String(63), nullable=False),
    Column("private_key", LargeBinary, nullable=False),  # sealed under the master key
    Column("public_key", Text, nullable=False),  # base64 DER, as published in DNS
    Column("created_at", UTCDateTime, nullable=False),
)

# --- tenant tables: reached only through a TenantScope ---------------------------------

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    _tenant_fk(),
    Column("email", String(320), nullable=False, unique=True),
    Column("display_name", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("role", String(16), nullable=False),
    Column("password_hash", Text, nullable=True),
    Column("totp_secret", LargeBinary, nullable=True),
    Column("totp_enabled", Boolean, nullable=False, default=False),
    Column("quota_bytes", BigInteger, nullable=True),
    # The UIDVALIDITY last given to one of the user's mailboxes: a new mailbox gets a larger
    # one, so a name deleted and created again never repeats its UIDs (RFC 3501 2.3.1.1).
    Column("last_uidvalidity", BigInteger, nullable=False, default=0, server_default="0"),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_users_tenant", "tenant_id"),
)

groups = Table(
    "groups",
    metadata,
    Column("id", String(36), primary_key=True),
    _tenant_fk(),
    Column("name", String(200), nullable=False),
    Column("address", String(320), nullable=True, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("tenant_id", "name", name="uq_groups_tenant_name"),
)

group_members = Table(
    "group_members",
    metadata,
    _tenant_fk(),
    Column("group_id", String(36), ForeignKey("groups.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    PrimaryKeyConstraint("group_id", "user_id"),
)

app_passwords = Table(
    "app_passwords",
    metadata,
    Column("id", String(36), primary_key=True),
    _tenant_fk(),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime, nullable=True),
    Index("ix_app_passwords_user", "user_id"),
)

recovery_codes = Table(
    "recovery_codes",
    metadata,
    _tenant_fk(),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("code_hash", String(64), nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
    PrimaryKeyConstraint("user_id", "code_hash"),
)

blobs = Table(
    "blobs",
    metadata,
    _tenant_fk(),
    Column("name", String(64), nullable=False),  # keyed hash of the plaintext
    Column("object_id", String(32), nullable=False),  # bound into the ciphertext
    Column("kek_version", Integer, nullable=False),
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("refcount", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("tenant_id", "name"),
)

aliases = Table(
    "aliases",
    metadata,
    Column("address", String(320), primary_key=True),
    _tenant_fk(),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_aliases_user", "user_id"),
)

mailboxes = Table(
    "mailboxes",
    metadata,
    Column("id", String(36), primary_key=True),
    _tenant_fk(),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(400), nullable=False),
    Column("special_use", String(16), nullable=True),
    Column("uidvalidity", BigInteger, nullable=False),
    Column("uidnext", BigInteger, nullable=False),
    Column("highestmodseq", BigInteger, nullable=False),
    # UIDs from here on are \Recent: no session has had the mailbox selected since they came.
    Column("recent_uid", BigInteger, nullable=False, default=1, server_default="1"),
    # A deleted mailbox that still has children keeps its name, unselectable (RFC 3501 6.3.4).
    Column("noselect", Boolean, nullable=False, default=False, server_default=false()),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("user_id", "name", name="uq_mailboxes_user_name"),
)

# Subscriptions are names, not mailboxes (RFC 3501 6.3.6): a name stays subscribed after its
# mailbox is deleted, and one may subscribe to a name that does not exist (yet).
mail_subscriptions = Table(
    "mail_subscriptions",
    metadata,
    _tenant_fk(),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(400), nullable=False),
    PrimaryKeyConstraint("user_id", "name"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", String(36), primary_key=True),
    _tenant_fk(),
    Column(
        "mailbox_id", String(36), ForeignKey("mailboxes.id", ondelete="CASCADE"), nullable=False
    ),
    Column("uid", BigInteger, nullable=False),
    Column("blob", String(64), nullable=False),  # name of the encrypted raw message
    Column("size", BigInteger, nullable=False),
    Column("internal_date", UTCDateTime, nullable=False),
    Column("flags", Text, nullable=False),  # space-separated, sorted
    Column("modseq", BigInteger, nullable=False),
    # Envelope and MIME structure, parsed once at delivery, sealed with the message's key.
    Column("meta", LargeBinary, nullable=False),
    UniqueConstraint("mailbox_id", "uid", name="uq_messages_mailbox_uid"),
    Index("ix_messages_mailbox_modseq", "mailbox_id", "modseq"),
    Index("ix_messages_mailbox_blob", "mailbox_id", "blob"),  # search hits -> UIDs
)

# Tombstones of expunged messages: how other sessions and CONDSTORE/QRESYNC clients learn
# what went away since a modification sequence without rescanning the mailbox.
expunged = Table(
    "expunged",
    metadata,
    _tenant_fk(),
    Column(
        "mailbox_id", String(36), ForeignKey("mailboxes.id", ondelete="CASCADE"), nullable=False
    ),
    Column("uid", BigInteger, nullable=False),
    Column("modseq", BigInteger, nullable=False),
    PrimaryKeyConstraint("mailbox_id", "uid"),
    Index("ix_expunged_mailbox_modseq", "mailbox_id", "modseq"),
)

outbound = Table(
    "outbound",
    metadata,
    Column("id", String(36), primary_key=True),
    _tenant_fk(),
    Column("queue_id", String(16), nullable=False),  # shared by one message's recipients
    Column("blob", String(64), nullable=False),
    Column("mail_from", String(320), nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("status", String(16), nullable=False),  # queued | sending | sent | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("last_error", Text, nullable=True),
    # What the sender asked to be told (RFC 3461: NOTIFY, ORCPT, RET, ENVID), as JSON.
    Column("dsn", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_outbound_due", "tenant_id", "status", "next_attempt_at"),
)

# --- documents ---------------------------------------------------------------------------

# A library holds a tree of folders and documents: one personal library per user (owner_id
# set) and shared ones, reached by name.
libraries = Table(
    "libraries",
    metadata,
    Column("id", String(36), primary_key=True),
    _tenant_fk(),
    Column("name", String(200), nullable=False),
    Column("owner_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
    Column("quota_bytes", BigInteger, nullable=True),
    Column("keep_versions", Integer, nullable=True),  # version pruning policy (None: keep all)
    Column("keep_days", Integer, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("tenant_id", "name", name="uq_libraries_tenant_name"),
)

# Folders and documents. The root folder of a library has no parent and an empty name. A
# trashed node has deleted_at set; its subtree goes with it. Names are unique among the live
# children of a folder.
doc_nodes = Table(
    "doc_nodes",
    metadata,
    Column("id", String(36), primary_key=True),
    _tenant_fk(),
    Column(
        "library_id", String(36), ForeignKey("libraries.id", ondelete="CASCADE"), nullable=False
    ),
    Column("parent_id", String(36), ForeignKey("doc_nodes.id"), nullable=True),
    Column("name", String(255), nullable=False),
    Column("folder", Boolean, nullable=False),
    Column("version", Integer, nullable=False),  # the current version's number (0: folder)
    Column("blob", String(64), nullable=True),  # the current version's content
    Column("size", BigInteger, nullable=False),
    Column("content_type", String(255), nullable=True),
    Column("etag", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("modified_at", UTCDateTime, nullable=False),
    Column("modified_by", String(36), nullable=True),
    Column("deleted_at", UTCDateTime, nullable=True),
    Column("deleted_by", String(36), nullable=True),
    Column("legal_hold", Boolean, nullable=False, default=False),
    Column("retain_until", UTCDateTime, nullable=True),
    Column("title", Text, nullable=True),
    Column("description", Text, nullable=True),
    Column("tags", Text, nullable=True),  # JSON list of strings
    Column("label", String(64), nullable=True),  # a classification label's name
    Index(
        "uq_doc_nodes_live_name",
        "parent_id",
        "name",
        unique=True,
        sqlite_where=text("deleted_at IS NULL"),
        postgresql_where=text("deleted_at IS NULL"),
    ),
    Index("ix_doc_nodes_library", "library_id", "parent_id"),
)

doc_versions = Table(
    "doc_versions",
    metadata,
    Column("id", String(36), primary_key=True),
    _tenant_fk(),
    Column("node_id", String(36), ForeignKey("doc_nodes.id", ondelete="CASCADE"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("blob", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("content_type", String(255), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(36), nullable=True),
    UniqueConstraint("node_id", "number", name="uq_doc_versions_node_number"),
)

# Who may do what in a library: on the whole library (node_id NULL) or a folder and all below
# it. Subjects: a user, a group, or everyone in the tenant (subject_id NULL).
doc_grants = Table(
    "doc_grants",
    metadata,
    Column("id", String(36), primary_key=True),
    _tenant_fk(),
    Column(
        "library_id", String(36), ForeignKey("libraries.id", ondelete="CASCADE"), nullable=False
    ),
    Column("node_id", String(36), ForeignKey("doc_nodes.id", ondelete="CASCADE"), nullable=True),
    Column("subject_kind", String(8), nullable=False),  # user | group | tenant
    Column("subject_id", String(36), nullable=True),
    Column("level", String(8), nullable=False),  # read | write | manage
    Index("ix_doc_grants_library", "library_id"),
)

# Write locks (WebDAV LOCK, check-out): on a path in a library, depth 0 or infinity, exclusive
# or shared, until they expire. Path-based because RFC 4918 locks may name a resource before
# it exists and do not follow a moved one.
doc_locks = Table(
    "doc_locks",
    metadata,
    Column("token", String(80), primary_key=True),
    _tenant_fk(),
    Column(
        "library_id", String(36), ForeignKey("libraries.id", ondelete="CASCADE"), nullable=False
    ),
    Column("path", Text, nullable=False),
    Column("depth", String(8), nullable=False),  # 0 | infinity
    Column("exclusive", Boolean, nullable=False),
    Column("owner", Text, nullable=False),  # what the client said about itself (DAV:owner)
    Column("principal_id", String(36), nullable=False),
    Column("principal_name", String(320), nullable=False),
    Column("timeout", Integer, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_doc_locks_library_path", "library_id", "path"),
)

# Properties clients set on nodes (WebDAV dead properties, API custom properties): a name in
# Clark notation ({namespace}local) and the value as the XML or text the client sent.
doc_props = Table(
    "doc_props",
    metadata,
    _tenant_fk(),
    Column("node_id", String(36), ForeignKey("doc_nodes.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(512), nullable=False),
    Column("value", Text, nullable=False),
    PrimaryKeyConstraint("node_id", "name"),
)

# The classification labels a tenant defines (PUBLIC, INTERNAL, CUI, SECRET ...), ordered by
# rank, with the rules they carry.
doc_labels = Table(
    "doc_labels",
    metadata,
    _tenant_fk(),
    Column("name", String(64), nullable=False),
    Column("rank", Integer, nullable=False),
    Column("managed_download_only", Boolean, nullable=False),  # no download to unmanaged clients
    Column("share_group_id", String(36), ForeignKey("groups.id"), nullable=True),  # share within
    PrimaryKeyConstraint("tenant_id", "name"),
)

# --- the encrypted search index (core/search): no term or text in the clear ------------------

# Each tenant's search key, random, wrapped by the tenant's KEK (re-wrapped at rotation, gone
# with the KEK when the tenant is shredded).
search_keys = Table(
    "search_keys",
    metadata,
    Column("tenant_id", String(36), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
    Column("kek_version", Integer, nullable=False),
    Column("wrapped_key", LargeBinary, nullable=False),
)

# One indexed object: a document (object_id = node id, container = library id) or a message's
# content object (object_id = blob name; its mailboxes come from the messages rows).
search_entries = Table(
    "search_entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _tenant_fk(),
    Column("kind", String(16), nullable=False),
    Column("object_id", String(64), nullable=False),
    Column("container_id", String(36), nullable=True),
    # False when the text was cut at its bound: exact matching (IMAP) must not trust the index.
    Column("complete", Boolean, nullable=False),
    # The entry's tokens, concatenated: what its postings are (to replace or remove them by
    # key). Keyed hashes only, like the postings themselves.
    Column("tokens", LargeBinary, nullable=False),
    # Fields for snippets and long-prefix checks, compressed and sealed under the search key.
    Column("sealed", LargeBinary, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("tenant_id", "kind", "object_id", name="uq_search_entries_object"),
    Index("ix_search_entries_incomplete", "tenant_id", "kind", "complete"),
)

# The inverted index: keyed token -> entry, with the term's weight there (frequency times the
# field's weight). The key leads with the tenant, so a lookup never leaves it.
search_postings = Table(
    "search_postings",
    metadata,
    _tenant_fk(),
    Column("token", LargeBinary, nullable=False),
    Column("entry_id", Integer, nullable=False),
    Column("weight", Integer, nullable=False),
    PrimaryKeyConstraint("tenant_id", "token", "entry_id"),
    sqlite_with_rowid=False,
)

# Index work still to do, written in the transaction of the change that needs it: a node
# (deep: with everything below it) or a message's content object. ``seq`` grows with each
# request for the same object, so a worker removes only the job it has done.
search_jobs = Table(
    "search_jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _tenant_fk(),
    Column("kind", String(16), nullable=False),
    Column("object_id", String(64), nullable=False),
    Column("deep", Boolean, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("not_before", UTCDateTime, nullable=True),
    UniqueConstraint("tenant_id", "kind", "object_id", name="uq_search_jobs_object"),
)

# Tables whose rows belong to one tenant (the PostgreSQL row-level security list).
TENANT_TABLES = (
    users, groups, group_members, app_passwords, recovery_codes, blobs, aliases, mailboxes,
    messages, outbound, expunged, libraries, doc_nodes, doc_versions, doc_grants, doc_locks,
    doc_props, doc_labels, mail_subscriptions, search_keys, search_entries, search_postings,
    search_jobs,
)  # fmt: skip
