#!/usr/bin/env python3
"""Dovecot's imaptest against a throwaway Enclave deployment and an isolated Dovecot.

imaptest (https://imapwiki.org/ImapTest) is an IMAP conformance and stress tester. This
script runs its scripted suite (``test=DIR``, the ``src/tests`` directory of imaptest's
``release-2.3`` branch) one test group (file) at a time against each server, and prints per
server the groups passed, failed and skipped (with the capabilities a skipped group needs),
the individual commands passed out of those run, and for each failing group imaptest's own
account of the expected and the received lines. With ``--stress N`` it also runs imaptest's
stress mode (``clients=10 secs=N``, random commands from ten concurrent clients on one
mailbox, with imaptest's state tracking) and reports commands per second and the errors seen.

    .venv/bin/python bench/imaptest_run.py                       # suite, Enclave and Dovecot
    .venv/bin/python bench/imaptest_run.py --only enclave --tests 'fetch*'
    .venv/bin/python bench/imaptest_run.py --stress 20           # suite, then 20 s of stress
    .venv/bin/python bench/imaptest_run.py --imaptest PATH --tests-dir DIR --json out.json

imaptest is a test tool, not part of Enclave: build it outside the checkout (Debian's
dovecot-dev headers; see bench/README.md). It is looked up as --imaptest, $IMAPTEST, on PATH,
then /work/tools/imaptest/bin/imaptest; without it the script says so and exits 0. The suite
is --tests-dir, else ``tests`` or ``share/tests`` beside or above the binary.

Enclave refuses LOGIN before TLS (STARTTLS, LOGINDISABLED), and imaptest speaks TLS only as
implicit TLS (``ssl``). If Enclave has an implicit-TLS listener (setting
``listen.imaps_port``) imaptest uses it with ``ssl=any-cert``; otherwise a loopback relay
(starttls_relay.py) accepts plain connections, performs STARTTLS with Enclave itself, hides
STARTTLS and LOGINDISABLED from the capability lists it passes on, and copies bytes both ways.
Dovecot gets plain IMAP on loopback (ssl = no), as in imap_bench.py. Nothing leaves loopback.
"""

# ruff: noqa: S603 - the commands are the script's own, with fixed arguments

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import imaplib
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchlib import (
    HOST,
    enclave_revision,
    host_facts,
    listeners,
    log_complaints,
    run_quiet,
    serve_ports,
    tree_cpu_seconds,
    use_enclave_src,
)
from imap_bench import DOVECOT, PASSWORD, Dovecot, Enclave, make_messages, user_for
from starttls_relay import StartTlsRelay

DEFAULT_BINARY = Path("/work/tools/imaptest/bin/imaptest")
USERS = (user_for(1), user_for(2))  # imaptest's user and user2, on both servers
# Groups that need a capability neither server offers (Dovecot 2.3 without imap_urlauth_host
# has no URLAUTH; nobody here offers CONTEXT=SORT).
EXPECTED_SKIPS = frozenset({"urlauth", "urlauth-binary", "urlauth2", "sort-partial"})


# --------------------------------------------------------------------------------------------
# Finding imaptest


def find_imaptest(explicit: Path | None = None) -> Path | None:
    """--imaptest, $IMAPTEST, PATH, then the build location outside the repo."""
    candidates = [explicit] if explicit else []
    if os.environ.get("IMAPTEST"):
        candidates.append(Path(os.environ["IMAPTEST"]))
    if found := shutil.which("imaptest"):
        candidates.append(Path(found))
    candidates.append(DEFAULT_BINARY)
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
        if explicit is not None and path == explicit:
            return None  # an explicit path that is not there is not silently replaced
    return None


def find_tests_dir(binary: Path, explicit: Path | None = None) -> Path | None:
    """The scripted suite: --tests-dir, else tests/ or share/tests/ beside or above the binary
    (an installed prefix, or a build tree's src/tests)."""
    if explicit is not None:
        return explicit if (explicit / "default.mbox").is_file() else None
    here = binary.resolve().parent
    for base in (here, here.parent):
        for sub in ("tests", "share/tests", "src/tests"):
            if (base / sub / "default.mbox").is_file():
                return base / sub
    return None


def list_groups(tests_dir: Path, pattern: str = "*") -> list[str]:
    """The test groups (files) of the suite whose names match ``pattern``, sorted as imaptest
    sorts them; ``NAME.mbox`` files are a group's messages, not groups."""
    return sorted(
        p.name
        for p in tests_dir.iterdir()
        if p.is_file() and not p.name.startswith(".") and not p.name.endswith(".mbox")
        and fnmatch.fnmatch(p.name, pattern)
    )  # fmt: skip


def required_capabilities(path: Path) -> list[str]:
    """The ``capabilities:`` line of a test file's header (before its first blank line)."""
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            break
        key, _, value = line.partition(":")
        if key.strip().lower() == "capabilities":
            return value.split()
    return []


# --------------------------------------------------------------------------------------------
# Running imaptest


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    tls: bool  # implicit TLS (imaptest's ssl=any-cert)
    user: str = USERS[0]
    user2: str = USERS[1]
    password: str = PASSWORD

    def args(self) -> list[str]:
        return [f"host={self.host}", f"port={self.port}", f"pass={self.password}"] + (
            ["ssl=any-cert"] if self.tls else []
        )


@dataclass
class Group:
    name: str
    status: str  # passed | failed | skipped | error
    output: str = ""
    commands_failed: int = 0
    commands_total: int = 0
    needs: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class Suite:
    groups: list[Group]
    capabilities: list[str]

    def named(self, status: str) -> list[str]:
        return [g.name for g in self.groups if g.status == status]

    @property
    def commands(self) -> tuple[int, int]:
        total = sum(g.commands_total for g in self.groups)
        return total - sum(g.commands_failed for g in self.groups), total


SUMMARY = re.compile(rb"(\d+) test groups: (\d+) failed, (\d+) skipped")
COUNTS = re.compile(rb"(?:base protocol|extensions): (\d+)/(\d+) individual commands failed")


def run_group(
    binary: Path, tests_dir: Path, name: str, endpoint: Endpoint, timeout: float = 120
) -> Group:
    """One test file through imaptest (``test=FILE``; the directory's default.mbox or the
    file's own NAME.mbox supplies the messages)."""
    args = [str(binary), *endpoint.args(), f"user={endpoint.user}", f"user2={endpoint.user2}",
            f"test={tests_dir / name}"]  # fmt: skip
    begin = time.perf_counter()
    try:
        done = subprocess.run(args, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        output = ((exc.stdout or b"") + (exc.stderr or b"")).decode(errors="replace")
        return Group(name, "error", f"imaptest timed out after {timeout:.0f}s\n{output}",
                     seconds=time.perf_counter() - begin)  # fmt: skip
    seconds = time.perf_counter() - begin
    output = (done.stderr + done.stdout).decode(errors="replace")
    summary = SUMMARY.search(done.stdout)
    counts = [tuple(int(x) for x in m.groups()) for m in COUNTS.finditer(done.stdout)]
    if summary is None:
        return Group(name, "error", f"imaptest exited {done.returncode}\n{output}", seconds=seconds)
    failed, skipped = int(summary.group(2)), int(summary.group(3))
    total = sum(c[1] for c in counts)
    # imaptest 2.3 leaves a group skipped for a missing capability out of its own "skipped"
    # count (it logs out and never finishes the group): such a group ran no command.
    status = "failed" if failed else "skipped" if skipped or total == 0 else "passed"
    return Group(
        name, status, output if status != "passed" else "",
        commands_failed=sum(c[0] for c in counts), commands_total=total,
        needs=required_capabilities(tests_dir / name), seconds=seconds,
    )  # fmt: skip


def server_capabilities(endpoint: Endpoint) -> list[str]:
    """What the server announces after login (what imaptest compares a group's needs with)."""
    client: imaplib.IMAP4
    if endpoint.tls:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        client = imaplib.IMAP4_SSL(endpoint.host, endpoint.port, ssl_context=context, timeout=30)
    else:
        client = imaplib.IMAP4(endpoint.host, endpoint.port, timeout=30)
    try:
        client.login(endpoint.user, endpoint.password)
        _, data = client.capability()
        raw = data[0] if data and isinstance(data[0], bytes) else b""
        return raw.decode(errors="replace").split()
    finally:
        with contextlib.suppress(Exception):
            client.logout()


def run_suite(
    binary: Path, tests_dir: Path, endpoint: Endpoint, pattern: str = "*", timeout: float = 120,
    progress: bool = False,
) -> Suite:  # fmt: skip
    caps = server_capabilities(endpoint)
    groups = []
    for name in list_groups(tests_dir, pattern):
        group = run_group(binary, tests_dir, name, endpoint, timeout)
        groups.append(group)
        if progress:
            print(f"  {name:<32} {group.status:<8} {group.seconds:5.1f}s", flush=True)
    return Suite(groups, caps)


@dataclass
class Stress:
    seconds: int
    clients: int
    totals: dict[str, int]
    commands_per_s: float
    errors: list[str]
    error_kinds: dict[str, int]
    stalled_seconds: int  # seconds in which some client had waited over 3 s for a reply
    most_stalled: int  # the most clients waiting so in one second
    exit_code: int
    server_cpu_s: float | None
    relay_cpu_s: float
    load_before: float
    load_after: float


def write_mbox(path: Path, count: int = 100, seed: int = 20240101) -> Path:
    """An mbox of imap_bench's message mix for imaptest's APPENDs (LF line ends, as imaptest
    reads them; it converts to CRLF)."""
    with path.open("wb") as out:
        for mail in make_messages(count, seed):
            body = mail.data.replace(b"\r\n", b"\n")
            body = re.sub(rb"(?m)^(>*From )", rb">\1", body)
            out.write(b"From sender@remote.example  Mon Jan  1 00:00:00 2024\n" + body + b"\n")
    return path


def run_stress(
    binary: Path, endpoint: Endpoint, seconds: int, mbox: Path, clients: int = 10,
    server_pid: int | None = None,
) -> Stress:  # fmt: skip
    """imaptest's stress mode on the user's INBOX: ``clients`` connections sending random
    commands for ``seconds``, imaptest checking every reply against its model of the box."""
    args = [str(binary), *endpoint.args(), f"user={endpoint.user}", f"clients={clients}",
            f"secs={seconds}", f"mbox={mbox}"]  # fmt: skip
    cpu0 = tree_cpu_seconds(server_pid) if server_pid else 0.0
    relay0, load0 = time.process_time(), os.getloadavg()[0]  # this process: the relay's CPU
    done = subprocess.run(args, capture_output=True, timeout=seconds + 120, check=False)
    cpu = tree_cpu_seconds(server_pid) - cpu0 if server_pid else None
    lines = done.stdout.decode(errors="replace").splitlines()
    totals: dict[str, int] = {}
    if "Totals:" in lines:
        at = lines.index("Totals:")
        names = lines[at + 1].split()
        numbers = [line.split() for line in lines[at + 2 :] if re.fullmatch(r"[\d ]+", line)]
        if numbers:
            totals = dict(zip(names, (int(n) for n in numbers[-1]), strict=False))
    entries: list[str] = []  # an imaptest message, with the reply lines it quotes
    for line in done.stderr.decode(errors="replace").splitlines():
        if ERROR_START.match(line) or not entries:
            entries.append(line)
        elif line.strip():
            entries[-1] += "\n" + line
    entries += [line for line in lines if ERROR_START.match(line)]
    # Per-second lines note clients waiting over 3 s for a reply (load or a stuck server).
    stalls = [int(m.group(1)) for line in lines if (m := re.search(r"\((\d+) stalled >", line))]
    return Stress(seconds, clients, totals, sum(totals.values()) / seconds, entries,
                  error_kinds(entries), len(stalls), max(stalls, default=0), done.returncode,
                  cpu, time.process_time() - relay0,
                  load0, os.getloadavg()[0])  # fmt: skip


ERROR_START = re.compile(r"^(Error|Warning|Panic|Fatal): ")


def error_kinds(entries: Sequence[str]) -> dict[str, int]:
    """The entries counted by kind: the client number, the quoted reply and any flag or
    keyword name taken out."""
    kinds: dict[str, int] = {}
    for entry in entries:
        kind = re.sub(r"\[\d+\]", "[n]", entry.split("\n", 1)[0].split(": * ", 1)[0])
        kind = re.sub(r"(FLAGS: )\S+$", r"\1KEYWORD", kind)[:200]
        kinds[kind] = kinds.get(kind, 0) + 1
    return dict(sorted(kinds.items(), key=lambda item: -item[1]))


# --------------------------------------------------------------------------------------------
# Servers


class EnclaveServer(Enclave):
    """imap_bench's Enclave, with imaptest's two users; every listener gets a free port
    (benchlib.serve_ports), so no fixed default collides with another server on the
    machine."""

    def __init__(self, work: Path) -> None:
        super().__init__(work)
        self.ports = serve_ports()
        self.imaps_port = self.ports.get("imaps", 0)

    def wait_imaps(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.imaps_port), 2):
                return
            time.sleep(0.1)
        raise RuntimeError(f"nothing listens on the IMAPS port {self.imaps_port}")

    def prepare(self) -> None:
        self.cli("init", "--hostname", "mx.imaptest.test")
        self.cli("tenant", "create", "bench", "--domain", USERS[0].partition("@")[2])
        for user in USERS:
            self.cli("user", "add", user, "--password-stdin", stdin=PASSWORD + "\n")


class DovecotServer(Dovecot):
    """imap_bench's Dovecot (isolated, loopback, plain IMAP), with imaptest's two users and
    empty mailboxes."""

    def prepare(self) -> None:
        for sub in ("run", "state", "home"):
            (self.root / sub).mkdir(parents=True)
        secret = run_quiet(["doveadm", "pw", "-s", self.scheme, "-p", PASSWORD]).stdout.strip()
        (self.root / "passwd").write_text("".join(f"{user}:{secret}\n" for user in USERS))
        for path in (
            self.root / "home",
            *(self.root / "home" / u.partition("@")[0] for u in USERS),
        ):
            path.mkdir(exist_ok=True)
            os.chown(path, self.uid, self.gid)


def print_suite(name: str, suite: Suite, tests_dir: Path) -> None:
    passed, failed = suite.named("passed"), suite.named("failed") + suite.named("error")
    skipped = suite.named("skipped")
    ok, total = suite.commands
    print(f"\n== {name}: {len(suite.groups)} groups: {len(passed)} passed, {len(failed)} "
          f"failed, {len(skipped)} skipped; commands {ok}/{total} passed")  # fmt: skip
    have = {cap.upper() for cap in suite.capabilities}
    for group in suite.groups:
        if group.status == "skipped":
            missing = [c for c in group.needs if c.upper() not in have]
            print(f"  skipped {group.name}: needs {' '.join(missing) or '(user2?)'}")
    for group in suite.groups:
        if group.status in ("failed", "error"):
            print(f"\n--- {name} {group.status}: {group.name} "
                  f"({group.commands_failed}/{group.commands_total} commands failed)")  # fmt: skip
            print(group.output.rstrip())
    print(f"\n{name} failing groups: {' '.join(failed) or 'none'}")


def print_stress(name: str, stress: Stress) -> None:
    cpu = f"server CPU {stress.server_cpu_s:.1f}s, " if stress.server_cpu_s is not None else ""
    print(f"\n== {name} stress: {stress.clients} clients, {stress.seconds}s: "
          f"{stress.commands_per_s:.1f} commands/s, {len(stress.errors)} error(s), imaptest "
          f"exit {stress.exit_code}; {cpu}relay (this process) CPU {stress.relay_cpu_s:.1f}s, "
          f"load {stress.load_before:.1f} -> {stress.load_after:.1f}")  # fmt: skip
    print("  totals: " + " ".join(f"{k} {v}" for k, v in stress.totals.items()))
    if stress.stalled_seconds:
        print(f"  {stress.stalled_seconds} second(s) with clients waiting over 3 s for a reply "
              f"(at most {stress.most_stalled} at once)")  # fmt: skip
    for kind, count in stress.error_kinds.items():
        print(f"  {count:5d} x {kind}")
    for entry in stress.errors[:5]:
        print("  e.g. " + entry[:400].replace("\n", "\n       "))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--imaptest", type=Path, help="the imaptest binary")
    parser.add_argument("--tests-dir", type=Path, help="imaptest's src/tests directory")
    parser.add_argument("--only", choices=("enclave", "dovecot"), help="test one server")
    parser.add_argument("--tests", default="*", help="run the groups matching this glob (*)")
    parser.add_argument("--stress", type=int, metavar="SECONDS",
                        help="also run imaptest's stress mode this long")  # fmt: skip
    parser.add_argument("--clients", type=int, default=10, help="stress clients (10)")
    parser.add_argument("--no-suite", action="store_true", help="skip the scripted suite")
    parser.add_argument("--via", choices=("auto", "relay", "imaps"), default="auto",
                        help="reach Enclave through the STARTTLS relay or its implicit-TLS "
                        "port (auto: imaps if listen.imaps_port exists)")  # fmt: skip
    parser.add_argument("--group-timeout", type=float, default=120, help="seconds per group")
    parser.add_argument("--enclave-src", type=Path, help="run Enclave from this source tree")
    parser.add_argument("--workdir", type=Path, help="parent of the temporary directory")
    parser.add_argument("--keep", action="store_true", help="keep the deployments afterwards")
    parser.add_argument("--json", type=Path, help="also write every result here")
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per group")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    binary = find_imaptest(args.imaptest)
    if binary is None:
        print("imaptest not found (--imaptest, $IMAPTEST, PATH, /work/tools/imaptest/bin): "
              "skipping. Build it outside the checkout as bench/README.md describes.")  # fmt: skip
        return 0
    tests_dir = find_tests_dir(binary, args.tests_dir)
    if tests_dir is None and not args.no_suite:
        print(f"imaptest's tests directory not found near {binary}: give --tests-dir")
        return 2
    if not use_enclave_src(args.enclave_src):
        return 2
    servers = ["enclave", "dovecot"] if args.only is None else [args.only]
    if "dovecot" in servers and (not DOVECOT.exists() or os.geteuid() != 0):
        why = "not installed" if not DOVECOT.exists() else "needs root"
        if args.only == "dovecot":
            print(f"Dovecot {why}", file=sys.stderr)
            return 2
        print(f"note: skipping Dovecot ({why})")
        servers.remove("dovecot")
    has_imaps = "imaps" in listeners()
    if args.via == "imaps" and not has_imaps:
        print("--via imaps: this Enclave has no listen.imaps_port", file=sys.stderr)
        return 2
    imaps = args.via == "imaps" or (args.via == "auto" and has_imaps)
    print("machine: " + ", ".join(f"{k} {v}" for k, v in host_facts().items()))
    print(f"imaptest {binary}, tests {tests_dir}, enclave {enclave_revision()}, Enclave via "
          f"{'implicit TLS (listen.imaps_port)' if imaps else 'the STARTTLS relay'}")  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="imaptest-", dir=args.workdir))
    os.chmod(work, 0o755)  # noqa: S103 (Dovecot's unprivileged processes enter it)
    results: dict[str, dict[str, object]] = {}
    ok = True
    try:
        mbox = write_mbox(work / "stress.mbox")
        for name in servers:
            result: dict[str, object] = results.setdefault(name, {})
            with contextlib.ExitStack() as stack:
                target: EnclaveServer | DovecotServer
                if name == "enclave":
                    target = EnclaveServer(work)
                    target.prepare()
                    target.start()
                    stack.callback(target.stop)
                    if imaps:
                        target.wait_imaps()
                        endpoint = Endpoint(HOST, target.imaps_port, tls=True)
                    else:
                        relay = stack.enter_context(
                            StartTlsRelay(target.port, target.data / "tls" / "cert.pem")
                        )
                        endpoint = Endpoint(HOST, relay.port, tls=False)
                else:
                    target = DovecotServer(work)
                    target.prepare()
                    target.start()
                    stack.callback(target.stop)
                    endpoint = Endpoint(HOST, target.port, tls=False)
                print(f"\n{name}: listening; imaptest connects to {endpoint.host}:"
                      f"{endpoint.port}{' (TLS)' if endpoint.tls else ''}", flush=True)  # fmt: skip
                if not args.no_suite and tests_dir is not None:
                    suite = run_suite(binary, tests_dir, endpoint, args.tests,
                                      args.group_timeout, args.verbose)  # fmt: skip
                    print_suite(name, suite, tests_dir)
                    result["suite"] = asdict(suite)
                    ok = ok and not (suite.named("failed") or suite.named("error"))
                if args.stress:
                    stress = run_stress(binary, endpoint, args.stress, mbox, args.clients,
                                        target.pid)  # fmt: skip
                    print_stress(name, stress)
                    result["stress"] = asdict(stress)
                    ok = ok and not stress.errors
        logs = ("enclave/serve.log", "dovecot/dovecot.log", "dovecot/stderr.log")
        complaints = log_complaints(work, logs, re.compile(rb"Killed with signal 15"), shown=20)
        if complaints:
            print()
        for line in complaints:
            print(line)
        results["log_complaints"] = {"lines": complaints}
    finally:
        if args.keep:
            print(f"\nkept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    print("\nOK: every group passed or was skipped" if ok else "\nFAILURES: see above")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
