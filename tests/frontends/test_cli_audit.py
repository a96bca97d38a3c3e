"""``enclave audit`` and ``enclave key``, run for real: exports from a deployment the CLI
built, verified offline by ``enclave audit verify`` as they are and after tampering.

As in test_cli.py, the commands run once, up front, side by side (the verifications are
independent), and the tests assert on what was recorded.
"""

from __future__ import annotations

import base64
import json
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from enclave.core import audit_chain
from tests.frontends.test_cli import (
    Result,
    enclave,
    expect,
    ok,
    parallel,
    read_object,
    store_object,
)

CONTENT = b"board minutes, kept across key rotations"

# --- tampering with an export, as an attacker with the file (and maybe their own key) would --


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def entries_of(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in recs if r["type"] == "entry"]


def write(path: Path, recs: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs))
    return path


def rechain(entries: list[dict[str, Any]], start: int) -> None:
    """Recompute prev_hash and hash from entry index ``start`` on, as an attacker can."""
    prev = entries[start - 1]["hash"] if start else audit_chain.GENESIS
    for entry in entries[start:]:
        entry["prev_hash"] = prev
        entry["hash"] = prev = audit_chain.entry_hash(prev, entry)


def edited(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    entries_of(recs)[1]["reason"] = "nothing to see here"
    return recs


def edited_actor(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    entries_of(recs)[2]["actor"] = "someone-else"
    return recs


def deleted(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    victim = entries_of(recs)[2]
    return [r for r in recs if r is not victim]


def swapped(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    i, j = (recs.index(e) for e in entries_of(recs)[1:3])
    recs[i], recs[j] = recs[j], recs[i]
    return recs


def appended(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A forged entry with a correct seq, link and hash: only signatures can catch it."""
    last = entries_of(recs)[-1]
    forged = last | {
        "seq": last["seq"] + 1, "at": last["at"], "actor": "root", "action": "tenant.resume",
        "target": "tenant:acme", "reason": None, "prev_hash": last["hash"],
    }  # fmt: skip
    forged["hash"] = audit_chain.entry_hash(last["hash"], forged)
    return [*recs, forged]


def rechained(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Edit an entry and recompute every later link: the signed checkpoint no longer matches."""
    entries = entries_of(recs)
    entries[1]["reason"] = "nothing to see here"
    rechain(entries, 1)
    return recs


def rechained_and_checkpoint(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """... and move the checkpoint to the new head too: its signature no longer verifies."""
    recs = rechained(recs)
    heads = {e["seq"]: e["hash"] for e in entries_of(recs)}
    for r in recs:
        if r["type"] == "checkpoint":
            r["hash"] = heads[r["seq"]]
    return recs


def truncated(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    last = entries_of(recs)[-1]
    return [r for r in recs if r is not last]


def truncated_file(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The file cut off before its last entry (and so before the checkpoints)."""
    return recs[: recs.index(entries_of(recs)[-1])]


def resigned(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Edit, recompute, and sign with the attacker's own key, replacing the header's."""
    key = Ed25519PrivateKey.generate()
    recs = rechained(recs)
    recs[0]["public_key"] = base64.b64encode(
        audit_chain.public_key_bytes(key.public_key())
    ).decode()
    heads = {e["seq"]: e["hash"] for e in entries_of(recs)}
    for r in recs:
        if r["type"] == "checkpoint":
            r["hash"] = heads[r["seq"]]
            r["signature"] = audit_chain.sign_checkpoint(
                key, r["log"], r["seq"], r["hash"], r["at"]
            )
    return recs


TAMPERING: dict[str, tuple[Callable[[list[dict[str, Any]]], list[dict[str, Any]]], str]] = {
    # name: (what the attacker does, what the verdict must name)
    "edited-reason": (edited, "entry 2 (seq 2): content does not match its hash (edited)"),
    "edited-actor": (edited_actor, "entry 3 (seq 3): content does not match its hash"),
    "deleted": (deleted, "entry 3 (seq 4): expected seq 3: entry missing or reordered"),
    "swapped": (swapped, "entry 2 (seq 3): expected seq 2: entry missing or reordered"),
    "appended": (appended, "not covered by a signed checkpoint"),
    "rechained": (rechained, "differs from what was signed"),
    "rechained-and-checkpoint": (rechained_and_checkpoint, "bad signature"),
    "truncated": (truncated, "is missing or differs from what was signed"),
    "truncated-file": (truncated_file, "not covered by a signed checkpoint"),
}


# --- the recorded run ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def audit_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A deployment with some history in tenant acme (two key rotations included), its
    exports, and every verification of them."""
    root = tmp_path_factory.mktemp("audit")
    data = root / "deployment"
    got: dict[str, Any] = {"data": data}
    ok(enclave(None, "init", "--data", str(data)))
    ok(enclave(data, "tenant", "create", "acme", "--domain", "acme.example"))
    for result in parallel(
        lambda: enclave(data, "tenant", "add-domain", "acme", "acme.test"),
        lambda: enclave(data, "tenant", "require-mfa", "acme", "--on"),
    ):
        ok(result)
    got["tenant_id"], got["object"] = store_object(data, "acme", CONTENT)
    got["rotate"] = [enclave(data, "key", "rotate", "--tenant", "acme") for _ in range(2)]

    tenant_file, platform_file = root / "acme.jsonl", root / "platform.jsonl"
    got["files"] = {"tenant": tenant_file, "platform": platform_file}
    got["export"] = enclave(data, "audit", "export", "--tenant", "acme", "-o", str(tenant_file))
    got["export_platform"], got["pubkey"], got["export_nowhere"] = parallel(
        lambda: enclave(data, "audit", "export", "-o", str(platform_file)),
        lambda: enclave(data, "audit", "pubkey"),
        lambda: enclave(data, "audit", "export", "-o", str(root / "missing" / "x.jsonl")),
    )
    ok(got["export"])
    pubkey = ok(got["pubkey"]).lines[-1]
    other_key = Ed25519PrivateKey.generate().public_key()
    other = base64.b64encode(audit_chain.public_key_bytes(other_key)).decode()

    def verify(path: Path, *extra: str) -> Callable[[], Result]:
        return lambda: enclave(None, "audit", "verify", str(path), *extra)

    calls: dict[str, Callable[[], Result]] = {
        "tenant": verify(tenant_file),
        "platform": verify(platform_file),
        "pinned": verify(tenant_file, "--public-key", pubkey),
        "other-key": verify(tenant_file, "--public-key", other),
        "not-base64": verify(tenant_file, "--public-key", "not*base64"),
    }
    for name, (tamper, _) in TAMPERING.items():
        calls[name] = verify(write(root / f"{name}.jsonl", tamper(records(tenant_file))))
    forged = write(root / "resigned.jsonl", resigned(records(tenant_file)))
    calls["resigned"] = verify(forged)
    calls["resigned-pinned"] = verify(forged, "--public-key", pubkey)
    got["verify"] = dict(zip(calls, parallel(*calls.values()), strict=True))
    return got


# --- exports and their verification --------------------------------------------------------


def test_tenant_export_verifies(audit_run: dict[str, Any]) -> None:
    path = audit_run["files"]["tenant"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    recs = records(path)
    entries = entries_of(recs)
    assert recs[0]["type"] == "header" and recs[0]["log"] == audit_run["tenant_id"]
    assert f"wrote {len(recs) - 1} records" in audit_run["export"].stderr
    actions = [e["action"] for e in entries]
    assert actions[0] == "tenant.create" and actions[-1] == "audit.export"
    assert {"tenant.domain.add", "tenant.mfa-policy"} <= set(actions)
    assert actions.count("key.rotate") == 2

    result = ok(audit_run["verify"]["tenant"])
    assert "valid" in result.stdout and "NOT valid" not in result.stdout
    assert f"{len(entries)} entries" in result.stdout
    assert recs[0]["key_id"] in result.stdout


def test_platform_export_verifies(audit_run: dict[str, Any]) -> None:
    ok(audit_run["export_platform"])
    recs = records(audit_run["files"]["platform"])
    assert recs[0]["log"] == "platform"
    actions = [e["action"] for e in entries_of(recs)]
    assert "tenant.create" in actions  # console actions on a tenant are in both logs
    assert actions[-1] == "audit.export"
    result = ok(audit_run["verify"]["platform"])
    assert f"{len(actions)} entries" in result.stdout


def test_pinned_public_key(audit_run: dict[str, Any]) -> None:
    pubkey = ok(audit_run["pubkey"]).lines[-1]
    assert len(base64.b64decode(pubkey, validate=True)) == 32
    assert records(audit_run["files"]["tenant"])[0]["public_key"] == pubkey
    verify = audit_run["verify"]
    assert "valid" in ok(verify["pinned"]).stdout
    assert "not pinned" not in verify["pinned"].stdout
    expect(verify["other-key"], 8, "NOT valid", "bad signature")
    expect(verify["not-base64"], 2, "not base64")


def test_export_signed_with_another_key_fails_only_when_pinned(
    audit_run: dict[str, Any],
) -> None:
    """Unpinned, the verdict names the (attacker's) key id for a human to compare; pinned to
    the deployment's key, the forgery fails."""
    genuine = records(audit_run["files"]["tenant"])[0]["key_id"]
    unpinned = ok(audit_run["verify"]["resigned"])
    assert "not pinned" in unpinned.stdout
    assert genuine not in unpinned.stdout
    expect(audit_run["verify"]["resigned-pinned"], 8, "NOT valid", "bad signature")


@pytest.mark.parametrize("case", TAMPERING)
def test_tampered_export_is_rejected_and_the_problem_named(
    audit_run: dict[str, Any], case: str
) -> None:
    expect(audit_run["verify"][case], 8, "NOT valid", TAMPERING[case][1])


def test_export_to_an_unwritable_path_is_a_clean_error(audit_run: dict[str, Any]) -> None:
    result = audit_run["export_nowhere"]
    assert result.code != 0, str(result)
    assert "Traceback" not in result.stderr, f"unhandled exception:\n{result}"
    assert "error:" in result.stderr, str(result)


# --- 9. key rotation -----------------------------------------------------------------------


def test_key_rotate_prints_each_new_version(audit_run: dict[str, Any]) -> None:
    first, second = (ok(r).stdout for r in audit_run["rotate"])
    assert re.search(r"\bkey version 2\b", first), first
    assert re.search(r"\bkey version 3\b", second), second
    reasons = [
        e["reason"] for e in entries_of(records(audit_run["files"]["tenant"]))
        if e["action"] == "key.rotate"
    ]  # fmt: skip
    assert [r.split(";")[0] for r in reasons] == ["now version 2", "now version 3"]
    # content stored under version 1 is still readable: its data key was re-wrapped twice
    data, tenant_id, name = audit_run["data"], audit_run["tenant_id"], audit_run["object"]
    assert read_object(data, tenant_id, name) == CONTENT
