"""DKIM signing keys per domain, and signing outgoing mail with them (dkimpy).

Keys are RSA-2048 (what every verifier supports), created on first use, the private half
sealed under the master key. ``dns_record`` is what the administrator publishes."""

from __future__ import annotations

import asyncio
import base64

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from enclave.backends.db.engine import Database
from enclave.backends.db.platform import transaction
from enclave.core import clock, names
from enclave.core.errors import NotFound
from enclave.core.keys import KeyService

SIGNED_HEADERS = [
    b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"reply-to", b"in-reply-to",
    b"references", b"mime-version", b"content-type", b"content-transfer-encoding",
]  # fmt: skip


class DkimSigner:
    def __init__(self, db: Database, keys: KeyService) -> None:
        self._db = db
        self._keys = keys

    async def _key(self, domain: str) -> tuple[str, bytes, str]:
        """(selector, private key PEM, public key base64) for a local domain."""
        async with transaction(self._db) as tx:
            row = await tx.dkim_keys.get(domain)
        if row is None:
            return await self._create(domain)
        pem = self._keys.open_secret("dkim", domain, row["private_key"])
        return row["selector"], pem, row["public_key"]

    async def _create(self, domain: str) -> tuple[str, bytes, str]:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        public = base64.b64encode(
            key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        ).decode()
        selector = "enclave" + clock.now().strftime("%Y%m")
        async with transaction(self._db, write=True) as tx:
            if await tx.domains.tenant_of(domain) is None:
                raise NotFound(f"{domain} is not a local domain")
            existing = await tx.dkim_keys.get(domain)
            if existing is not None:  # created meanwhile by another task
                return await self._key(domain)
            await tx.dkim_keys.add(
                domain=domain,
                selector=selector,
                private_key=self._keys.seal_secret("dkim", domain, pem),
                public_key=public,
                created_at=clock.now(),
            )
        return selector, pem, public

    async def dns_record(self, domain: str) -> tuple[str, str]:
        """The TXT record to publish: (name, value)."""
        clean = names.domain(domain)
        selector, _, public = await self._key(clean)
        return f"{selector}._domainkey.{clean}", f"v=DKIM1; k=rsa; p={public}"

    async def sign(self, mail_from: str, raw: bytes) -> bytes:
        """Prepend a DKIM-Signature for the sender's domain (unchanged if it is not local)."""
        domain = mail_from.rpartition("@")[2].lower()
        async with transaction(self._db) as tx:
            if not domain or await tx.domains.tenant_of(domain) is None:
                return raw
        selector, pem, _ = await self._key(domain)

        def run() -> bytes:
            header: bytes = dkim.sign(
                raw,
                selector.encode(),
                domain.encode(),
                pem,
                include_headers=SIGNED_HEADERS,
                linesep=b"\r\n",
            )
            return header + raw

        return await asyncio.to_thread(run)
