#!/usr/bin/env python3
"""SMTP ingest benchmark: Enclave's inbound MX listener side by side with Postfix.

Measures messages per second *accepted and durably stored* with N concurrent SMTP clients and
a deterministic size mix, against a throwaway Enclave deployment and (when installed, as root)
a throwaway Postfix instance delivering to Maildirs, both on loopback on this machine.

    .venv/bin/python bench/smtp_ingest.py                  # 8 clients, 2000 messages, 3 rounds
    .venv/bin/python bench/smtp_ingest.py --smoke          # tiny run, exit 0 if all accepted
    .venv/bin/python bench/smtp_ingest.py --only enclave   # no Postfix, no root needed

What "accepted" means for each server (see bench/README.md):

* Enclave answers 250 after the encrypted message file is fsynced and renamed (directory
  fsynced) and the SQLite transaction with the message rows committed (WAL, synchronous=FULL).
  At that point it is in the recipient's INBOX. After each round the script stops the server
  and counts the INBOX rows in the database to check that every 250 was stored.
* Postfix answers 250 after cleanup(8) has fsynced the queue file; virtual(8) delivers to the
  Maildir later (and fsyncs there too). The script counts Maildir files until every accepted
  message has arrived and reports that time as well ("in mailbox").

The same driver (threads + smtplib, one persistent connection per client, messages taken from
a shared queue) and the same message set are used for both servers. Nothing leaves loopback.
"""

# ruff: noqa: S603

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import random
import shutil
import signal
import smtplib
import socketserver
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from benchlib import (
    _b64,
    enclave_command,
    enclave_env,
    enclave_revision,
    free_port,
    host_facts,
    percentile,
    run_quiet,
    serve_command,
    serve_ports,
    stop_process,
    tree_cpu_seconds,
    use_enclave_src,
)

HOST = "127.0.0.1"
DOMAIN = "bench.test"
SENDER = "loadgen@sender.invalid"
HELO = "loadgen.invalid"
POSTFIX = Path("/usr/sbin/postfix")
INSTALL_HINT = (
    "Postfix is not installed (/usr/sbin/postfix is missing). Install it with\n"
    "    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postfix\n"
    "(the package's own system instance is not used or started by this benchmark), or run\n"
    "with --only enclave."
)
MB = 1_000_000  # MB/s in the tables is 10^6 bytes per second

# --------------------------------------------------------------------------------------------
# The message set


@dataclass(frozen=True)
class Mail:
    kind: str
    rcpt: str
    data: bytes


# (kind, share of the set); sizes are chosen in make_messages.
MIX = (("text-4k", 0.6), ("multipart-40k", 0.3), ("attachment-400k", 0.1))
WORDS = (
    "the of and to in is that for it as was with be by on not he this are or his from at "
    "which but have an they you were her she there one all we their can has been if more "
    "when will would who so no meeting report budget quarter draft attached please review "
    "schedule agenda minutes project milestone deadline contract invoice customer release "
    "server database security audit compliance tenant policy update thanks regards"
).split()


def _text(rng: random.Random, size: int) -> str:
    """Plain prose of about ``size`` bytes, CRLF lines of at most 72 characters."""
    lines: list[str] = []
    total = 0
    while total < size:
        words = rng.choices(WORDS, k=rng.randint(8, 13))
        line = " ".join(words)[:72]
        lines.append(line)
        total += len(line) + 2
    return "\r\n".join(lines) + "\r\n"


def _headers(index: int, seed: int, rcpt: str, subject: str, when: datetime) -> list[str]:
    return [
        f"From: Load Generator <{SENDER}>",
        f"To: <{rcpt}>",
        f"Subject: {subject} #{index}",
        f"Date: {format_datetime(when)}",
        f"Message-ID: <{seed}.{index}@{HELO}>",
        "MIME-Version: 1.0",
    ]


def make_message(rng: random.Random, index: int, seed: int, kind: str, rcpt: str) -> Mail:
    when = datetime(2024, 1, 1, tzinfo=UTC).replace(second=index % 60)
    if kind == "text-4k":
        head = _headers(index, seed, rcpt, "Status update", when)
        head += ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 7bit"]
        body = _text(rng, rng.randint(3 * 1024, 5 * 1024))
        text = "\r\n".join(head) + "\r\n\r\n" + body
    else:
        if kind == "multipart-40k":
            body_size, attachment = rng.randint(2 * 1024, 6 * 1024), rng.randint(24_000, 30_000)
            filename, ctype = "scan.pdf", "application/pdf"
        else:
            body_size, attachment = rng.randint(1024, 2048), rng.randint(280_000, 320_000)
            filename, ctype = "photos.zip", "application/zip"
        boundary = f"=_bench_{seed}_{index}"
        head = _headers(index, seed, rcpt, f"Documents ({filename})", when)
        head.append(f'Content-Type: multipart/mixed; boundary="{boundary}"')
        text = (
            "\r\n".join(head)
            + "\r\n\r\nThis is a multi-part message in MIME format.\r\n"
            + f"--{boundary}\r\n"
            + "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
            + _text(rng, body_size)
            + f"--{boundary}\r\n"
            + f'Content-Type: {ctype}; name="{filename}"\r\n'
            + f'Content-Disposition: attachment; filename="{filename}"\r\n'
            + "Content-Transfer-Encoding: base64\r\n\r\n"
            + _b64(rng.randbytes(attachment))
            + f"--{boundary}--\r\n"
        )
    return Mail(kind, rcpt, text.encode("ascii"))


def make_messages(count: int, seed: int, users: Sequence[str]) -> list[Mail]:
    """``count`` messages in exact MIX proportions, shuffled; the same for a given seed."""
    rng = random.Random(seed)
    kinds: list[str] = []
    for kind, share in MIX[1:]:
        kinds += [kind] * round(count * share)
    kinds = [MIX[0][0]] * (count - len(kinds)) + kinds
    rng.shuffle(kinds)
    return [
        make_message(rng, i, seed, kind, f"{rng.choice(users)}@{DOMAIN}")
        for i, kind in enumerate(kinds)
    ]


# --------------------------------------------------------------------------------------------
# The driver


@dataclass
class Drive:
    sent: int = 0
    accepted: int = 0
    accepted_bytes: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    client_cpu: float = 0.0
    started_at: float = 0.0  # time.perf_counter() when the clock started


def _connect(port: int) -> smtplib.SMTP:
    client = smtplib.SMTP(HOST, port, local_hostname=HELO, timeout=120)
    client.ehlo()
    return client


def drive(port: int, messages: Sequence[Mail], clients: int, deadline_s: float) -> Drive:
    """Send every message once over ``clients`` persistent connections; the clock runs from
    the moment all clients are connected and greeted until the last reply."""
    result = Drive()
    lock = threading.Lock()
    pending = iter(range(len(messages)))
    finished: list[float] = []
    barrier = threading.Barrier(clients + 1)
    stop_at = [float("inf")]

    def fail(reason: str) -> None:
        with lock:
            result.failures[reason] = result.failures.get(reason, 0) + 1

    def worker() -> None:
        try:
            client: smtplib.SMTP | None = _connect(port)
        except OSError as exc:
            client = None
            fail(f"connect: {exc}")
        barrier.wait()
        while True:
            with lock:
                index = next(pending, None)
            if index is None or time.perf_counter() > stop_at[0]:
                break
            mail = messages[index]
            with lock:
                result.sent += 1
            begin = time.perf_counter()
            try:
                if client is None:
                    client = _connect(port)
                client.sendmail(SENDER, [mail.rcpt], mail.data)
            except smtplib.SMTPRecipientsRefused as exc:
                code = next(iter(exc.recipients.values()))[0]
                fail(f"RCPT {code}")
                continue
            except smtplib.SMTPResponseException as exc:
                fail(f"{type(exc).__name__} {exc.smtp_code}")
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    client.rset()  # type: ignore[union-attr]
                continue
            except (smtplib.SMTPException, OSError) as exc:
                fail(f"{type(exc).__name__}")
                with contextlib.suppress(Exception):
                    client.close()  # type: ignore[union-attr]
                client = None  # reconnect for the next message
                continue
            latency = time.perf_counter() - begin
            with lock:
                result.accepted += 1
                result.accepted_bytes += len(mail.data)
                result.latencies.append(latency)
        with lock:
            finished.append(time.perf_counter())
        if client is not None:
            with contextlib.suppress(Exception):
                client.quit()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    cpu0 = time.process_time()
    barrier.wait()
    result.started_at = time.perf_counter()
    stop_at[0] = result.started_at + deadline_s
    for thread in threads:
        thread.join()
    result.elapsed = max(finished) - result.started_at
    result.client_cpu = time.process_time() - cpu0
    return result


@dataclass(frozen=True)
class Load:
    """What each round sends: an untimed warm-up set, then the measured set."""

    messages: Sequence[Mail]
    warmup: Sequence[Mail]
    clients: int
    deadline_s: float

    def warm_up(self, port: int) -> int:
        """Send the warm-up set (not measured); returns how many were accepted."""
        if not self.warmup:
            return 0
        result = drive(port, self.warmup, self.clients, self.deadline_s)
        if result.failures:
            raise RuntimeError(f"warm-up failed: {result.failures}")
        return result.accepted

    def drive(self, port: int) -> Drive:
        return drive(port, self.messages, self.clients, self.deadline_s)


# --------------------------------------------------------------------------------------------
# Processes and ports


def wait_for_smtp(port: int, timeout: float, alive: Callable[[], bool] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise RuntimeError("server exited during start-up")
        try:
            with smtplib.SMTP(HOST, port, local_hostname=HELO, timeout=5) as probe:
                probe.noop()
            return
        except (OSError, smtplib.SMTPException):
            time.sleep(0.1)
    raise RuntimeError(f"nothing answered SMTP on {HOST}:{port} within {timeout:.0f}s")


# --------------------------------------------------------------------------------------------
# DNS: Enclave checks SPF, DKIM and DMARC on every inbound message. It is pointed at this
# loopback server, so no lookup leaves the machine; the sender's domain publishes an SPF record
# for 127.0.0.1 and a DMARC p=none policy (the checks pass, as for ordinary legitimate mail), and
# every other name is NXDOMAIN at once.

SENDER_DOMAIN = SENDER.rpartition("@")[2]
ZONE = {
    (SENDER_DOMAIN, "TXT"): ['"v=spf1 ip4:127.0.0.1 -all"'],
    (f"_dmarc.{SENDER_DOMAIN}", "TXT"): ['"v=DMARC1; p=none"'],
}


class LoopbackDns:
    """A tiny authoritative server for ZONE on 127.0.0.1 (UDP and TCP), with dnspython."""

    def __init__(self) -> None:
        import dns.message  # Enclave's own dependency: present in its venv
        import dns.rcode
        import dns.rdataclass
        import dns.rdatatype
        import dns.rrset

        self.queries = 0
        lock = threading.Lock()
        names = {name for name, _ in ZONE}

        def answer(wire: bytes) -> bytes:
            with lock:
                self.queries += 1
            query = dns.message.from_wire(wire)
            response = dns.message.make_response(query)
            response.flags |= 0x0400  # authoritative
            question = query.question[0]
            name = question.name.to_text().rstrip(".").lower()
            rdtype = dns.rdatatype.to_text(question.rdtype)
            if name not in names:
                response.set_rcode(dns.rcode.NXDOMAIN)
            elif (name, rdtype) in ZONE:
                response.answer.append(
                    dns.rrset.from_text_list(
                        question.name, 60, dns.rdataclass.IN, rdtype, ZONE[(name, rdtype)]
                    )
                )
            return response.to_wire()  # type: ignore[no-any-return]

        class Udp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                sock.sendto(answer(data), self.client_address)

        class Tcp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                size = struct.unpack("!H", self.request.recv(2))[0]
                reply = answer(self.request.recv(size))
                self.request.sendall(struct.pack("!H", len(reply)) + reply)

        self._udp = socketserver.ThreadingUDPServer((HOST, 0), Udp)
        self.port: int = self._udp.server_address[1]
        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self._tcp = socketserver.ThreadingTCPServer((HOST, self.port), Tcp)
        for server in (self._udp, self._tcp):
            threading.Thread(target=server.serve_forever, daemon=True).start()

    def close(self) -> None:
        for server in (self._udp, self._tcp):
            server.shutdown()
            server.server_close()


# --------------------------------------------------------------------------------------------
# Servers


@dataclass
class Round:
    server: str
    round: int
    sent: int
    accepted: int
    failures: dict[str, int]
    elapsed_s: float
    msgs_per_s: float
    mb_per_s: float
    p50_ms: float
    p99_ms: float
    in_mailbox_s: float  # from the start until every accepted message was in its mailbox
    in_mailbox_msgs_per_s: float
    stored: int  # messages found in the mailboxes afterwards
    server_cpu_s: float
    client_cpu_s: float
    dns_queries: int = 0  # lookups the server made during the measured part (Enclave)
    load_before: float = 0.0  # 1-minute load average when the round started
    load_after: float = 0.0  # ... and when it ended: other work on the machine shows here

    @classmethod
    def of(cls, server: str, number: int, d: Drive, in_mailbox: float, stored: int,
           server_cpu: float) -> Round:  # fmt: skip
        return cls(
            server=server,
            round=number,
            sent=d.sent,
            accepted=d.accepted,
            failures=d.failures,
            elapsed_s=d.elapsed,
            msgs_per_s=d.accepted / d.elapsed if d.elapsed else 0.0,
            mb_per_s=d.accepted_bytes / d.elapsed / MB if d.elapsed else 0.0,
            p50_ms=percentile(d.latencies, 50) * 1000,
            p99_ms=percentile(d.latencies, 99) * 1000,
            in_mailbox_s=in_mailbox,
            in_mailbox_msgs_per_s=stored / in_mailbox if in_mailbox else 0.0,
            stored=stored,
            server_cpu_s=server_cpu,
            client_cpu_s=d.client_cpu,
        )


# More py-spy options for --profile, e.g. "--gil" (only samples holding the GIL) or "--idle".
PY_SPY_EXTRA = os.environ.get("SMTP_INGEST_PY_SPY_ARGS", "").split()


class Enclave:
    name = "enclave"

    def __init__(
        self, work: Path, users: Sequence[str], dns: LoopbackDns, profile: Path | None
    ) -> None:
        self.work = work
        self.dns = dns
        self.users = users
        self.profile = profile
        self.command = enclave_command()
        self.template = work / "enclave-template"

    def cli(self, data: Path, *args: str) -> None:
        run_quiet([str(self.command), *args, "--data", str(data)], env=enclave_env())

    def prepare(self) -> None:
        """One deployment made with the CLI; each round serves a fresh copy of it."""
        self.cli(self.template, "init", "--hostname", "mx.enclave-bench.test")
        self.cli(self.template, "tenant", "create", "bench", "--domain", DOMAIN)
        # Two at a time: each call is mostly interpreter start-up; SQLite serialises the writes.
        with ThreadPoolExecutor(max_workers=2) as pool:
            added = [
                pool.submit(
                    self.cli, self.template, "user", "add", f"{u}@{DOMAIN}", "--no-password"
                )
                for u in self.users
            ]
            for future in added:
                future.result()

    def run(self, number: int, load: Load) -> Round:
        data = self.work / f"enclave-round{number}"
        shutil.copytree(self.template, data)
        ports = serve_ports()
        http_port, smtp_port = ports["http"], ports["smtp"]
        log = (data / "serve.log").open("wb")
        process = subprocess.Popen(
            serve_command(self.command, data, ports),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=enclave_env(self.dns.port, dns_timeout_seconds=2),
        )  # fmt: skip
        spy: subprocess.Popen[bytes] | None = None
        try:
            self._wait_ready(process, http_port, smtp_port)
            if self.profile is not None:
                spy = self._start_profiler(process.pid, number)
            warm = load.warm_up(smtp_port)
            cpu0, queries0 = tree_cpu_seconds(process.pid), self.dns.queries
            result = load.drive(smtp_port)
            server_cpu = tree_cpu_seconds(process.pid) - cpu0
            dns_queries = self.dns.queries - queries0
        finally:
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    spy.wait(timeout=60)
            code = stop_process(process)
            log.close()
        if code != 0:
            raise RuntimeError(f"enclave serve exited {code} after SIGTERM; see {data}/serve.log")
        stored = self.count_stored(data) - warm
        # 250 means in the INBOX already: "in mailbox" is the acceptance time itself.
        found = Round.of(self.name, number, result, result.elapsed, stored, server_cpu)
        found.dns_queries = dns_queries
        return found

    def _wait_ready(self, process: subprocess.Popen[bytes], http_port: int, smtp: int) -> None:
        deadline = time.monotonic() + 60
        url = f"http://{HOST}:{http_port}/healthz"
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"enclave serve exited {process.returncode} during start-up")
            try:
                with urllib.request.urlopen(url, timeout=2) as reply:
                    if reply.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError("enclave serve did not answer /healthz within 60s")
        wait_for_smtp(smtp, 30, alive=lambda: process.poll() is None)

    def _start_profiler(self, pid: int, number: int) -> subprocess.Popen[bytes]:
        assert self.profile is not None
        self.profile.mkdir(parents=True, exist_ok=True)
        spy = shutil.which("py-spy") or sys.exit("--profile needs py-spy on PATH")
        out = self.profile / f"enclave-round{number}.collapsed.txt"
        process = subprocess.Popen(
            [spy, "record", "--pid", str(pid), "--rate", "200", "--format", "raw",
             "--output", str(out), "--nonblocking", "--threads", "--subprocesses", *PY_SPY_EXTRA],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(1.0)  # let it attach
        return process

    @staticmethod
    def count_stored(data: Path) -> int:
        """INBOX rows in the stopped deployment's database: what a reader would find."""
        with contextlib.closing(
            sqlite3.connect(f"file:{data / 'enclave.db'}?mode=ro", uri=True)
        ) as db:
            row = db.execute(
                "SELECT count(*) FROM messages JOIN mailboxes ON messages.mailbox_id = mailboxes.id"
                " WHERE mailboxes.name = 'INBOX'"
            ).fetchone()
        return int(row[0])


MAIN_CF = """\
# Throwaway instance for bench/smtp_ingest.py. Defaults everywhere except paths, loopback,
# and no DNS or outbound delivery.
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
maillog_file = {root}/postfix.log
maillog_file_prefixes = {root}
myhostname = mx.postfix-bench.test
mydomain = postfix-bench.test
myorigin = $myhostname
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_peername_lookup = no
alias_maps =
alias_database =
local_recipient_maps =
# Mailboxes: Maildirs under {root}/mail, written by virtual(8) as uid/gid {uid}/{gid}.
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {root}/mail
virtual_mailbox_maps = texthash:{root}/etc/vmailbox
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
# Nothing may leave the machine (bounces included).
default_transport = error:outbound mail is disabled in this benchmark
relay_transport = error:outbound mail is disabled in this benchmark
biff = no
"""

# Debian's master.cf, reduced to what SMTP in and virtual delivery use, without chroot.
MASTER_CF = """\
{host}:{port} inet n - n - - smtpd
pickup     unix  n - n 60    1 pickup
cleanup    unix  n - n -     0 cleanup
qmgr       unix  n - n 300   1 qmgr
rewrite    unix  - - n -     - trivial-rewrite
bounce     unix  - - n -     0 bounce
defer      unix  - - n -     0 bounce
trace      unix  - - n -     0 bounce
verify     unix  - - n -     1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -     - proxymap
proxywrite unix  - - n -     1 proxymap
showq      unix  n - n -     - showq
error      unix  - - n -     - error
retry      unix  - - n -     - error
discard    unix  - - n -     - discard
virtual    unix  - n n -     - virtual
anvil      unix  - - n -     1 anvil
scache     unix  - - n -     1 scache
postlog    unix-dgram n - n - 1 postlogd
"""


def postfix_problem() -> str | None:
    if not POSTFIX.exists():
        return INSTALL_HINT
    if os.geteuid() != 0:
        return "Postfix runs as root: run the Postfix comparison as root, or use --only enclave."
    return None


def postfix_version() -> str:
    try:
        out = run_quiet(["/usr/sbin/postconf", "-d", "-h", "mail_version"]).stdout.strip()
    except (OSError, RuntimeError):
        return "unknown"
    return out


class Postfix:
    name = "postfix"

    def __init__(self, work: Path, users: Sequence[str]) -> None:
        self.work = work
        self.users = users
        owner = pwd.getpwnam("nobody")
        self.uid, self.gid = owner.pw_uid, owner.pw_gid

    def run(self, number: int, load: Load) -> Round:
        root = self.work / f"postfix-round{number}"
        etc = root / "etc"
        port = free_port()
        for sub in ("etc", "queue", "data", "mail"):
            (root / sub).mkdir(parents=True)
        os.chmod(root, 0o755)  # noqa: S103 (Postfix's unprivileged daemons enter it)
        shutil.chown(root / "data", "postfix")
        os.chown(root / "mail", self.uid, self.gid)
        (etc / "main.cf").write_text(
            MAIN_CF.format(root=root, domain=DOMAIN, uid=self.uid, gid=self.gid)
        )
        (etc / "master.cf").write_text(MASTER_CF.format(host=HOST, port=port))
        (etc / "vmailbox").write_text(
            "".join(f"{user}@{DOMAIN} {user}/Maildir/\n" for user in self.users)
        )
        run_quiet([str(POSTFIX), "-c", str(etc), "check"])
        run_quiet([str(POSTFIX), "-c", str(etc), "start"])
        try:
            master = self._master_pid(root)
            wait_for_smtp(port, 30)
            warm = load.warm_up(port)
            self._wait_delivered(root, warm, timeout=120)
            cpu0 = tree_cpu_seconds(master)
            result = load.drive(port)
            stored = self._wait_delivered(root, warm + result.accepted, timeout=600) - warm
            in_mailbox = max(result.elapsed, time.perf_counter() - result.started_at)
            server_cpu = tree_cpu_seconds(master) - cpu0
        finally:
            self._stop(etc, root)
        return Round.of(self.name, number, result, in_mailbox, stored, server_cpu)

    @staticmethod
    def _master_pid(root: Path) -> int:
        path = root / "queue" / "pid" / "master.pid"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                return int(path.read_text().strip())
            time.sleep(0.05)
        raise RuntimeError(f"Postfix wrote no {path}")

    def _count(self, root: Path) -> int:
        total = 0
        for user in self.users:
            with contextlib.suppress(FileNotFoundError):
                total += sum(1 for _ in os.scandir(root / "mail" / user / "Maildir" / "new"))
        return total

    def _wait_delivered(self, root: Path, expected: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while True:
            count = self._count(root)
            if count >= expected or time.monotonic() > deadline:
                return count
            time.sleep(0.01)

    def _stop(self, etc: Path, root: Path) -> None:
        try:
            master = self._master_pid(root)
        except RuntimeError:
            master = None
        subprocess.run(
            [str(POSTFIX), "-c", str(etc), "stop"], capture_output=True, timeout=60, check=False
        )
        deadline = time.monotonic() + 30
        while master is not None and time.monotonic() < deadline:
            try:
                os.kill(master, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)


# --------------------------------------------------------------------------------------------
# Reporting

COLUMNS = (
    ("server", "{:<8}"),
    ("sent", "{:>6}"),
    ("accepted", "{:>8}"),
    ("elapsed_s", "{:>9.2f}"),
    ("msgs_per_s", "{:>10.1f}"),
    ("mb_per_s", "{:>8.2f}"),
    ("p50_ms", "{:>8.1f}"),
    ("p99_ms", "{:>8.1f}"),
    ("in_mailbox_s", "{:>12.2f}"),
    ("in_mailbox_msgs_per_s", "{:>10.1f}"),
    ("server_cpu_ms_per_msg", "{:>10.2f}"),
)
HEADINGS = (
    "server", "sent", "accepted", "elapsed s", "msgs/s", "MB/s", "p50 ms", "p99 ms",
    "in-mailbox s", "mbox msg/s", "srv CPU ms/msg",
)  # fmt: skip


def row_values(r: Round) -> dict[str, float | str | int]:
    values: dict[str, float | str | int] = asdict(r)
    values["server_cpu_ms_per_msg"] = r.server_cpu_s * 1000 / r.accepted if r.accepted else 0.0
    return values


def median_row(rounds: Sequence[Round]) -> dict[str, float | str | int]:
    rows = [row_values(r) for r in rounds]
    merged: dict[str, float | str | int] = {"server": rounds[0].server}
    for key, _ in COLUMNS[1:]:
        merged[key] = statistics.median(float(row[key]) for row in rows)
    return merged


def table(rows: Sequence[dict[str, float | str | int]]) -> str:
    widths = [max(len(h), len(fmt.format(0 if i else ""))) for i, (h, (_, fmt)) in
              enumerate(zip(HEADINGS, COLUMNS, strict=True))]  # fmt: skip
    lines = ["| " + " | ".join(h.rjust(w) for h, w in zip(HEADINGS, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|")
    for row in rows:
        cells = []
        for (key, fmt), width in zip(COLUMNS, widths, strict=True):
            value = row[key]
            if key in ("sent", "accepted"):
                value = round(float(value))
            cells.append(fmt.format(value).strip().rjust(width))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine() -> dict[str, str]:
    postfix = postfix_version() if POSTFIX.exists() else "not installed"
    return host_facts() | {"postfix": postfix, "enclave": enclave_revision()}


# --------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent SMTP clients (8)")
    parser.add_argument("--messages", type=int, default=2000, help="messages per round (2000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server (3)")
    parser.add_argument("--only", choices=("enclave", "postfix"), help="benchmark one server")
    parser.add_argument("--users", type=int, default=4, help="local recipients (4)")
    parser.add_argument("--warmup", type=int, default=40,
                        help="untimed messages sent to each fresh server first (40)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=20240101, help="message set seed")
    parser.add_argument("--smoke", action="store_true",
                        help="2 clients, 20 messages, 1 round; Postfix only if usable")  # fmt: skip
    parser.add_argument("--deadline", type=float, default=900,
                        help="stop sending after this many seconds per round (900)")  # fmt: skip
    parser.add_argument("--workdir", type=Path, help="parent of the temporary directory")
    parser.add_argument("--enclave-src", type=Path,
                        help="run Enclave from this source tree (put first on PYTHONPATH), e.g. "
                        "a `git archive HEAD src` snapshot, instead of the installed checkout")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the deployments afterwards")
    parser.add_argument("--json", type=Path, help="also write every round's figures here")
    parser.add_argument("--profile", type=Path,
                        help="record each Enclave round with py-spy (collapsed stacks, per thread and "
                             "process) into this dir; more py-spy options in "
                             "$SMTP_INGEST_PY_SPY_ARGS, e.g. --gil")  # fmt: skip
    args = parser.parse_args(argv)
    if args.smoke:
        args.clients, args.messages, args.rounds = 2, 20, 1
        args.warmup, args.users = min(args.warmup, 4), min(args.users, 2)
    if min(args.clients, args.messages, args.rounds, args.users) < 1:
        parser.error("--clients, --messages, --rounds and --users must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not use_enclave_src(args.enclave_src):
        return 2
    servers = ["enclave", "postfix"] if args.only is None else [args.only]
    if "postfix" in servers and (problem := postfix_problem()) is not None:
        if args.smoke and args.only is None:
            print(f"note: skipping Postfix. {problem}\n")
            servers = ["enclave"]
        else:
            print(problem, file=sys.stderr)
            return 2
    users = [f"user{i + 1}" for i in range(args.users)]
    info = machine()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    print(
        f"run: {args.clients} clients, {args.messages} messages, {args.rounds} round(s), "
        f"{args.warmup} warm-up, seed {args.seed}, servers {', '.join(servers)}"
    )
    begin = time.perf_counter()
    messages = make_messages(args.messages, args.seed, users)
    volume = sum(len(m.data) for m in messages)
    kinds = {kind: sum(1 for m in messages if m.kind == kind) for kind, _ in MIX}
    print(
        f"message set: {volume / MB:.1f} MB, mean {volume / len(messages) / 1024:.1f} KiB; "
        + ", ".join(f"{n} {kind}" for kind, n in kinds.items())
        + f" (built in {time.perf_counter() - begin:.1f}s)"
    )
    warmup = make_messages(args.warmup, args.seed + 1, users) if args.warmup else []
    load = Load(messages, warmup, args.clients, args.deadline)
    work = Path(tempfile.mkdtemp(prefix="smtp-ingest-", dir=args.workdir))
    os.chmod(work, 0o755)  # noqa: S103 (Postfix's unprivileged daemons enter it)
    rounds: list[Round] = []
    ok = True
    dns = LoopbackDns()
    try:
        targets: dict[str, Enclave | Postfix] = {}
        if "enclave" in servers:
            enclave = Enclave(work, users, dns, args.profile)
            begin = time.perf_counter()
            enclave.prepare()
            print(f"enclave deployment prepared with the CLI in {time.perf_counter() - begin:.1f}s")
            targets["enclave"] = enclave
        if "postfix" in servers:
            targets["postfix"] = Postfix(work, users)
        print()
        for number in range(1, args.rounds + 1):
            order = servers if number % 2 else servers[::-1]  # alternate who goes first
            for name in order:
                load_before = os.getloadavg()[0]
                result = targets[name].run(number, load)
                result.load_before, result.load_after = load_before, os.getloadavg()[0]
                rounds.append(result)
                problems = []
                if result.accepted != result.sent or result.sent != len(messages):
                    problems.append(f"accepted {result.accepted}/{len(messages)}")
                if result.failures:
                    problems.append(f"failures {result.failures}")
                if result.stored != result.accepted:
                    problems.append(f"stored {result.stored} != accepted {result.accepted}")
                ok = ok and not problems
                print(
                    f"round {number} {name:<8} {result.accepted}/{result.sent} accepted in "
                    f"{result.elapsed_s:.2f}s = {result.msgs_per_s:.1f} msg/s, "
                    f"{result.mb_per_s:.2f} MB/s, p50 {result.p50_ms:.1f} ms, "
                    f"p99 {result.p99_ms:.1f} ms; all in mailboxes after "
                    f"{result.in_mailbox_s:.2f}s; CPU server {result.server_cpu_s:.1f}s, "
                    f"client {result.client_cpu_s:.1f}s"
                    + (f"; {result.dns_queries} DNS lookups" if result.dns_queries else "")
                    + f"; load {result.load_before:.1f} -> {result.load_after:.1f}"
                    + ("  PROBLEM: " + "; ".join(problems) if problems else ""),
                    flush=True,
                )
    finally:
        dns.close()
        if args.keep:
            print(f"\nkept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if not rounds:
        return 1
    print(f"\nPer round ({args.clients} clients, {args.messages} messages):\n")
    print(table([row_values(r) for r in rounds]))
    medians = {name: median_row([r for r in rounds if r.server == name]) for name in servers}
    print(f"\nMedians over {args.rounds} round(s):\n")
    print(table(list(medians.values())))
    if len(medians) == 2:
        e, p = medians["enclave"], medians["postfix"]

        def ratio(key: str) -> str:
            mine, theirs = float(e[key]), float(p[key])
            return f"{mine / theirs:.3g}x" if theirs else "n/a"

        print(
            f"\nEnclave/Postfix: accepted msgs/s {ratio('msgs_per_s')}, "
            f"into mailboxes msgs/s {ratio('in_mailbox_msgs_per_s')}, "
            f"p50 latency {ratio('p50_ms')}, p99 latency {ratio('p99_ms')}, "
            f"server CPU per message {ratio('server_cpu_ms_per_msg')}"
        )
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "machine": info,
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "rounds": [asdict(r) for r in rounds],
                    "medians": medians,
                },
                indent=2,
            )
        )
    if (revision := enclave_revision()) != info["enclave"]:
        print(f"\nWARNING: the Enclave checkout changed during the run: now {revision}")
    print("\nOK: every message accepted and stored" if ok else "\nFAILED: see PROBLEM above")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
