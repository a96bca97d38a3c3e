"""The audit chain format: hashing, signing and offline verification. Pure: no database.

An entry's hash is SHA-256 over the previous entry's hash and the canonical JSON of its fields,
so editing, removing or reordering any entry breaks every later link. Checkpoints sign
``(log, seq, hash, time)`` with the deployment's Ed25519 audit key; an export always ends with a
checkpoint on its last entry, so entries appended to an export are not covered and are caught.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

FORMAT = "enclave-audit/1"
GENESIS = "0" * 64
ENTRY_FIELDS = (
    "log", "seq", "at", "actor", "realm", "action", "target", "outcome", "source", "reason",
)  # fmt: skip


def canonical(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(prev_hash: str, entry: Mapping[str, Any]) -> str:
    body = {name: entry.get(name) for name in ENTRY_FIELDS}
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical(body)).hexdigest()


def checkpoint_message(log: str, seq: int, entry_hash_: str, at: str) -> bytes:
    return canonical({"log": log, "seq": seq, "hash": entry_hash_, "at": at, "format": FORMAT})


def public_key_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(public_key_bytes(key)).hexdigest()[:16]


def sign_checkpoint(key: Ed25519PrivateKey, log: str, seq: int, hash_: str, at: str) -> str:
    return base64.b64encode(key.sign(checkpoint_message(log, seq, hash_, at))).decode()


@dataclass
class Verdict:
    ok: bool
    entries: int = 0
    checkpoints: int = 0
    key_id: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def first_problem(self) -> str | None:
        return self.problems[0] if self.problems else None


def _fail(verdict: Verdict, message: str) -> Verdict:
    verdict.ok = False
    verdict.problems.append(message)
    return verdict


def verify(lines: Iterable[str], trusted_key: bytes | None = None) -> Verdict:
    """Check an export. ``trusted_key`` (raw Ed25519 public key) pins the signer; without it
    the key in the export's header is used, and the caller should show its id to a human."""
    verdict = Verdict(ok=True)
    header: dict[str, Any] | None = None
    entries: list[dict[str, Any]] = []
    checkpoints: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            return _fail(verdict, f"line {number}: not JSON")
        kind = record.get("type") if isinstance(record, dict) else None
        if kind == "header" and header is None and not entries:
            header = record
        elif kind == "entry":
            entries.append(record)
        elif kind == "checkpoint":
            checkpoints.append(record)
        else:
            return _fail(verdict, f"line {number}: unexpected record {kind!r}")
    if header is None or header.get("format") != FORMAT:
        return _fail(verdict, f"missing or unknown header (expected format {FORMAT})")
    try:
        raw_key = trusted_key or base64.b64decode(header["public_key"])
        public = Ed25519PublicKey.from_public_bytes(raw_key)
    except (KeyError, ValueError):
        return _fail(verdict, "header: unusable public key")
    verdict.key_id = key_id(public)
    log = header.get("log")

    prev = GENESIS
    hashes: dict[int, str] = {}
    for index, entry in enumerate(entries, start=1):
        seq = entry.get("seq")
        where = f"entry {index} (seq {seq})"
        if entry.get("log") != log:
            return _fail(verdict, f"{where}: belongs to log {entry.get('log')!r}, not {log!r}")
        if seq != index:
            return _fail(verdict, f"{where}: expected seq {index}: entry missing or reordered")
        if entry.get("prev_hash") != prev:
            return _fail(verdict, f"{where}: does not link to the entry before it")
        if entry_hash(prev, entry) != entry.get("hash"):
            return _fail(verdict, f"{where}: content does not match its hash (edited)")
        prev = entry["hash"]
        hashes[index] = prev
    verdict.entries = len(entries)

    covered = 0
    for checkpoint in checkpoints:
        seq = checkpoint.get("seq")
        where = f"checkpoint at seq {seq}"
        if checkpoint.get("log") != log or not isinstance(seq, int):
            return _fail(verdict, f"{where}: malformed")
        if hashes.get(seq) != checkpoint.get("hash"):
            return _fail(
                verdict, f"{where}: entry {seq} is missing or differs from what was signed"
            )
        try:
            message = checkpoint_message(str(log), seq, checkpoint["hash"], checkpoint["at"])
            public.verify(base64.b64decode(checkpoint["signature"]), message)
        except (InvalidSignature, KeyError, ValueError):
            return _fail(verdict, f"{where}: bad signature")
        covered = max(covered, seq)
    verdict.checkpoints = len(checkpoints)
    if covered < len(entries):
        return _fail(
            verdict,
            f"entry {covered + 1} (seq {covered + 1}) and later are not covered by a signed "
            "checkpoint (appended after signing?)",
        )
    return verdict
