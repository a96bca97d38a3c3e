#!/usr/bin/env python3
"""IMAP benchmark: Enclave's IMAP listener side by side with an isolated Dovecot.

A mailbox of N distinct generated messages (seeded mix of small text, multipart and
attachments) is put into a throwaway Enclave deployment (in-process, through the real store API
``MailStore.deliver``, which APPEND and SMTP delivery use, before the server starts) and
straight into a throwaway Dovecot instance's Maildir (Dovecot indexes it during an untimed
warm-up session). Dovecot's test password is an ARGON2ID hash by default, like Enclave's. Then C
concurrent imaplib clients each run the same workload against each server:

    login, SELECT INBOX, FETCH 1:* (UID FLAGS ENVELOPE), 50 x UID FETCH n BODY.PEEK[],
    20 x UID STORE n +FLAGS (\\Flagged), UID SEARCH FLAGGED, UID SEARCH SUBJECT "invoice",
    an IDLE round trip (IDLE, "+", DONE, OK), LOGOUT

and the script reports ops/s and p50/p99 latency per operation and the Enclave/Dovecot ratio.

It also measures how SELECT and a CONDSTORE resync grow with the mailbox size (``--scale``, up
to 100,000 messages), on one mailbox per size: after ``SELECT INBOX (CONDSTORE)`` and one flag
change, the time of ``SELECT INBOX (CONDSTORE)`` and of ``UID FETCH 1:* (FLAGS) (CHANGEDSINCE
m)``, each alone and their sum (the resync). Those mailboxes hold the first ``--scale-base``
(1,000) distinct messages, doubled until the size is reached (message j is a copy of message
j mod base): in Enclave with ``Mailboxes.copy`` into the same mailbox (IMAP COPY's store call,
5,000 UIDs per transaction, the content stored once), in Dovecot with hard links in the
Maildir (what Dovecot's own COPY does). UIDs are checked to be 1..size on both servers.

    .venv/bin/python bench/imap_bench.py                 # 10,000 messages, 4 clients, 3 rounds
    .venv/bin/python bench/imap_bench.py --smoke         # 200 messages, 1 client, 1 round
    .venv/bin/python bench/imap_bench.py --only enclave  # no Dovecot, no root needed
    .venv/bin/python bench/imap_bench.py --scale 1000,10000,100000

Enclave is reached with STARTTLS (it refuses LOGIN without it), Dovecot with plain IMAP on
loopback (ssl = no). Nothing leaves loopback.
"""

# ruff: noqa: S603

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import imaplib
import json
import os
import random
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from benchlib import (
    ENCLAVE_SRC,
    _b64,
    enclave_command,
    enclave_env,
    enclave_revision,
    free_port,
    host_facts,
    log_complaints,
    percentile,
    run_quiet,
    serve_command,
    serve_ports,
    stop_process,
    tree_cpu_seconds,
    use_enclave_src,
)

# Populating and starting servers can be slow on a loaded machine.
run_quiet = functools.partial(run_quiet, timeout=300)

HOST = "127.0.0.1"
DOMAIN = "bench.test"
PASSWORD = "imap-bench-password-1"  # noqa: S105 (a throwaway test account)
DOVECOT = Path("/usr/sbin/dovecot")
INSTALL_HINT = (
    "Dovecot is not installed (/usr/sbin/dovecot is missing). Install it with\n"
    "    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y dovecot-imapd\n"
    "(the package's system instance is not used), or run with --only enclave."
)
OPS = ("login", "select", "fetch_all", "fetch_body", "store", "search_flag", "search_subject",
       "idle", "logout")  # fmt: skip
BODY_FETCHES, STORES = 50, 20
COPY_CHUNK = 5_000  # UIDs per Mailboxes.copy call (one transaction) when filling a mailbox

# --------------------------------------------------------------------------------------------
# The message set


@dataclass(frozen=True)
class Mail:
    kind: str
    data: bytes
    seen: bool
    when: datetime


# Smaller than the SMTP benchmark's mix: a mailbox, not an ingest stream. Mean ~16 KiB.
MIX = (("text", 0.70), ("multipart", 0.25), ("attachment", 0.05))
WORDS = (
    "the of and to in is that for it as was with be by on not he this are or his from at "
    "which but have an they you were her she there one all we their can has been if more "
    "when will would who so no meeting report budget quarter draft attached please review "
    "schedule agenda minutes project milestone deadline contract customer release "
    "server database security audit compliance tenant policy update thanks regards"
).split()
SUBJECTS = ("Status update", "Meeting notes", "Quarterly report", "Re: draft contract",
            "Release schedule", "Audit findings", "Lunch?", "Project milestone")  # fmt: skip
SEARCH_WORD = "invoice"  # in the subject of ~5 % of the messages


def _text(rng: random.Random, size: int) -> str:
    lines: list[str] = []
    total = 0
    while total < size:
        line = " ".join(rng.choices(WORDS, k=rng.randint(8, 13)))[:72]
        lines.append(line)
        total += len(line) + 2
    return "\r\n".join(lines) + "\r\n"


def make_message(rng: random.Random, index: int, seed: int, kind: str) -> Mail:
    when = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=17 * index)
    sender = rng.choice(("alice", "bob", "carol", "dave", "erin", "frank"))
    subject = f"Invoice {index} due" if rng.random() < 0.05 else rng.choice(SUBJECTS)
    head = [
        f'From: "{sender.title()} Example" <{sender}@remote.example>',
        f"To: <user@{DOMAIN}>",
        f"Subject: {subject}",
        f"Date: {format_datetime(when)}",
        f"Message-ID: <{seed}.{index}@bench.invalid>",
        "MIME-Version: 1.0",
    ]
    if kind == "text":
        head += ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 7bit"]
        text = "\r\n".join(head) + "\r\n\r\n" + _text(rng, rng.randint(1024, 6 * 1024))
    else:
        if kind == "multipart":
            body, size, name, ctype = rng.randint(1024, 4096), rng.randint(15_000, 30_000), \
                "scan.pdf", "application/pdf"  # fmt: skip
        else:
            body, size, name, ctype = rng.randint(512, 2048), rng.randint(120_000, 200_000), \
                "photos.zip", "application/zip"  # fmt: skip
        boundary = f"=_bench_{seed}_{index}"
        head.append(f'Content-Type: multipart/mixed; boundary="{boundary}"')
        text = (
            "\r\n".join(head)
            + "\r\n\r\nThis is a multi-part message in MIME format.\r\n"
            + f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            + _text(rng, body)
            + f"--{boundary}\r\n"
            + f'Content-Type: {ctype}; name="{name}"\r\n'
            + f'Content-Disposition: attachment; filename="{name}"\r\n'
            + "Content-Transfer-Encoding: base64\r\n\r\n"
            + _b64(rng.randbytes(size))
            + f"--{boundary}--\r\n"
        )
    return Mail(kind, text.encode("ascii"), seen=rng.random() < 0.7, when=when)


def make_messages(count: int, seed: int) -> list[Mail]:
    rng = random.Random(seed)
    kinds: list[str] = []
    for kind, share in MIX[1:]:
        kinds += [kind] * round(count * share)
    kinds = [MIX[0][0]] * (count - len(kinds)) + kinds
    rng.shuffle(kinds)
    return [make_message(rng, i, seed, kind) for i, kind in enumerate(kinds)]


# --------------------------------------------------------------------------------------------
# Helpers (copied from smtp_ingest.py's approach)


def wait_for_imap(port: int, timeout: float, alive: Callable[[], bool]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError("server exited during start-up")
        try:
            with socket.create_connection((HOST, port), timeout=2) as sock:
                if sock.recv(200).startswith(b"* OK"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"nothing answered IMAP on {HOST}:{port} within {timeout:.0f}s")


# --------------------------------------------------------------------------------------------
# Servers


def user_for(size: int) -> str:
    return f"box{size}@{DOMAIN}"


class Enclave:
    name = "enclave"

    def __init__(self, work: Path) -> None:
        self.data = work / "enclave"
        self.command = str(enclave_command())
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.dns_port = free_port()  # nothing listens there: IMAP does no DNS
        self.ports: dict[str, int] = {}  # listener -> port, for those chosen before start

    def env(self) -> dict[str, str]:
        return enclave_env(self.dns_port)

    def cli(self, *args: str, stdin: str | None = None) -> None:
        run_quiet([self.command, *args, "--data", str(self.data)], env=self.env(), input=stdin)

    def populate(self, boxes: Mapping[int, Sequence[Mail]]) -> dict[str, float]:
        """``boxes``: mailbox size -> its distinct messages (a prefix of the message set);
        a mailbox with fewer distinct messages than its size is filled up by COPY."""
        self.cli("init", "--hostname", "mx.enclave-bench.test")
        self.cli("tenant", "create", "bench", "--domain", DOMAIN)
        with ThreadPoolExecutor(max_workers=2) as pool:  # mostly interpreter start-up, argon2
            for done in [pool.submit(self.cli, "user", "add", user_for(size), "--password-stdin",
                                     stdin=PASSWORD + "\n") for size in boxes]:  # fmt: skip
                done.result()
        return asyncio.run(self._fill(boxes))

    async def _fill(self, boxes: Mapping[int, Sequence[Mail]]) -> dict[str, float]:
        """Deliver through the real store (``MailStore.deliver``, what SMTP delivery and APPEND
        use): message i goes to every mailbox holding more than i distinct messages at once
        (stored once, one INBOX row per user), in order, eight deliveries in flight. Then
        double each mailbox that is still short with ``Mailboxes.copy`` into itself (IMAP
        COPY's store call: rows only, the content is shared) until it has its size."""
        if ENCLAVE_SRC:
            sys.path.insert(0, str(ENCLAVE_SRC[0]))
        from enclave.app import open_services  # the project's venv
        from enclave.config import load_settings

        settings = load_settings(self.data, self.env())
        async with open_services(settings) as svc:
            principals = {size: await svc.auth.login_protocol(user_for(size), PASSWORD)
                          for size in boxes}  # fmt: skip
            tenant = next(iter(principals.values())).tenant_id
            assert tenant is not None
            mails = max(boxes.values(), key=len)
            gate = asyncio.Semaphore(8)

            async def one(index: int) -> None:
                mail = mails[index]
                users = [principals[size].id for size in boxes if index < len(boxes[size])]
                async with gate:
                    await svc.mail_store.deliver(
                        tenant, users, mail.data, flags=("\\Seen",) if mail.seen else (),
                        internal_date=mail.when,
                    )  # fmt: skip

            begin = time.perf_counter()
            for start in range(0, len(mails), 64):  # batches keep UIDs in list order
                await asyncio.gather(*(one(i) for i in range(start, min(start + 64, len(mails)))))
            delivered = time.perf_counter() - begin
            copied = 0
            for size, distinct in boxes.items():
                principal = principals[size]
                box = await svc.mailboxes.get(principal, "INBOX")
                count = len(distinct)
                while count < size:  # double, trimming the last step to the size
                    todo = min(count, size - count)
                    for first in range(1, todo + 1, COPY_CHUNK):
                        uids = list(range(first, min(first + COPY_CHUNK, todo + 1)))
                        _, source, new = await svc.mailboxes.copy(
                            principal, box.id, uids, "INBOX", move=False
                        )
                        if source != uids or new != list(range(count + 1, count + len(uids) + 1)):
                            raise RuntimeError(f"{user_for(size)}: COPY {first}:{uids[-1]} "
                                               f"gave UIDs {new[:3]}..., after {count}")  # fmt: skip
                        count += len(uids)
                        copied += len(uids)
                _, states = await svc.mailboxes.state(principal, box.id)
                uids = [state.uid for state in states]
                if uids != list(range(1, size + 1)):
                    raise RuntimeError(f"{user_for(size)}: {len(uids)} messages, UIDs "
                                       f"{uids[:1]}..{uids[-1:]}; expected 1..{size}")  # fmt: skip
            filled = time.perf_counter() - begin - delivered
            # What the server's index worker would do in the background, done before timing.
            indexing = time.perf_counter()
            await svc.index_queue.run_pending()
            indexed = time.perf_counter() - indexing
        return {"distinct": len(mails), "rows": sum(len(d) for d in boxes.values()),
                "store_s": delivered, "filled": copied, "fill_s": filled,
                "index_s": indexed}  # fmt: skip

    def start(self) -> None:
        self.ports = serve_ports(**self.ports)
        self.port, http = self.ports["imap"], self.ports["http"]
        self.log = (self.data / "serve.log").open("ab")
        self.process = subprocess.Popen(
            serve_command(self.command, self.data, self.ports),
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env(),
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"enclave serve exited; see {self.data}/serve.log")
            with contextlib.suppress(urllib.error.URLError, OSError):
                with urllib.request.urlopen(f"http://{HOST}:{http}/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            time.sleep(0.1)
        wait_for_imap(
            self.port, 30, lambda: self.process is not None and self.process.poll() is None
        )
        self.context = ssl.create_default_context(cafile=str(self.data / "tls" / "cert.pem"))

    def connect(self, user: str) -> imaplib.IMAP4:
        client = imaplib.IMAP4("localhost", self.port, timeout=300)
        client.starttls(ssl_context=self.context)
        client.login(user, PASSWORD)
        return client

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> int:
        if self.process is None:
            return 0
        code = stop_process(self.process)
        self.log.close()
        return code


DOVECOT_CONF = """\
# Throwaway instance for bench/imap_bench.py: loopback only, no TLS, its own directories.
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = {host}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = dovenull
default_internal_user = dovecot
mail_location = maildir:~/Maildir
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%n
}}
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
protocol imap {{
  mail_max_userip_connections = 100
}}
"""


class Dovecot:
    name = "dovecot"

    def __init__(self, work: Path, scheme: str = "ARGON2ID") -> None:
        self.root = work / "dovecot"
        self.scheme = scheme
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.uid, self.gid = 65534, 65534  # nobody:nogroup

    def populate(self, boxes: Mapping[int, Sequence[Mail]]) -> dict[str, float]:
        """Straight into each user's Maildir/cur, \\Seen as the ":2,S" suffix; a mailbox with
        fewer distinct messages than its size is filled up with hard links to its files (as
        Dovecot's COPY within a Maildir does), message j to message j mod distinct."""
        for sub in ("run", "state", "home"):
            (self.root / sub).mkdir(parents=True)
        secret = f"{{PLAIN}}{PASSWORD}"
        if self.scheme != "PLAIN":  # the same argon2id cost as Enclave's (m=64 MiB, t=3)
            secret = run_quiet(["doveadm", "pw", "-s", self.scheme, "-p", PASSWORD]).stdout.strip()
        (self.root / "passwd").write_text("".join(f"{user_for(size)}:{secret}\n" for size in boxes))
        begin = time.perf_counter()
        linking = 0.0
        for size, mails in boxes.items():
            maildir = self.root / "home" / user_for(size).partition("@")[0] / "Maildir"
            for sub in ("cur", "new", "tmp"):
                (maildir / sub).mkdir(parents=True)

            def name(i: int, mail: Mail) -> str:
                stamp = int(mail.when.timestamp())
                return f"{stamp}.M{i}P1.bench,S={len(mail.data)}:2,{'S' if mail.seen else ''}"

            for i, mail in enumerate(mails):
                path = maildir / "cur" / name(i, mail)
                path.write_bytes(mail.data)
                stamp = int(mail.when.timestamp())
                os.utime(path, (stamp, stamp))
            os.chown(maildir / "cur", self.uid, self.gid)
            for path in (maildir / "cur").iterdir():  # the links share these inodes
                os.chown(path, self.uid, self.gid)
            started = time.perf_counter()
            for j in range(len(mails), size):
                source = mails[j % len(mails)]
                os.link(maildir / "cur" / name(j % len(mails), source),
                        maildir / "cur" / name(j, source))  # fmt: skip
            linking += time.perf_counter() - started
        for dirpath, _dirs, _files in os.walk(self.root / "home"):
            os.chown(dirpath, self.uid, self.gid)
        return {"distinct": max(len(m) for m in boxes.values()),
                "rows": sum(len(m) for m in boxes.values()),
                "store_s": time.perf_counter() - begin - linking,
                "filled": sum(size - len(m) for size, m in boxes.items()), "fill_s": linking}  # fmt: skip

    def start(self) -> None:
        self.port = free_port()
        conf = self.root / "dovecot.conf"
        conf.write_text(
            DOVECOT_CONF.format(
                root=self.root, host=HOST, port=self.port, uid=self.uid, gid=self.gid
            )
        )
        os.chmod(self.root, 0o755)  # noqa: S103
        self.process = subprocess.Popen(
            [str(DOVECOT), "-F", "-c", str(conf)],
            stdout=subprocess.DEVNULL, stderr=(self.root / "stderr.log").open("ab"),
        )  # fmt: skip
        wait_for_imap(
            self.port, 30, lambda: self.process is not None and self.process.poll() is None
        )

    def connect(self, user: str) -> imaplib.IMAP4:
        client = imaplib.IMAP4(HOST, self.port, timeout=300)
        client.login(user, PASSWORD)
        return client

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> int:
        if self.process is None:
            return 0
        return stop_process(self.process)


Server = Enclave | Dovecot

# --------------------------------------------------------------------------------------------
# The workload


def check(reply: tuple[str, list[object]], what: str) -> list[object]:
    typ, data = reply
    if typ != "OK":
        raise RuntimeError(f"{what}: {typ} {data}")
    return data


def idle_round_trip(client: imaplib.IMAP4) -> None:
    tag = client._new_tag()  # type: ignore[attr-defined]
    client.send(tag + b" IDLE\r\n")
    while not client.readline().startswith(b"+"):
        pass
    client.send(b"DONE\r\n")
    while True:
        line = client.readline()
        if not line:
            raise RuntimeError("IDLE: connection closed")
        if line.startswith(tag):
            if b" OK" not in line:
                raise RuntimeError(f"IDLE: {line!r}")
            return


def session(server: Server, user: str, seed: int, times: dict[str, list[float]]) -> int:
    """One client's workload; returns how many messages FETCH 1:* listed."""
    rng = random.Random(seed)

    def timed(op: str, call: Callable[[], object]) -> object:
        begin = time.perf_counter()
        result = call()
        times[op].append(time.perf_counter() - begin)
        return result

    client = timed("login", lambda: server.connect(user))
    assert isinstance(client, imaplib.IMAP4)
    timed("select", lambda: check(client.select("INBOX"), "SELECT"))
    listing = timed("fetch_all", lambda: check(client.fetch("1:*", "(UID FLAGS ENVELOPE)"),
                                               "FETCH 1:*"))  # fmt: skip
    # Distinct: another client's STORE may add an unsolicited FETCH (FLAGS) for a message
    # already listed, which imaplib files among this command's answers (RFC 3501 7.4.2).
    uids = sorted({int(m.group(1)) for item in listing  # type: ignore[union-attr]
                   if (m := re.search(rb"UID (\d+)", item[0] if isinstance(item, tuple) else item))})  # fmt: skip
    for uid in rng.sample(uids, min(BODY_FETCHES, len(uids))):
        data = timed("fetch_body", lambda u=uid: check(client.uid("FETCH", str(u), "(BODY.PEEK[])"),
                                                      "UID FETCH BODY"))  # fmt: skip
        if not data or not isinstance(data[0], tuple) or len(data[0][1]) < 100:
            raise RuntimeError(f"UID FETCH {uid} BODY.PEEK[]: no body")
    for uid in rng.sample(uids, min(STORES, len(uids))):
        timed("store", lambda u=uid: check(client.uid("STORE", str(u), "+FLAGS", "(\\Flagged)"),
                                           "UID STORE"))  # fmt: skip
    timed("search_flag", lambda: check(client.uid("SEARCH", "FLAGGED"), "SEARCH FLAGGED"))
    timed("search_subject", lambda: check(client.uid("SEARCH", "SUBJECT", SEARCH_WORD),
                                          "SEARCH SUBJECT"))  # fmt: skip
    timed("idle", lambda: idle_round_trip(client))
    timed("logout", client.logout)
    return len(uids)


@dataclass
class Round:
    server: str
    round: int
    clients: int
    elapsed_s: float
    listed: list[int]
    times: dict[str, list[float]]
    server_cpu_s: float
    client_cpu_s: float
    load_before: float
    load_after: float
    errors: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for op in OPS:
            values = self.times[op]
            busy = sum(values)
            out[op] = {
                "count": len(values),
                # the rate the C clients reach while doing this operation
                "ops_per_s": len(values) * self.clients / busy if busy else 0.0,
                "p50_ms": percentile(values, 50) * 1000,
                "p99_ms": percentile(values, 99) * 1000,
            }
        total = sum(len(v) for v in self.times.values())
        out["all"] = {"count": total, "ops_per_s": total / self.elapsed_s if self.elapsed_s else 0,
                      "p50_ms": float("nan"), "p99_ms": float("nan")}  # fmt: skip
        return out


def run_round(server: Server, number: int, clients: int, size: int, seed: int) -> Round:
    times: dict[str, list[float]] = {op: [] for op in OPS}
    per_client = [{op: [] for op in OPS} for _ in range(clients)]  # type: ignore[misc]
    listed: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        try:
            count = session(server, user_for(size), seed * 1000 + number * 100 + index,
                            per_client[index])  # fmt: skip
            with lock:
                listed.append(count)
        except Exception as exc:
            with lock:
                errors.append(f"client {index}: {type(exc).__name__}: {exc}")

    load_before = os.getloadavg()[0]
    cpu0, client0 = tree_cpu_seconds(server.pid), time.process_time()
    begin = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - begin
    for one in per_client:
        for op, values in one.items():
            times[op] += values
    return Round(server.name, number, clients, elapsed, listed, times,
                 tree_cpu_seconds(server.pid) - cpu0, time.process_time() - client0,
                 load_before, os.getloadavg()[0], errors)  # fmt: skip


def scaling(server: Server, size: int, repeats: int, seed: int) -> dict[str, float]:
    """Medians for one mailbox size: a plain SELECT, and the two parts of a CONDSTORE resync
    after one flag change (SELECT INBOX (CONDSTORE), UID FETCH 1:* (FLAGS) (CHANGEDSINCE m))
    and their sum."""
    rng = random.Random(seed + size)
    client = server.connect(user_for(size))
    times: dict[str, list[float]] = {"select": [], "condstore_select": [], "changedsince": [],
                                     "resync": []}  # fmt: skip

    def select_condstore() -> None:
        client.untagged_responses.clear()
        check(client._simple_command("SELECT", "INBOX", "(CONDSTORE)"), "SELECT CONDSTORE")  # type: ignore[attr-defined]
        client.state = "SELECTED"

    try:
        for _ in range(repeats):
            begin = time.perf_counter()
            check(client.select("INBOX"), "SELECT")
            times["select"].append(time.perf_counter() - begin)
            select_condstore()
            modseq = int(client.untagged_responses["HIGHESTMODSEQ"][-1])
            uid = rng.randint(1, size)
            check(client.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Answered)"), "STORE")
            begin = time.perf_counter()
            select_condstore()
            selected = time.perf_counter()
            data = check(client.uid("FETCH", "1:*", "(FLAGS)", f"(CHANGEDSINCE {modseq})"),
                         "UID FETCH CHANGEDSINCE")  # fmt: skip
            end = time.perf_counter()
            times["condstore_select"].append(selected - begin)
            times["changedsince"].append(end - selected)
            times["resync"].append(end - begin)
            changed = [d for d in data if d]
            if len(changed) != 1:
                raise RuntimeError(f"CHANGEDSINCE {modseq}: {len(changed)} changes, expected 1")
    finally:
        with contextlib.suppress(Exception):
            client.logout()
    return {f"{part}_ms": statistics.median(values) * 1000 for part, values in times.items()}


def warm_up(server: Server, size: int) -> None:
    """SELECT and FETCH 1:* (UID FLAGS) (Dovecot builds its index files here); the mailbox
    must hold exactly UIDs 1..size."""
    client = server.connect(user_for(size))
    try:
        reply = check(client.select("INBOX"), "SELECT")[0]
        exists = int(reply) if isinstance(reply, bytes) else -1
        listing = check(client.fetch("1:*", "(UID FLAGS)"), "FETCH")
        uids = [int(m.group(1)) for item in listing
                if (m := re.search(rb"UID (\d+)", item if isinstance(item, bytes) else b""))]  # fmt: skip
        if exists != size or uids != list(range(1, size + 1)):
            raise RuntimeError(f"{server.name} {user_for(size)}: EXISTS {exists}, {len(uids)} "
                               f"UIDs listed; expected 1..{size}")  # fmt: skip
    finally:
        with contextlib.suppress(Exception):
            client.logout()


# --------------------------------------------------------------------------------------------
# Reporting


def machine() -> dict[str, str]:
    dovecot = "not installed"
    if DOVECOT.exists():
        with contextlib.suppress(OSError, RuntimeError):
            dovecot = run_quiet([str(DOVECOT), "--version"]).stdout.strip()
    return host_facts() | {"dovecot": dovecot, "enclave": enclave_revision()}


def fmt(value: float) -> str:
    return "n/a" if value != value else f"{value:.3g}" if value < 100 else f"{value:.0f}"


def op_table(medians: dict[str, dict[str, dict[str, float]]]) -> str:
    servers = list(medians)
    head = ["op"]
    for s in servers:
        head += [f"{s} ops/s", f"{s} p50 ms", f"{s} p99 ms"]
    if len(servers) == 2:
        head += ["ops/s ratio E/D", "p50 ratio E/D"]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for op in (*OPS, "all"):
        cells = [op]
        for s in servers:
            m = medians[s][op]
            cells += [fmt(m["ops_per_s"]), fmt(m["p50_ms"]), fmt(m["p99_ms"])]
        if len(servers) == 2:
            e, d = medians["enclave"][op], medians["dovecot"][op]
            cells.append(fmt(e["ops_per_s"] / d["ops_per_s"]) if d["ops_per_s"] else "n/a")
            cells.append(fmt(e["p50_ms"] / d["p50_ms"]) if d["p50_ms"] else "n/a")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


SCALE_PARTS = (("condstore_select_ms", "SELECT (CONDSTORE) ms"),
               ("changedsince_ms", "CHANGEDSINCE ms"), ("resync_ms", "resync ms"))  # fmt: skip


def scale_table(scale: dict[str, dict[int, dict[str, float]]], sizes: Sequence[int]) -> str:
    """Per size and server: the resync's SELECT, its CHANGEDSINCE fetch, their sum."""
    head = ["messages"] + [f"{name} {label}" for name in scale for _, label in SCALE_PARTS]
    lines = ["| " + " | ".join(head) + " |", "|---:" * len(head) + "|"]
    for size in sizes:
        cells = [f"{size:,}"]
        for name in scale:
            r = scale[name].get(size, {})
            cells += [fmt(r.get(key, float("nan"))) for key, _ in SCALE_PARTS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def median_summary(rounds: Sequence[Round]) -> dict[str, dict[str, float]]:
    summaries = [r.summary() for r in rounds]
    return {op: {key: statistics.median(s[op][key] for s in summaries)
                 for key in summaries[0][op]} for op in summaries[0]}  # fmt: skip


# --------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000, help="mailbox size (10000)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent IMAP clients (4)")
    parser.add_argument("--rounds", type=int, default=3, help="workload rounds per server (3)")
    parser.add_argument("--only", choices=("enclave", "dovecot"), help="benchmark one server")
    parser.add_argument("--scale", default="1000",
                        help="extra mailbox sizes for the SELECT/CONDSTORE growth test, comma "
                        "separated; --messages is always included (1000)")  # fmt: skip
    parser.add_argument("--scale-base", type=int, default=1000,
                        help="distinct messages in the --scale mailboxes; the rest are copies "
                        "(1000, at most --messages)")  # fmt: skip
    parser.add_argument("--scale-repeats", type=int, default=5, help="repeats per size (5)")
    parser.add_argument("--dovecot-scheme", choices=("ARGON2ID", "PLAIN"), default="ARGON2ID",
                        help="how Dovecot stores the test password (ARGON2ID, as Enclave)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=20240101, help="message set seed")
    parser.add_argument("--smoke", action="store_true",
                        help="200 messages, 1 client, 1 round; growth test on 200 and 1000")  # fmt: skip
    parser.add_argument("--workdir", type=Path, help="parent of the temporary directory")
    parser.add_argument("--enclave-src", type=Path,
                        help="run Enclave from this source tree (put first on the path), e.g. "
                        "a `git archive HEAD src` snapshot, instead of the installed checkout")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the deployments afterwards")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args(argv)
    if args.smoke:
        args.messages, args.clients, args.rounds = 200, 1, 1
        args.scale, args.scale_repeats = "1000", 2  # 200 distinct + 800 copies
    if min(args.messages, args.clients, args.rounds, args.scale_repeats, args.scale_base) < 1:
        parser.error("--messages, --clients, --rounds, --scale-repeats and --scale-base must be "
                     "at least 1")  # fmt: skip
    try:
        args.sizes = sorted({args.messages, *(int(s) for s in args.scale.split(",") if s.strip())})
    except ValueError:
        parser.error(f"--scale {args.scale}: comma-separated mailbox sizes expected")
    if args.sizes[0] < 1:
        parser.error("--scale sizes must be at least 1")
    return args


EXPECTED = re.compile(rb"Killed with signal 15")  # Dovecot's master on the script's SIGTERM


def load_text() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not use_enclave_src(args.enclave_src):
        return 2
    servers = ["enclave", "dovecot"] if args.only is None else [args.only]
    if "dovecot" in servers:
        problem = INSTALL_HINT if not DOVECOT.exists() else (
            "Dovecot's instance is started as root: run as root or use --only enclave."
            if os.geteuid() != 0 else None)  # fmt: skip
        if problem is not None:
            if args.smoke and args.only is None:
                print(f"note: skipping Dovecot. {problem}\n")
                servers = ["enclave"]
            else:
                print(problem, file=sys.stderr)
                return 2
    sizes: list[int] = args.sizes
    started, load_start = time.perf_counter(), load_text()
    info = machine()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    print(f"run: {args.messages} messages, {args.clients} clients, {args.rounds} round(s), "
          f"scale sizes {sizes} (base {min(args.scale_base, args.messages)}), seed {args.seed}, "
          f"servers {', '.join(servers)}; load averages 1/5/15 min {load_start}")  # fmt: skip
    begin = time.perf_counter()
    mails = make_messages(args.messages, args.seed)
    base = min(args.scale_base, args.messages)
    # The workload's mailbox holds every distinct message; the others a prefix of the set
    # (of at most `base` messages), filled up to their size with copies.
    boxes = {size: mails[: size if size == args.messages else min(size, base)] for size in sizes}
    volume = sum(len(m.data) for m in mails)
    print(f"message set: {args.messages} messages, {volume / 1e6:.1f} MB, mean "
          f"{volume / args.messages / 1024:.1f} KiB; built in {time.perf_counter() - begin:.1f}s")  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="imap-bench-", dir=args.workdir))
    os.chmod(work, 0o755)  # noqa: S103 (Dovecot's unprivileged processes enter it)
    targets: dict[str, Server] = {}
    rounds: list[Round] = []
    scale: dict[str, dict[int, dict[str, float]]] = {}
    prepared: dict[str, dict[str, float]] = {}
    ok = True
    try:
        for name in servers:
            target: Server = (
                Enclave(work) if name == "enclave" else Dovecot(work, args.dovecot_scheme)
            )
            load0 = os.getloadavg()[0]
            p = prepared[name] = target.populate(boxes)
            how = "delivered" if name == "enclave" else "written"
            fill = "COPY into the same mailbox" if name == "enclave" else "hard links"
            print(f"{name}: {p['rows']:.0f} rows of {p['distinct']:.0f} distinct messages {how} "
                  f"in {p['store_s']:.1f}s ({p['rows'] / p['store_s']:.0f}/s); "
                  f"{p['filled']:.0f} more by {fill} in {p['fill_s']:.1f}s; "
                  f"load {load0:.1f} -> {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
            begin = time.perf_counter()
            target.start()
            # Untimed warm-up: a full session on the workload's mailbox, a SELECT and FETCH on
            # every mailbox (Dovecot builds its index files here), which checks UIDs 1..size.
            session(target, user_for(args.messages), 1, {op: [] for op in OPS})
            for size in sizes:
                warm_up(target, size)
            p["warm_up_s"] = time.perf_counter() - begin
            print(f"{name}: started and warmed up in {p['warm_up_s']:.1f}s", flush=True)
            targets[name] = target
        print()
        for number in range(1, args.rounds + 1):
            order = servers if number % 2 else servers[::-1]
            for name in order:
                result = run_round(targets[name], number, args.clients, args.messages, args.seed)
                rounds.append(result)
                s = result.summary()
                problems = list(result.errors)
                if any(n != args.messages for n in result.listed):
                    problems.append(f"FETCH 1:* listed {result.listed}, expected {args.messages}")
                ok = ok and not problems
                print(f"round {number} {name:<8} {result.elapsed_s:.2f}s, "
                      f"{s['all']['ops_per_s']:.1f} ops/s; fetch_all p50 "
                      f"{s['fetch_all']['p50_ms']:.0f} ms, fetch_body p50 "
                      f"{s['fetch_body']['p50_ms']:.1f} ms, store p50 {s['store']['p50_ms']:.1f} ms;"
                      f" CPU server {result.server_cpu_s:.1f}s client {result.client_cpu_s:.1f}s;"
                      f" load {result.load_before:.1f} -> {result.load_after:.1f}"
                      + ("  PROBLEM: " + "; ".join(problems) if problems else ""), flush=True)  # fmt: skip
        print("\nSELECT / CONDSTORE resync growth (median of "
              f"{args.scale_repeats}, one client, idle server):")  # fmt: skip
        for name in servers:
            scale[name] = {}
            for size in sizes:
                try:
                    scale[name][size] = scaling(targets[name], size, args.scale_repeats, args.seed)
                except Exception as exc:
                    ok = False
                    print(f"  {name} {size}: PROBLEM {type(exc).__name__}: {exc}")
                    continue
                r = scale[name][size]
                print(f"  {name:<8} {size:>7} messages: SELECT {r['select_ms']:.1f} ms; resync "
                      f"{r['resync_ms']:.1f} ms = SELECT (CONDSTORE) "
                      f"{r['condstore_select_ms']:.1f} ms + UID FETCH CHANGEDSINCE "
                      f"{r['changedsince_ms']:.1f} ms (medians)", flush=True)  # fmt: skip
        for name, target in targets.items():
            code = target.stop()
            if code != 0:
                ok = False
                print(f"PROBLEM: {name} exited {code} after SIGTERM")
    finally:
        for target in targets.values():
            with contextlib.suppress(Exception):
                target.stop()
        for line in log_complaints(
            work, ("enclave/serve.log", "dovecot/dovecot.log", "dovecot/stderr.log"), EXPECTED
        ):
            print(line)
        if args.keep:
            print(f"\nkept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if not rounds:
        return 1
    medians = {name: median_summary([r for r in rounds if r.server == name]) for name in servers}
    print(f"\nMedians over {args.rounds} round(s), {args.clients} clients, "
          f"{args.messages} messages (ops/s per op = count x clients / time spent in it):\n")  # fmt: skip
    print(op_table(medians))
    if scale:
        print(f"\nCONDSTORE resync after one flag change, median of {args.scale_repeats} "
              "(resync = median of the per-repeat sums):\n")  # fmt: skip
        print(scale_table(scale, sizes))
    took, load_end = time.perf_counter() - started, load_text()
    print(f"\nrun took {took / 60:.1f} min; load averages 1/5/15 min {load_start} at the start, "
          f"{load_end} at the end")  # fmt: skip
    if args.json is not None:
        args.json.write_text(json.dumps({
            "machine": info, "args": {k: str(v) for k, v in vars(args).items()},
            "populate": prepared,
            "rounds": [{**{k: v for k, v in vars(r).items() if k != "times"},
                        "summary": r.summary()} for r in rounds],
            "medians": medians, "scale": scale, "elapsed_s": took,
            "load_start": load_start, "load_end": load_end}, indent=2))  # fmt: skip
    if (revision := enclave_revision()) != info["enclave"]:
        print(f"\nWARNING: the Enclave checkout changed during the run: now {revision}")
    print("\nOK" if ok else "\nFAILED: see PROBLEM above")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
