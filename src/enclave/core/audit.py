"""The audit sink: per-tenant and platform hash-chained logs with signed checkpoints.

Events concerning a tenant go to that tenant's log; events by operators or the host console,
and events with no tenant, go to the platform log; an operator's action on a tenant goes to
both, so a tenant sees every operator access (access transparency). An event is appended in
the caller's transaction, so it commits with the change it describes, or not at all.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from enclave.backends.db.engine import Database
from enclave.backends.db.platform import DuplicateKey, Tx, transaction
from enclave.core import audit_chain, clock, context
from enclave.core.principal import Principal, Realm

PLATFORM = "platform"


@dataclass(frozen=True)
class AuditEvent:
    action: str
    target: str
    outcome: str = "success"  # success | failure | denied
    actor: str = "anonymous"
    realm: str = "anonymous"
    tenant_id: str | None = None
    reason: str | None = None
    source: str | None = None

    @classmethod
    def by(
        cls,
        principal: Principal,
        action: str,
        target: str,
        *,
        outcome: str = "success",
        tenant_id: str | None = "",
        reason: str | None = None,
        source: str | None = None,
    ) -> AuditEvent:
        """An event by ``principal``; its tenant is the principal's unless one is given."""
        return cls(
            action=action,
            target=target,
            outcome=outcome,
            actor=principal.name,
            realm=principal.realm.value,
            tenant_id=principal.tenant_id if tenant_id == "" else tenant_id,
            reason=reason,
            source=source,
        )

    def logs(self) -> list[str]:
        logs = [self.tenant_id] if self.tenant_id else []
        if not self.tenant_id or self.realm in (Realm.OPERATOR.value, Realm.SYSTEM.value):
            logs.append(PLATFORM)
        return logs


def write_signing_key(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


def read_signing_key(path: Path) -> Ed25519PrivateKey:
    key = load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


class AuditLog:
    def __init__(self, db: Database, signing_key: Ed25519PrivateKey, interval: int) -> None:
        self._db = db
        self._key = signing_key
        self._interval = interval
        self.key_id = audit_chain.key_id(signing_key.public_key())

    @property
    def public_key(self) -> bytes:
        return audit_chain.public_key_bytes(self._key.public_key())

    async def record(self, tx: Tx, event: AuditEvent) -> None:
        """Append inside the caller's transaction."""
        source = event.source or context.source_address.get()
        for log in event.logs():
            last = await tx.audit.last(log)
            seq = (int(last["seq"]) if last else 0) + 1
            entry = {
                "log": log,
                "seq": seq,
                "at": clock.iso(clock.now()),
                "actor": event.actor,
                "realm": event.realm,
                "action": event.action,
                "target": event.target,
                "outcome": event.outcome,
                "source": source,
                "reason": event.reason,
            }
            prev = last["hash"] if last else audit_chain.GENESIS
            digest = audit_chain.entry_hash(prev, entry)
            await tx.audit.append(**entry, prev_hash=prev, hash=digest)
            if seq % self._interval == 0:
                await self._sign(tx, log, seq, digest)

    async def record_now(self, event: AuditEvent) -> None:
        """Append in a transaction of its own (refusals and failures: nothing else commits)."""
        for attempt in range(5):
            try:
                async with transaction(self._db, write=True) as tx:
                    await self.record(tx, event)
                return
            except DuplicateKey:  # another node appended the same seq first; retry
                if attempt == 4:
                    raise

    async def _sign(self, tx: Tx, log: str, seq: int, digest: str) -> None:
        at = clock.iso(clock.now())
        signature = audit_chain.sign_checkpoint(self._key, log, seq, digest, at)
        await tx.audit.add_checkpoint(
            log=log, seq=seq, hash=digest, at=at, key_id=self.key_id, signature=signature
        )

    async def checkpoint(self, tx: Tx, log: str) -> int:
        """Sign the log's current head (no-op if it is already signed). Returns its seq."""
        last = await tx.audit.last(log)
        if last is None:
            return 0
        signed = await tx.audit.last_checkpoint(log)
        if signed is None or int(signed["seq"]) < int(last["seq"]):
            await self._sign(tx, log, int(last["seq"]), last["hash"])
        return int(last["seq"])

    async def export(self, tx: Tx, log: str) -> Iterator[str]:
        """The whole log as JSON lines: header, entries, checkpoints. Call after checkpoint()."""
        header = {
            "type": "header",
            "format": audit_chain.FORMAT,
            "log": log,
            "exported_at": clock.iso(clock.now()),
            "key_id": self.key_id,
            "public_key": base64.b64encode(self.public_key).decode(),
        }
        lines = [json.dumps(header)]
        for row in await tx.audit.entries(log):
            record = {"type": "entry"} | {k: row[k] for k in (*audit_chain.ENTRY_FIELDS,)}
            record |= {"prev_hash": row["prev_hash"], "hash": row["hash"]}
            lines.append(json.dumps(record, ensure_ascii=False))
        for row in await tx.audit.checkpoints(log):
            fields = ("log", "seq", "hash", "at", "key_id", "signature")
            lines.append(json.dumps({"type": "checkpoint"} | {k: row[k] for k in fields}))
        return iter(lines)
