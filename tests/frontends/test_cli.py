"""The ``enclave`` command line, run for real: the installed console script in a subprocess
with ``ENCLAVE_DATA`` pointing at a temporary deployment; exit codes, output and files.

Each call costs about a second of start-up, so the calls are made up front: every test has a
*scenario* (the sequence of commands it needs, recorded as results) and the module fixture runs
all scenarios side by side as soon as the first test asks. The tests then only assert on what
their scenario recorded. Scenarios sharing the deployment use their own tenants, users and
operators, so they do not see each other's changes.
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
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
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
TIMEOUT = 120
HOSTNAMES = ("mail.acme.example", "192.0.2.10")
APP_SECRET = re.compile(r"^[a-z0-9]{5}(-[a-z0-9]{5}){3}$")
TODAY = datetime.now(UTC).date()

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
        return [line.strip() for line in self.stdout.splitlines() if line.strip()]

    def json(self) -> Any:
        assert self.code == 0, str(self)
        return json.loads(self.stdout)


def enclave(
    data: Path | None,
    *args: str,
    stdin: str = "",
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Result:
    """``enclave ARGS`` with ENCLAVE_DATA=data; standard input is a pipe holding ``stdin``
    (never the runner's terminal, so the no-tty paths are what is tested)."""
    done = subprocess.run(
        [str(ENCLAVE), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=cli_env(data, env),
        cwd=cwd,
        timeout=TIMEOUT,
        check=False,
    )
    return Result(tuple(args), done.returncode, done.stdout, done.stderr)


def parallel(*calls: Callable[[], Any]) -> list[Any]:
    """Independent calls side by side; their results in order."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return [f.result() for f in [pool.submit(call) for call in calls]]


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


# --- looking inside a deployment -----------------------------------------------------------


def db_rows(data: Path, sql: str, *params: Any) -> list[sqlite3.Row]:
    with closing(sqlite3.connect(data / "enclave.db")) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute(sql, params).fetchall()


def password_hash(data: Path, email: str) -> str:
    [row] = db_rows(data, "SELECT password_hash FROM users WHERE email = ?", email)
    return str(row["password_hash"])


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def store_object(data: Path, tenant: str, content: bytes) -> tuple[str, str]:
    """Store one encrypted object for ``tenant`` in-process; returns (tenant id, its name)."""

    async def put() -> tuple[str, str]:
        async with open_services(load_settings(data, environ={})) as services:
            found = await services.tenants.get(tenant)
            stored = await services.content.put(TenantScope(found.id), content)
            return found.id, stored.name

    return asyncio.run(put())


def read_object(data: Path, tenant_id: str, name: str) -> bytes:
    async def read() -> bytes:
        async with open_services(load_settings(data, environ={})) as services:
            return await services.content.read(TenantScope(tenant_id), name)

    return asyncio.run(read())


def only(rows: list[dict[str, Any]], key: str, value: str) -> dict[str, Any]:
    found = [row for row in rows if row[key] == value]
    assert len(found) == 1, f"{key}={value!r} not listed exactly once in {rows}"
    return found[0]


# --- scenarios: run up front, side by side -------------------------------------------------

Scenario = Callable[[Path, "Future[Deployment]"], dict[str, Any]]
SCENARIOS: dict[str, Scenario] = {}


def scenario(fn: Scenario) -> Scenario:
    SCENARIOS[fn.__name__] = fn
    return fn


@dataclass
class Deployment:
    """The shared deployment: tenant acme (acme.example) with users gus and mia, and a strict
    operator policy; plus what ``init`` and a second ``init`` did."""

    data: Path
    init: Result
    reinit: list[Result] = field(default_factory=list)
    before_reinit: dict[str, bytes] = field(default_factory=dict)
    after_reinit: dict[str, bytes] = field(default_factory=dict)


def prepare_deployment(data: Path) -> Deployment:
    init = ok(
        enclave(
            None, "init", "--data", str(data), *(a for h in HOSTNAMES for a in ("--hostname", h))
        )
    )
    deployment = Deployment(data, init, before_reinit=snapshot(data))
    deployment.reinit = parallel(
        lambda: enclave(None, "init", "--data", str(data), "--hostname", "other.example"),
        lambda: enclave(data, "init"),
    )
    deployment.after_reinit = snapshot(data)
    # What operators must meet here (no other scenario depends on the policy).
    set_option(data, "operators.policy", "citizenship", '["US"]')
    set_option(data, "operators.policy", "min_check_level", '"tier3"')
    set_option(data, "operators.policy", "max_check_age_days", "730")
    ok(enclave(data, "tenant", "create", "acme", "--domain", "acme.example"))

    def add_user(who: str) -> Callable[[], Result]:
        email, password = f"{who}@acme.example", f"{who} has a long password\n"
        return lambda: enclave(data, "user", "add", email, "--password-stdin", stdin=password)

    for result in parallel(add_user("gus"), add_user("mia")):
        ok(result)
    return deployment


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future[Any]]]:
    root = tmp_path_factory.mktemp("cli")
    with ThreadPoolExecutor(max_workers=3) as pool:
        # Submitted first, so it has a worker before any scenario waits for it.
        setup = pool.submit(prepare_deployment, root / "deployment")
        futures: dict[str, Future[Any]] = {"deployment": setup}
        for name, run in SCENARIOS.items():
            work = root / name
            work.mkdir()
            futures[name] = pool.submit(run, work, setup)
        yield futures


def outcome(runs: dict[str, Future[Any]], name: str) -> Any:
    return runs[name].result(timeout=600)


# --- 1. init -------------------------------------------------------------------------------


def test_init_creates_config_keys_certificate_and_database(runs: dict[str, Future[Any]]) -> None:
    deployment: Deployment = outcome(runs, "deployment")
    data = deployment.data
    assert f"initialised {data}" in deployment.init.stdout
    assert stat.S_IMODE(data.stat().st_mode) & 0o077 == 0, "data directory open to others"
    assert tomllib.loads((data / "enclave.toml").read_text())["deployment"]["hostnames"] == list(
        HOSTNAMES
    )

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

    tables = {row["name"] for row in db_rows(data, "SELECT name FROM sqlite_master")}
    assert {"tenants", "users", "audit_entries", "alembic_version"} <= tables
    assert (data / "blobs").is_dir()


def test_second_init_refuses_and_changes_nothing(runs: dict[str, Future[Any]]) -> None:
    deployment: Deployment = outcome(runs, "deployment")
    for result in deployment.reinit:
        expect(result, 3, "already holds a deployment")
    before, after = deployment.before_reinit, deployment.after_reinit
    assert after["keys/master.key"] == before["keys/master.key"]
    assert after == before


@scenario
def no_data_directory(work: Path, _: Future[Deployment]) -> dict[str, Any]:
    init, listing = parallel(
        lambda: enclave(None, "init", cwd=work),
        lambda: enclave(None, "tenant", "list", env={"ENCLAVE_DATA": ""}, cwd=work),
    )
    return {"init": init, "list": listing, "left": sorted(p.name for p in work.iterdir())}


def test_no_data_directory_is_a_clear_error(runs: dict[str, Future[Any]]) -> None:
    got = outcome(runs, "no_data_directory")
    expect(got["init"], 3, "no data directory", "--data", "ENCLAVE_DATA")
    expect(got["list"], 3, "no data directory", "--data", "ENCLAVE_DATA")
    assert got["left"] == [], "something was written into the working directory"


@scenario
def empty_data_option(work: Path, _: Future[Deployment]) -> dict[str, Any]:
    result = enclave(None, "init", "--data", "", cwd=work)
    return {"init": result, "left": sorted(p.name for p in work.iterdir())}


def test_empty_data_option_is_refused_not_the_working_directory(
    runs: dict[str, Future[Any]],
) -> None:
    """``--data ""`` (a script's unset variable) must not mean the working directory."""
    got = outcome(runs, "empty_data_option")
    assert got["init"].code != 0, f"init --data '' succeeded:\n{got['init']}"
    assert got["left"] == [], f"init --data '' wrote {got['left']} into the working directory"


@scenario
def unusable_hostname(work: Path, _: Future[Deployment]) -> dict[str, Any]:
    data = work / "deployment"
    bad = enclave(None, "init", "--data", str(data), "--hostname", 'mail"x.example')
    retry = enclave(None, "init", "--data", str(data), "--hostname", "mail.example")
    return {"bad": bad, "retry": retry}


def test_init_with_an_unusable_hostname_leaves_no_half_deployment(
    runs: dict[str, Future[Any]],
) -> None:
    """A hostname the configuration cannot hold as written (a quote) is refused before
    anything is written, so that the corrected retry works."""
    got = outcome(runs, "unusable_hostname")
    assert got["bad"].code != 0, str(got["bad"])
    assert "Traceback" not in got["bad"].stderr, str(got["bad"])
    assert got["retry"].code == 0, f"the failed init blocks the retry:\n{got['retry']}"


# --- 2. configuration ----------------------------------------------------------------------

CONFIG_CASES = {
    # directory: ([listen] key, TOML value, key path the error must name)
    "port-not-a-number": ("http_port", '"abc"', "listen.http_port"),
    "unknown-key": ("colour", "1", "listen.colour"),
}


@scenario
def configuration_errors(work: Path, setup: Future[Deployment]) -> dict[str, Any]:
    template = (setup.result().data / "enclave.toml").read_text()
    calls: dict[str, Callable[[], Result]] = {}
    for name, (key, value, _) in CONFIG_CASES.items():
        data = work / name
        data.mkdir()
        (data / "enclave.toml").write_text(template)
        set_option(data, "listen", key, value)
        calls[name] = lambda data=data: enclave(data, "tenant", "list")
    broken = work / "broken"
    broken.mkdir()
    (broken / "enclave.toml").write_text(template.replace("[listen]", "[listen", 1))
    calls["broken"] = lambda: enclave(broken, "tenant", "list")
    return dict(zip(calls, parallel(*calls.values()), strict=True)) | {"broken_dir": broken}


def test_configuration_errors_exit_3_and_name_the_key(runs: dict[str, Future[Any]]) -> None:
    got = outcome(runs, "configuration_errors")
    for name, (_, _, path) in CONFIG_CASES.items():
        result = expect(got[name], 3, f"enclave.toml: {path}")
        assert result.stderr.startswith("error:"), f"{name}: {result}"
    expect(got["broken"], 3, str(got["broken_dir"] / "enclave.toml"), "not valid TOML")


# --- 3. tenants ----------------------------------------------------------------------------


@scenario
def tenant_lifecycle(work: Path, setup: Future[Deployment]) -> dict[str, Any]:
    data = setup.result().data
    got: dict[str, Any] = {}
    got["create"] = enclave(
        data, "tenant", "create", "globex", "--domain", "globex.example", "--domain", "GLOBEX.test"
    )
    got["list"], got["duplicate"], got["domain_taken"], got["bad_name"] = parallel(
        lambda: enclave(data, "tenant", "list", "--json"),
        lambda: enclave(data, "tenant", "create", "globex", "--domain", "other.example"),
        lambda: enclave(data, "tenant", "create", "initech", "--domain", "globex.test"),
        lambda: enclave(data, "tenant", "create", "Not_A_Name", "--domain", "x.example"),
    )
    tenant_id, _ = store_object(data, "globex", b"quarterly numbers")
    got["tenant_id"] = tenant_id
    got["blobs_before"] = (data / "blobs" / tenant_id).is_dir()
    got["suspend"] = enclave(data, "tenant", "suspend", "globex")
    got["suspended"], got["unconfirmed"] = parallel(
        lambda: enclave(data, "tenant", "list", "--json"),
        lambda: enclave(data, "tenant", "delete", "globex", stdin="n\n"),
    )
    got["resume"] = enclave(data, "tenant", "resume", "globex")
    got["resumed"] = enclave(data, "tenant", "list", "--json")
    got["delete"] = enclave(data, "tenant", "delete", "globex", "--yes")
    got["deleted"] = enclave(data, "tenant", "list", "--json")
    got["blobs_after"] = (data / "blobs" / tenant_id).exists()
    return got


def test_tenant_create_list_suspend_resume_delete(runs: dict[str, Future[Any]]) -> None:
    got = outcome(runs, "tenant_lifecycle")
    assert "created tenant globex" in ok(got["create"]).stdout
    tenant = only(got["list"].json(), "name", "globex")
    assert tenant["id"] == got["tenant_id"]
    assert tenant["domains"] == ["globex.example", "globex.test"]
    assert tenant["status"] == "active"
    assert tenant["users"] == 0
    expect(got["duplicate"], 5, "already exists")
    expect(got["domain_taken"], 5, "globex.test")
    expect(got["bad_name"], 2, "Not_A_Name")

    ok(got["suspend"])
    assert only(got["suspended"].json(), "name", "globex")["status"] == "suspended"
    assert got["unconfirmed"].code != 0, "delete without --yes went ahead on 'n'"
    ok(got["resume"])
    assert only(got["resumed"].json(), "name", "globex")["status"] == "active"

    assert "deleted globex" in ok(got["delete"]).stdout
    names = [t["name"] for t in got["deleted"].json()]
    assert "globex" not in names
    assert "acme" in names  # the other tenant is untouched
    assert got["blobs_before"] and not got["blobs_after"], "blobs/<tenant id> not removed"


# --- 4. users ------------------------------------------------------------------------------


NEW_PASSWORD = "cid changed password 789\n"


@scenario
def users(work: Path, setup: Future[Deployment]) -> dict[str, Any]:
    data = setup.result().data
    password_file = work / "cid.pw"
    password_file.write_text("cid password from a file\nnot this line\n")

    def add(email: str, *extra: str, stdin: str = "") -> Callable[[], Result]:
        return lambda: enclave(data, "user", "add", email, *extra, stdin=stdin)

    got: dict[str, Any] = dict(
        zip(
            ("argument", "stdin", "file", "no_tty", "no_tenant", "short"),
            parallel(
                add("ann@acme.example", "--password", "ann password 123"),
                add("bea@acme.example", "--password-stdin", stdin="bea password 123\n"),
                add("cid@acme.example", "--admin", "--password-file", str(password_file)),
                add("dee@acme.example"),
                add("eve@nowhere.example", "--password-stdin", stdin="eve password 123\n"),
                add("fay@acme.example", "--password-stdin", stdin="too short\n"),
            ),
            strict=True,
        )
    )
    got["hash_before"] = password_hash(data, "cid@acme.example")
    got["disable"], got["passwd"] = parallel(
        lambda: enclave(data, "user", "disable", "bea@acme.example"),
        lambda: enclave(
            data, "user", "passwd", "cid@acme.example", "--password-stdin", stdin=NEW_PASSWORD
        ),
    )
    got["list"] = enclave(data, "user", "list", "--tenant", "acme", "--json")
    got["data"] = data
    return got


def test_user_passwords_come_only_from_stdin_file_or_prompt(
    runs: dict[str, Future[Any]],
) -> None:
    got = outcome(runs, "users")
    expect(got["argument"], 2, "No such option", "--password")
    assert "added bea@acme.example (user)" in ok(got["stdin"]).stdout
    assert "added cid@acme.example (admin)" in ok(got["file"]).stdout
    expect(got["no_tty"], 2, "no password given")
    expect(got["short"], 2, "at least 10")
    assert verify_password(got["hash_before"], "cid password from a file")
    rows = got["list"].json()
    assert only(rows, "email", "bea@acme.example")["role"] == "user"
    assert only(rows, "email", "cid@acme.example")["role"] == "admin"
    listed = {row["email"] for row in rows}
    refused = {"ann@acme.example", "dee@acme.example", "fay@acme.example"}
    assert not listed & refused, "a refused user was created anyway"


def test_user_add_needs_a_tenant_owning_the_domain(runs: dict[str, Future[Any]]) -> None:
    expect(outcome(runs, "users")["no_tenant"], 4, "nowhere.example")


def test_user_disable_and_passwd(runs: dict[str, Future[Any]]) -> None:
    got = outcome(runs, "users")
    assert "disabled bea@acme.example" in ok(got["disable"]).stdout
    assert "password changed for cid@acme.example" in ok(got["passwd"]).stdout
    rows = got["list"].json()
    assert only(rows, "email", "bea@acme.example")["status"] == "disabled"
    assert only(rows, "email", "cid@acme.example")["status"] == "active"
    new_hash = password_hash(got["data"], "cid@acme.example")
    assert new_hash != got["hash_before"]
    assert verify_password(new_hash, NEW_PASSWORD.strip())
    assert not verify_password(new_hash, "cid password from a file")


# --- 5. app passwords ----------------------------------------------------------------------


@scenario
def app_passwords(work: Path, setup: Future[Deployment]) -> dict[str, Any]:
    data, email = setup.result().data, "gus@acme.example"
    got: dict[str, Any] = {}
    got["add"] = add = enclave(data, "user", "app-password", "add", email, "--name", "phone")
    match = re.search(r"\(([0-9a-f]{8})\)", add.stdout)
    assert match, f"no id printed:\n{add}"
    got["short_id"] = match.group(1)
    got["stored"] = [
        row["secret_hash"]
        for row in db_rows(data, "SELECT secret_hash FROM app_passwords WHERE name = 'phone'")
    ]
    got["list"], got["table"] = parallel(
        lambda: enclave(data, "user", "app-password", "list", email, "--json"),
        lambda: enclave(data, "user", "app-password", "list", email),
    )
    got["revoke"] = enclave(data, "user", "app-password", "revoke", email, got["short_id"])
    got["after"] = enclave(data, "user", "app-password", "list", email, "--json")
    return got


def test_app_password_shown_once_listed_without_secret_revoked(
    runs: dict[str, Future[Any]],
) -> None:
    got = outcome(runs, "app_passwords")
    secret = ok(got["add"]).lines[-1]
    assert APP_SECRET.match(secret), str(got["add"])
    assert got["stored"] == [hashlib.sha256(secret.replace("-", "").encode()).hexdigest()]

    [listed] = got["list"].json()
    assert listed["name"] == "phone"
    assert listed["id"].startswith(got["short_id"])
    assert listed["last_used_at"] is None
    assert "phone" in ok(got["table"]).stdout
    for output in (got["list"], got["table"]):
        text = output.stdout + output.stderr
        assert secret not in text and secret.replace("-", "") not in text

    assert f"revoked {got['short_id']}" in ok(got["revoke"]).stdout
    assert got["after"].json() == []


MARKUP_NAME = "[bold]old[/bold] laptop [/]"


@scenario
def app_password_markup(work: Path, setup: Future[Deployment]) -> dict[str, Any]:
    data, email = setup.result().data, "mia@acme.example"
    add, refused = parallel(
        lambda: enclave(data, "user", "app-password", "add", email, "--name", MARKUP_NAME),
        lambda: enclave(data, "tenant", "create", "x[/]y", "--domain", "x.example"),
    )
    table = enclave(data, "user", "app-password", "list", email)
    return {"add": add, "table": table, "refused": refused}


def test_app_password_name_is_shown_literally(runs: dict[str, Future[Any]]) -> None:
    """The name is free text: console markup in it is neither interpreted nor allowed to
    lose the secret, which is already stored and is shown only this once."""
    got, name = outcome(runs, "app_password_markup"), MARKUP_NAME
    assert got["add"].code == 0, str(got["add"])
    assert APP_SECRET.match(got["add"].lines[-1]), str(got["add"])
    assert name in got["add"].stdout, str(got["add"])
    assert got["table"].code == 0 and name in got["table"].stdout, str(got["table"])


def test_error_messages_show_user_input_literally(runs: dict[str, Future[Any]]) -> None:
    """An invalid name is reported (exit 2, the name quoted), not a crash of the printer."""
    expect(outcome(runs, "app_password_markup")["refused"], 2, "x[/]y")


# --- 6. second factor ----------------------------------------------------------------------


def enroll_interactively(data: Path, email: str) -> tuple[Result, str]:
    """``user mfa enroll EMAIL``, answering its prompt with the current code for the secret it
    printed. Returns the result and the secret."""
    with subprocess.Popen(
        [str(ENCLAVE), "user", "mfa", "enroll", email],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(data),
    ) as proc:
        assert proc.stdin and proc.stdout and proc.stderr
        watchdog = threading.Timer(TIMEOUT, proc.kill)
        watchdog.start()
        try:
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
    args = ("user", "mfa", "enroll", email)
    return Result(args, code, "".join(seen) + rest, err), secret


@scenario
def mfa(work: Path, setup: Future[Deployment]) -> dict[str, Any]:
    data = setup.result().data
    (enrolled, secret), wrong = parallel(
        lambda: enroll_interactively(data, "mia@acme.example"),
        lambda: enclave(data, "user", "mfa", "enroll", "gus@acme.example", "--code", "000000"),
    )
    listing, again = parallel(
        lambda: enclave(data, "user", "list", "--tenant", "acme", "--json"),
        lambda: enclave(data, "user", "mfa", "enroll", "mia@acme.example", "--code", "123456"),
    )
    got = {"enrolled": enrolled, "secret": secret, "wrong": wrong, "list": listing}
    return got | {"again": again, "data": data}


def test_mfa_enrolment_prints_recovery_codes(runs: dict[str, Future[Any]]) -> None:
    got = outcome(runs, "mfa")
    enrolled, secret = ok(got["enrolled"]), got["secret"]
    assert re.fullmatch(r"[A-Z2-7]{32}", secret), str(enrolled)
    assert f"otpauth://totp/Enclave:mia%40acme.example?secret={secret}" in enrolled.stdout
    codes = re.findall(r"^\s+([0-9a-f]{10})\s*$", enrolled.stdout, re.MULTILINE)
    assert len(codes) == 10 and len(set(codes)) == 10, str(enrolled)
    stored = db_rows(
        got["data"],
        "SELECT code_hash FROM recovery_codes JOIN users ON users.id = user_id WHERE email = ?",
        "mia@acme.example",
    )
    assert {r["code_hash"] for r in stored} == {
        hashlib.sha256(c.encode()).hexdigest() for c in codes
    }

    rows = got["list"].json()
    assert only(rows, "email", "mia@acme.example")["mfa"] is True
    assert only(rows, "email", "gus@acme.example")["mfa"] is False
    expect(got["again"], 5, "already enrolled")


def test_mfa_wrong_code_is_refused(runs: dict[str, Future[Any]]) -> None:
    wrong = outcome(runs, "mfa")["wrong"]
    expect(wrong, 2, "does not match")
    assert "secret:" in wrong.stdout  # shown before the code is checked


# --- 7. operators --------------------------------------------------------------------------


def ago(days: int) -> str:
    return str(TODAY - timedelta(days=days))


@scenario
def operators(work: Path, setup: Future[Deployment]) -> dict[str, Any]:
    data = setup.result().data

    def op(*args: str, stdin: str = "") -> Result:
        return enclave(data, "operator", *args, stdin=stdin)

    got: dict[str, Any] = {}
    got["add"] = op("add", "op1", "--password-stdin", stdin="op1 password 0001\n")
    got["unscreened"] = op("list", "--json")
    got["screen"] = op(
        "screen", "op1", "--citizenship", "us", "--check-level", "tier4",
        "--check-date", ago(100), "--training-date", ago(0),
    )  # fmt: skip
    got["screened"], got["bad_date"] = parallel(
        lambda: op("list", "--json"),
        lambda: op("screen", "op1", "--check-date", "2024-02-30"),
    )
    got["stale"] = op("screen", "op1", "--check-date", ago(731))
    got["expired"] = op("list", "--json")
    return got


def test_operator_screening_against_the_policy(runs: dict[str, Future[Any]]) -> None:
    got = outcome(runs, "operators")
    [uri] = [line for line in ok(got["add"]).lines if line.startswith("otpauth://")]
    totp = pyotp.parse_uri(uri)
    assert isinstance(totp, pyotp.TOTP) and totp.name == "op1"
    assert "Not yet eligible" in got["add"].stdout

    row = only(got["unscreened"].json(), "username", "op1")
    assert row["eligible"] is False
    assert "citizenship" in str(row["problems"]) and "check" in str(row["problems"])
    assert row["has_mfa"] is True

    assert "op1: eligible" in ok(got["screen"]).stdout
    row = only(got["screened"].json(), "username", "op1")
    assert row["eligible"] is True, row
    assert not row["problems"]
    assert (row["citizenship"], row["check_level"]) == ("US", "tier4")
    assert (row["check_date"], row["training_date"]) == (ago(100), ago(0))

    expect(got["bad_date"], 2, "2024-02-30", "not a date")

    assert "NOT eligible" in ok(got["stale"]).stdout
    row = only(got["expired"].json(), "username", "op1")
    assert row["eligible"] is False
    assert row["check_date"] == ago(731)
    assert "older than 730 days" in str(row["problems"])


def test_operator_list_json_keeps_problems_a_list(runs: dict[str, Future[Any]]) -> None:
    """JSON keeps lists as lists, as ``tenant list --json`` does with domains."""
    row = only(outcome(runs, "operators")["unscreened"].json(), "username", "op1")
    assert isinstance(row["problems"], list), f"problems is {row['problems']!r}"
    assert any("citizenship" in problem for problem in row["problems"])


# --- 10. help ------------------------------------------------------------------------------


@scenario
def help_text(work: Path, _: Future[Deployment]) -> dict[str, Any]:
    return {"help": enclave(None, "--help")}


def test_help_lists_every_command_group(runs: dict[str, Future[Any]]) -> None:
    result = ok(outcome(runs, "help_text")["help"])
    listed = set(re.findall(r"^\W*([a-z][a-z-]*)\s{2,}\S", result.stdout, re.MULTILINE))
    expected = set("init serve demo gc tenant user group operator audit key".split())
    assert expected <= listed, f"missing {expected - listed}\n{result}"
