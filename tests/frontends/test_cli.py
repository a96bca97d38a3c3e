"""The ``enclave`` command line, run for real: the installed console script in a subprocess,
with ``ENCLAVE_DATA`` pointing at a temporary deployment. Exit codes, output and files.

Start-up is about a second per call (imports, migrations check, argon2), so the module shares
one deployment where it can, and runs calls that cannot disturb each other side by side.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import sqlite3
import stat
import subprocess
import sys
import threading
import tomllib
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pyotp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from enclave.app import open_services
from enclave.backends.db.scoped import TenantScope
from enclave.config import load_settings
from enclave.core.passwords import verify_password
from tests.frontends.webserver import set_option

ENCLAVE = Path(sys.executable).parent / "enclave"
HOSTNAMES = ("mail.acme.example", "192.0.2.10")
APP_SECRET = re.compile(r"^[a-z0-9]{5}(-[a-z0-9]{5}){3}$")
TIMEOUT = 90

# --- running the command -------------------------------------------------------------------


def cli_env(data: Path | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The runner's environment without ENCLAVE_* settings, ENCLAVE_DATA=data, plain output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    env.update({"NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "250", "PYTHONUNBUFFERED": "1"})
    if data is not None:
        env["ENCLAVE_DATA"] = str(data)
    env.update(extra or {})
    return env


@dataclass
class Result:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return (
            f"enclave {' '.join(self.args)} -> exit {self.code}\n"
            f"--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr}"
        )

    @property
    def lines(self) -> list[str]:
        return [line for line in self.stdout.splitlines() if line.strip()]

    def json(self) -> Any:
        return json.loads(self.stdout)


def enclave(
    data: Path | None,
    *args: str,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Result:
    """Run ``enclave ARGS`` with ENCLAVE_DATA=data. Standard input is ``stdin``, or
    /dev/null (never the runner's terminal, so "no tty" paths are what is tested)."""
    done = subprocess.run(
        [str(ENCLAVE), *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        env=cli_env(data, env),
        cwd=cwd,
        timeout=TIMEOUT,
        check=False,
    )
    return Result(tuple(args), done.returncode, done.stdout, done.stderr)


def ok(result: Result) -> Result:
    assert result.code == 0, str(result)
    return result


def expect(result: Result, code: int, *phrases: str) -> Result:
    """Exit ``code``, no traceback, and every phrase in stderr (case-insensitive)."""
    assert result.code == code, str(result)
    assert "Traceback" not in result.stderr, str(result)
    for phrase in phrases:
        assert phrase.lower() in result.stderr.lower(), f"{phrase!r} not in stderr\n{result}"
    return result


def parallel(*calls: Callable[[], Any]) -> list[Any]:
    """Independent calls side by side (start-up dominates; two CPUs halve the wait)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return [f.result() for f in [pool.submit(c) for c in calls]]


# --- looking inside a deployment -----------------------------------------------------------


def db_rows(data: Path, sql: str, *params: Any) -> list[sqlite3.Row]:
    with sqlite3.connect(data / "enclave.db") as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute(sql, params).fetchall()


def password_hash(data: Path, email: str) -> str:
    [row] = db_rows(data, "SELECT password_hash FROM users WHERE email = ?", email)
    return str(row["password_hash"])


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def store_object(data: Path, tenant: str, content: bytes) -> tuple[str, str]:
    """Store one encrypted object for ``tenant`` in-process; returns (tenant id, name)."""

    async def put() -> tuple[str, str]:
        async with open_services(load_settings(data, environ={})) as services:
            found = await services.tenants.get(tenant)
            stored = await services.content.put(TenantScope(found.id), content)
            return found.id, stored.name

    return asyncio.run(put())


def user_row(rows: list[dict[str, Any]], email: str) -> dict[str, Any]:
    found = [row for row in rows if row["email"] == email]
    assert len(found) == 1, f"{email} not listed once in {rows}"
    return found[0]


STRICT_POLICY = {
    "citizenship": '["US"]',
    "min_check_level": '"tier3"',
    "max_check_age_days": "730",
}


def strict_operator_policy(data: Path) -> None:
    for key, value in STRICT_POLICY.items():
        set_option(data, "operators.policy", key, value)


# --- the shared deployment -----------------------------------------------------------------


@dataclass
class Deployment:
    data: Path
    init: Result


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    """``enclave init --data D --hostname ...`` then tenant acme with two users
    (gus for app passwords, mia for the second factor)."""
    data = tmp_path_factory.mktemp("cli") / "deployment"
    init = enclave(
        None, "init", "--data", str(data), *(a for h in HOSTNAMES for a in ("--hostname", h))
    )
    ok(init)
    ok(enclave(data, "tenant", "create", "acme", "--domain", "acme.example"))
    for result in parallel(
        *(
            lambda who=who: enclave(
                data, "user", "add", f"{who}@acme.example", "--password-stdin",
                stdin=f"{who} has a long password\n",
            )  # fmt: skip
            for who in ("gus", "mia")
        )
    ):
        ok(result)
    return Deployment(data, init)


# --- 1. init -------------------------------------------------------------------------------


def test_init_creates_config_keys_certificate_and_database(deployment: Deployment) -> None:
    data = deployment.data
    assert f"initialised {data}" in deployment.init.stdout
    assert stat.S_IMODE(data.stat().st_mode) & 0o077 == 0, "data directory open to others"

    config = tomllib.loads((data / "enclave.toml").read_text())
    assert config["deployment"]["hostnames"] == list(HOSTNAMES)

    for secret in ("keys/master.key", "keys/audit-signing.key", "tls/key.pem"):
        mode = stat.S_IMODE((data / secret).stat().st_mode)
        assert mode == 0o600, f"{secret} has mode {oct(mode)}"
    master = base64.b64decode((data / "keys/master.key").read_text().strip(), validate=True)
    assert len(master) == 32
    signing = load_pem_private_key((data / "keys/audit-signing.key").read_bytes(), None)
    assert isinstance(signing, Ed25519PrivateKey)

    cert = x509.load_pem_x509_certificate((data / "tls/cert.pem").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert HOSTNAMES[0] in san.get_values_for_type(x509.DNSName)
    assert ip_address(HOSTNAMES[1]) in san.get_values_for_type(x509.IPAddress)
    assert cert.not_valid_after_utc > datetime.now(UTC) + timedelta(days=365)

    tables = {r["name"] for r in db_rows(data, "SELECT name FROM sqlite_master")}
    assert {"tenants", "users", "audit_entries", "alembic_version"} <= tables
    assert (data / "blobs").is_dir()


def test_second_init_refuses_and_changes_nothing(deployment: Deployment) -> None:
    data = deployment.data
    before = snapshot(data)
    master = (data / "keys/master.key").read_bytes()
    again, via_env = parallel(
        lambda: enclave(None, "init", "--data", str(data), "--hostname", "other.example"),
        lambda: enclave(data, "init"),
    )
    expect(again, 3, "already holds a deployment")
    expect(via_env, 3, "already holds a deployment")
    assert (data / "keys/master.key").read_bytes() == master
    assert snapshot(data) == before


def test_no_data_directory_is_a_clear_error(tmp_path: Path) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    init, listing, empty_env = parallel(
        lambda: enclave(None, "init", cwd=cwd),
        lambda: enclave(None, "tenant", "list", cwd=cwd),
        lambda: enclave(None, "tenant", "list", env={"ENCLAVE_DATA": ""}, cwd=cwd),
    )
    for result in (init, listing, empty_env):
        expect(result, 3, "no data directory", "--data", "ENCLAVE_DATA")
    assert list(cwd.iterdir()) == []


def test_empty_data_option_is_refused_not_the_current_directory(tmp_path: Path) -> None:
    """``--data ""`` (a script's unset variable) must not initialise the working directory."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    result = enclave(None, "init", "--data", "", cwd=cwd)
    assert result.code != 0, f"init --data '' succeeded:\n{result}"
    assert list(cwd.iterdir()) == [], "init --data '' wrote into the working directory"


def test_init_with_an_unusable_hostname_leaves_no_half_deployment(tmp_path: Path) -> None:
    """A hostname TOML cannot hold as written (a quote) must be refused before anything is
    written, so that a corrected retry works."""
    data = tmp_path / "deployment"
    bad = enclave(None, "init", "--data", str(data), "--hostname", 'mail"x.example')
    assert bad.code != 0, str(bad)
    assert "Traceback" not in bad.stderr, str(bad)
    retry = enclave(None, "init", "--data", str(data), "--hostname", "mail.example")
    assert retry.code == 0, f"a failed init blocks the retry:\n{bad}\n{retry}"


# --- 2. configuration ----------------------------------------------------------------------


def test_configuration_errors_exit_3_and_name_the_key(
    deployment: Deployment, tmp_path: Path
) -> None:
    template = (deployment.data / "enclave.toml").read_text()
    cases: dict[str, tuple[dict[str, str], str, dict[str, str]]] = {
        # name: ({key: TOML value} set in [listen], expected phrase, environment)
        "port not a number": ({"http_port": '"abc"'}, "listen.http_port", {}),
        "unknown key": ({"colour": "1"}, "listen.colour", {}),
        "port out of range": ({"imap_port": "70000"}, "listen.imap_port", {}),
        "environment override": ({}, "listen.http_port", {"ENCLAVE_LISTEN__HTTP_PORT": "abc"}),
    }
    calls = []
    for name, (values, _, env) in cases.items():
        data = tmp_path / name.replace(" ", "-")
        data.mkdir()
        (data / "enclave.toml").write_text(template)
        for key, value in values.items():
            set_option(data, "listen", key, value)
        calls.append(lambda data=data, env=env: enclave(data, "tenant", "list", env=env))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "enclave.toml").write_text(template.replace("[listen]", "[listen", 1))
    calls.append(lambda: enclave(broken, "tenant", "list"))

    *results, broken_result = parallel(*calls)
    for (name, (_, phrase, _)), result in zip(cases.items(), results, strict=True):
        expect(result, 3, phrase, "enclave.toml")
        assert "error:" in result.stderr, f"{name}: {result}"
    expect(broken_result, 3, "not valid TOML", str(broken / "enclave.toml"))


# --- 3. tenants ----------------------------------------------------------------------------


def test_tenant_lifecycle(tmp_path: Path) -> None:
    data = tmp_path / "deployment"
    ok(enclave(None, "init", "--data", str(data)))
    created = ok(
        enclave(data, "tenant", "create", "acme", "--domain", "acme.example", "--domain", "ACME.test")
    )
    assert "created tenant acme" in created.stdout

    listing, duplicate, domain_taken, bad_name, no_domain = parallel(
        lambda: enclave(data, "tenant", "list", "--json"),
        lambda: enclave(data, "tenant", "create", "acme", "--domain", "other.example"),
        lambda: enclave(data, "tenant", "create", "globex", "--domain", "acme.test"),
        lambda: enclave(data, "tenant", "create", "Not_A_Name", "--domain", "x.example"),
        lambda: enclave(data, "tenant", "create", "globex"),
    )
    [tenant] = ok(listing).json()
    assert tenant["name"] == "acme"
    assert tenant["domains"] == ["acme.example", "acme.test"]
    assert tenant["status"] == "active"
    assert tenant["users"] == 0
    expect(duplicate, 5, "already exists")
    expect(domain_taken, 5, "acme.test")
    expect(bad_name, 2, "Not_A_Name")
    assert no_domain.code == 2, str(no_domain)  # --domain is required: a usage error

    tenant_id, _ = store_object(data, "acme", b"quarterly numbers")
    assert (data / "blobs" / tenant_id).is_dir()

    ok(enclave(data, "tenant", "suspend", "acme"))
    suspended, unconfirmed = parallel(
        lambda: enclave(data, "tenant", "list", "--json"),
        lambda: enclave(data, "tenant", "delete", "acme", stdin="n\n"),
    )
    assert [t["status"] for t in ok(suspended).json()] == ["suspended"]
    assert unconfirmed.code != 0, str(unconfirmed)

    ok(enclave(data, "tenant", "resume", "acme"))
    assert [t["status"] for t in ok(enclave(data, "tenant", "list", "--json")).json()] == [
        "active"
    ]

    deleted = ok(enclave(data, "tenant", "delete", "acme", "--yes"))
    assert "deleted acme" in deleted.stdout
    after, missing = parallel(
        lambda: enclave(data, "tenant", "list", "--json"),
        lambda: enclave(data, "tenant", "suspend", "acme"),
    )
    assert ok(after).json() == []
    expect(missing, 4, "acme")
    assert not (data / "blobs" / tenant_id).exists()


# --- 4. users ------------------------------------------------------------------------------


def test_user_add_passwords_and_errors(deployment: Deployment, tmp_path: Path) -> None:
    data = deployment.data
    password_file = tmp_path / "cid.pw"
    password_file.write_text("cid password from a file\nnot this line\n")
    password_file.chmod(0o600)

    def add(email: str, *extra: str, stdin: str | None = None) -> Callable[[], Result]:
        return lambda: enclave(data, "user", "add", email, *extra, stdin=stdin)

    as_argument, from_stdin, from_file, no_tty, no_tenant, short, both, empty = parallel(
        add("ann@acme.example", "--password", "ann password 123"),
        add("bea@acme.example", "--password-stdin", stdin="bea password 123\n"),
        add("cid@acme.example", "--admin", "--password-file", str(password_file)),
        add("dee@acme.example"),
        add("eve@nowhere.example", "--password-stdin", stdin="eve password 123\n"),
        add("fay@acme.example", "--password-stdin", stdin="short\n"),
        add("gil@acme.example", "--password-stdin", "--password-file", str(password_file)),
        add("hal@acme.example", "--password-stdin", stdin="\n"),
    )
    expect(as_argument, 2, "--password")
    assert "ann password 123" not in as_argument.stdout + as_argument.stderr
    assert "added bea@acme.example (user)" in ok(from_stdin).stdout
    assert "added cid@acme.example (admin)" in ok(from_file).stdout
    expect(no_tty, 2, "no password given")
    expect(no_tenant, 4, "nowhere.example")
    expect(short, 2, "at least 10")
    expect(both, 2, "either")
    expect(empty, 2, "empty")

    assert verify_password(password_hash(data, "bea@acme.example"), "bea password 123")
    assert verify_password(password_hash(data, "cid@acme.example"), "cid password from a file")

    rows = ok(enclave(data, "user", "list", "--tenant", "acme", "--json")).json()
    emails = {row["email"] for row in rows}
    assert {"bea@acme.example", "cid@acme.example"} <= emails
    assert not emails & {f"{u}@acme.example" for u in ("ann", "dee", "fay", "gil", "hal")}
    assert user_row(rows, "bea@acme.example")["role"] == "user"
    assert user_row(rows, "cid@acme.example")["role"] == "admin"
    assert user_row(rows, "bea@acme.example")["status"] == "active"

    old_hash = password_hash(data, "cid@acme.example")
    disabled, changed, too_short, nobody = parallel(
        lambda: enclave(data, "user", "disable", "bea@acme.example"),
        lambda: enclave(
            data, "user", "passwd", "cid@acme.example", "--password-stdin",
            stdin="cid changed password 789\n",
        ),  # fmt: skip
        lambda: enclave(
            data, "user", "passwd", "bea@acme.example", "--password-stdin", stdin="tiny\n"
        ),
        lambda: enclave(data, "user", "disable", "zed@acme.example"),
    )
    assert "disabled bea@acme.example" in ok(disabled).stdout
    assert "password changed for cid@acme.example" in ok(changed).stdout
    expect(too_short, 2, "at least 10")
    expect(nobody, 4, "zed@acme.example")
    new_hash = password_hash(data, "cid@acme.example")
    assert new_hash != old_hash
    assert verify_password(new_hash, "cid changed password 789")
    assert not verify_password(new_hash, "cid password from a file")

    rows = ok(enclave(data, "user", "list", "--tenant", "acme", "--json")).json()
    assert user_row(rows, "bea@acme.example")["status"] == "disabled"
    assert user_row(rows, "cid@acme.example")["status"] == "active"


# --- 5. app passwords ----------------------------------------------------------------------


def test_app_passwords_shown_once_listed_without_secret_and_revoked(
    deployment: Deployment,
) -> None:
    data, email = deployment.data, "gus@acme.example"
    added = ok(enclave(data, "user", "app-password", "add", email, "--name", "phone"))
    secret = added.lines[-1].strip()
    assert APP_SECRET.match(secret), str(added)
    match = re.search(r"\(([0-9a-f]{8})\)", added.stdout)
    assert match, str(added)
    short_id = match.group(1)
    [row] = db_rows(data, "SELECT secret_hash FROM app_passwords WHERE name = 'phone'")
    assert row["secret_hash"] == hashlib.sha256(secret.replace("-", "").encode()).hexdigest()

    as_json, as_table = parallel(
        lambda: enclave(data, "user", "app-password", "list", email, "--json"),
        lambda: enclave(data, "user", "app-password", "list", email),
    )
    [listed] = ok(as_json).json()
    assert listed["name"] == "phone"
    assert listed["id"].startswith(short_id)
    assert listed["last_used_at"] is None
    assert "phone" in ok(as_table).stdout
    for output in (as_json, as_table):
        assert secret not in output.stdout + output.stderr
        assert secret.replace("-", "") not in output.stdout + output.stderr

    revoked = ok(enclave(data, "user", "app-password", "revoke", email, short_id))
    assert f"revoked {short_id}" in revoked.stdout
    after, again = parallel(
        lambda: enclave(data, "user", "app-password", "list", email, "--json"),
        lambda: enclave(data, "user", "app-password", "revoke", email, listed["id"]),
    )
    assert ok(after).json() == []
    expect(again, 4, "no single app password")


def test_app_password_name_is_printed_literally(deployment: Deployment) -> None:
    """The name is free text: console markup in it must neither be interpreted nor lose the
    (already stored, shown-once) secret."""
    data, email = deployment.data, "gus@acme.example"
    closing, styled = parallel(
        lambda: enclave(data, "user", "app-password", "add", email, "--name", "my [/] laptop"),
        lambda: enclave(data, "user", "app-password", "add", email, "--name", "[red]tablet"),
    )
    for result, name in ((closing, "my [/] laptop"), (styled, "[red]tablet")):
        assert result.code == 0, str(result)
        assert APP_SECRET.match(result.lines[-1].strip()), str(result)
        assert name in result.stdout, f"name not shown literally:\n{result}"
    table = enclave(data, "user", "app-password", "list", email)
    assert table.code == 0, str(table)
    assert "my [/] laptop" in table.stdout and "[red]tablet" in table.stdout, str(table)


# --- 6. second factor ----------------------------------------------------------------------


def enroll_interactively(data: Path, email: str) -> tuple[int, str, str, str]:
    """``user mfa enroll`` answering its prompt with a code for the secret it printed.
    Returns (exit code, secret, stdout, stderr)."""
    proc = subprocess.Popen(
        [str(ENCLAVE), "user", "mfa", "enroll", email],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(data),
    )
    watchdog = threading.Timer(TIMEOUT, proc.kill)
    watchdog.start()
    try:
        assert proc.stdin and proc.stdout and proc.stderr
        seen, secret = [], ""
        while line := proc.stdout.readline():
            seen.append(line)
            if line.startswith("secret:"):
                secret = line.partition(":")[2].strip()
                break
        if secret:
            proc.stdin.write(pyotp.TOTP(secret).now() + "\n")
            proc.stdin.flush()
        proc.stdin.close()
        rest, err = proc.stdout.read(), proc.stderr.read()
        code = proc.wait()
    finally:
        watchdog.cancel()
    return code, secret, "".join(seen) + rest, err


def test_mfa_enrolment_with_recovery_codes(deployment: Deployment) -> None:
    data, email = deployment.data, "mia@acme.example"
    (code, secret, stdout, stderr), wrong = parallel(
        lambda: enroll_interactively(data, email),
        lambda: enclave(data, "user", "mfa", "enroll", "gus@acme.example", "--code", "000000"),
    )
    assert code == 0, f"exit {code}\n{stdout}\n{stderr}"
    assert re.fullmatch(r"[A-Z2-7]{32}", secret), stdout
    assert f"otpauth://totp/Enclave:mia%40acme.example?secret={secret}" in stdout
    recovery = re.findall(r"^\s+([0-9a-f]{10})\s*$", stdout, re.MULTILINE)
    assert len(recovery) == 10 and len(set(recovery)) == 10, stdout
    stored = {
        r["code_hash"]
        for r in db_rows(
            data,
            "SELECT code_hash FROM recovery_codes JOIN users ON users.id = user_id "
            "WHERE email = ?",
            email,
        )
    }
    assert stored == {hashlib.sha256(c.encode()).hexdigest() for c in recovery}

    expect(wrong, 2, "does not match")
    assert "secret:" in wrong.stdout  # the secret is shown before the code is checked

    listing, again = parallel(
        lambda: enclave(data, "user", "list", "--tenant", "acme", "--json"),
        lambda: enclave(data, "user", "mfa", "enroll", email, "--code", "123456"),
    )
    rows = ok(listing).json()
    assert user_row(rows, email)["mfa"] is True
    assert user_row(rows, "gus@acme.example")["mfa"] is False
    expect(again, 5, "already enrolled")


# --- 7. operators --------------------------------------------------------------------------


def operator_row(data: Path, username: str) -> dict[str, Any]:
    rows = ok(enclave(data, "operator", "list", "--json")).json()
    found = [row for row in rows if row["username"] == username]
    assert len(found) == 1, rows
    return found[0]


def problems_text(row: dict[str, Any]) -> str:
    problems = row["problems"]
    return "; ".join(problems) if isinstance(problems, list) else str(problems)


def test_operator_screening_against_the_policy(deployment: Deployment) -> None:
    data = deployment.data
    strict_operator_policy(data)
    today = datetime.now(UTC).date()

    added = ok(enclave(data, "operator", "add", "op1", "--password-stdin", stdin="op1 password 0001\n"))
    [uri] = [line for line in added.lines if line.startswith("otpauth://")]
    totp = pyotp.parse_uri(uri)
    assert isinstance(totp, pyotp.TOTP) and totp.name == "op1"
    assert "Not yet eligible" in added.stdout

    row = operator_row(data, "op1")
    assert row["eligible"] is False
    assert "citizenship" in problems_text(row)
    assert "check" in problems_text(row)
    assert row["has_mfa"] is True

    screened = ok(
        enclave(
            data, "operator", "screen", "op1", "--citizenship", "us", "--check-level", "tier4",
            "--check-date", str(today - timedelta(days=100)),
            "--training-date", str(today),
        )
    )  # fmt: skip
    assert "op1: eligible" in screened.stdout

    listing, bad_date, nobody = parallel(
        lambda: enclave(data, "operator", "list", "--json"),
        lambda: enclave(data, "operator", "screen", "op1", "--check-date", "2024-02-30"),
        lambda: enclave(data, "operator", "screen", "nobody", "--citizenship", "US"),
    )
    [row] = [r for r in ok(listing).json() if r["username"] == "op1"]
    assert row["eligible"] is True, row
    assert not row["problems"]
    assert (row["citizenship"], row["check_level"]) == ("US", "tier4")
    assert row["check_date"] == str(today - timedelta(days=100))
    assert row["training_date"] == str(today)
    expect(bad_date, 2, "2024-02-30", "not a date")
    expect(nobody, 4, "nobody")

    stale = enclave(
        data, "operator", "screen", "op1", "--check-date", str(today - timedelta(days=731))
    )
    assert "NOT eligible" in ok(stale).stdout
    row = operator_row(data, "op1")
    assert row["eligible"] is False
    assert "older than 730 days" in problems_text(row)


def test_operator_list_json_keeps_problems_a_list(deployment: Deployment) -> None:
    """JSON output keeps lists as lists (as ``tenant list --json`` does with domains)."""
    data = deployment.data
    strict_operator_policy(data)
    ok(enclave(data, "operator", "add", "op2", "--password-stdin", stdin="op2 password 0002\n"))
    row = operator_row(data, "op2")
    assert row["eligible"] is False
    assert isinstance(row["problems"], list), f"problems is {row['problems']!r}"
    assert any("citizenship" in p for p in row["problems"])


# --- 10. help ------------------------------------------------------------------------------


def test_help_lists_every_command_group() -> None:
    result = ok(enclave(None, "--help"))
    listed = set(re.findall(r"^[│|]?\s+([a-z][a-z-]*)\s{2,}", result.stdout, re.MULTILINE))
    expected = {"init", "serve", "demo", "tenant", "user", "group", "operator", "audit", "key", "gc"}
    assert expected <= listed, f"missing {expected - listed}\n{result}"
