"""Offline verification of audit exports: every kind of tampering is named."""

from __future__ import annotations

import base64
import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from enclave.core import audit_chain as ac

KEY = Ed25519PrivateKey.generate()


def make_export(n: int = 6, checkpoint_at: tuple[int, ...] = (3,)) -> list[str]:
    header = {
        "type": "header",
        "format": ac.FORMAT,
        "log": "t1",
        "public_key": base64.b64encode(ac.public_key_bytes(KEY.public_key())).decode(),
    }
    lines = [json.dumps(header)]
    prev = ac.GENESIS
    checkpoints = []
    for seq in range(1, n + 1):
        entry = {
            "log": "t1", "seq": seq, "at": f"2026-01-01T00:00:0{seq}.000000Z",
            "actor": "alice", "realm": "tenant", "action": "login.web",
            "target": "tenant:alice", "outcome": "success", "source": "127.0.0.1",
            "reason": None,
        }  # fmt: skip
        digest = ac.entry_hash(prev, entry)
        lines.append(json.dumps({"type": "entry", **entry, "prev_hash": prev, "hash": digest}))
        if seq in checkpoint_at or seq == n:
            at = "2026-01-01T01:00:00.000000Z"
            sig = ac.sign_checkpoint(KEY, "t1", seq, digest, at)
            checkpoints.append(
                {"type": "checkpoint", "log": "t1", "seq": seq, "hash": digest, "at": at,
                 "key_id": "k", "signature": sig}
            )  # fmt: skip
        prev = digest
    return lines + [json.dumps(c) for c in checkpoints]


def test_intact_export_verifies() -> None:
    verdict = ac.verify(make_export())
    assert verdict.ok, verdict.problems
    assert (verdict.entries, verdict.checkpoints) == (6, 2)


def test_edited_entry_is_named() -> None:
    lines = make_export()
    entry = json.loads(lines[4])
    entry["actor"] = "mallory"
    lines[4] = json.dumps(entry)
    verdict = ac.verify(lines)
    assert not verdict.ok
    assert "seq 4" in verdict.first_problem and "edited" in verdict.first_problem


def test_deleted_entry_is_named() -> None:
    lines = make_export()
    del lines[3]
    verdict = ac.verify(lines)
    assert not verdict.ok and "seq 4" in verdict.first_problem


def test_reordered_entries_are_named() -> None:
    lines = make_export()
    lines[2], lines[3] = lines[3], lines[2]
    verdict = ac.verify(lines)
    assert not verdict.ok and "entry 2" in verdict.first_problem


def test_recomputed_chain_after_edit_fails_the_signature() -> None:
    lines = make_export()
    records = [json.loads(line) for line in lines]
    prev = ac.GENESIS
    for record in records[1:7]:
        if record["seq"] == 2:
            record["outcome"] = "failure"
        record["prev_hash"] = prev
        record["hash"] = ac.entry_hash(prev, record)
        prev = record["hash"]
    verdict = ac.verify(json.dumps(r) for r in records)
    assert not verdict.ok
    assert "checkpoint at seq 3" in verdict.first_problem


def test_appended_entry_with_valid_chain_is_not_covered() -> None:
    lines = make_export()
    last = json.loads(lines[6])
    forged = {**last, "seq": 7, "action": "tenant.delete", "prev_hash": last["hash"]}
    forged["hash"] = ac.entry_hash(last["hash"], forged)
    lines.insert(7, json.dumps(forged))
    verdict = ac.verify(lines)
    assert not verdict.ok and "entry 7" in verdict.first_problem
    assert "not covered" in verdict.first_problem


def test_truncated_export_no_longer_matches_last_checkpoint() -> None:
    lines = make_export()
    del lines[6]
    verdict = ac.verify(lines)
    assert not verdict.ok and "checkpoint at seq 6" in verdict.first_problem


def test_pinned_key_rejects_a_resigned_export() -> None:
    other = Ed25519PrivateKey.generate()
    trusted = ac.public_key_bytes(other.public_key())
    verdict = ac.verify(make_export(), trusted_key=trusted)
    assert not verdict.ok and "bad signature" in verdict.first_problem


def test_garbage_is_rejected_cleanly() -> None:
    assert not ac.verify(["not json"]).ok
    assert not ac.verify([]).ok
    assert "header" in ac.verify(make_export()[1:]).first_problem
