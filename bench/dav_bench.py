#!/usr/bin/env python3
"""WebDAV benchmark: Enclave's /dav/ side by side with wsgidav's own filesystem provider.

One httpx client on loopback, requests one after another on one kept-alive connection, against
a throwaway Enclave deployment (``enclave serve``, Basic auth, every document encrypted and
fsynced, rows in SQLite) and a throwaway wsgidav serving a plain directory (its
``FilesystemProvider``, anonymous, no encryption), run with the same server stack Enclave's
DAV uses (uvicorn, a2wsgi with 16 worker threads, wsgidav 4, 64 KiB blocks). Per round:

    PUT and GET of 4 KiB and 1 MiB documents (new names each round), PUT and GET of a 100 MiB
    document (streamed both ways), PROPFIND Depth 1 on a folder of 10,000 documents,
    and full-text search (GET /api/search?q=..., Enclave only: wsgidav has none)

and then two concurrent parts, ``--connections`` clients (20) at once, one kept-alive
connection each: GETs of the round's 4 KiB documents, and a mix in which each client PUTs
a new 4 KiB document into a folder of its own, PROPFINDs that folder (Depth 1) and DELETEs
the document again. The script reports p50/p99 latency, MB/s and the Enclave/wsgidav ratio per
operation, and requests per second for the concurrent parts.

The 10,000 documents (~1-3 KiB of generated prose each, a few rare words for the searches)
are put into Enclave before the server starts, in-process through the core API
(``services.documents.write``, which is what a WebDAV PUT calls, then the search index worker),
because 10,000 WebDAV PUTs take several minutes; and straight into wsgidav's directory.

    .venv/bin/python bench/dav_bench.py                   # 10,000 documents, 3 rounds
    .venv/bin/python bench/dav_bench.py --smoke --only enclave   # CI: small sizes, < 1 min
    .venv/bin/python bench/dav_bench.py --only wsgidav

Nothing leaves loopback.
"""

# ruff: noqa: S603

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree

import httpx
from benchlib import (
    ENCLAVE_SRC,
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
    wait_for_http,
)

HOST = "127.0.0.1"
DOMAIN = "bench.test"
USER = f"dav@{DOMAIN}"
PASSWORD = "dav-bench-password-1"  # noqa: S105 (a throwaway test account)
MiB = 1024 * 1024
MB = 1_000_000  # MB/s in the tables is 10^6 bytes per second
FOLDER = "many"  # the folder of --documents documents
PROPFIND_BODY = (
    '<?xml version="1.0" encoding="utf-8"?><d:propfind xmlns:d="DAV:"><d:prop>'
    "<d:displayname/><d:resourcetype/><d:getcontentlength/><d:getcontenttype/>"
    "<d:getlastmodified/><d:getetag/></d:prop></d:propfind>"
)  # what a sync client (rclone, for one) asks for
WORDS = (
    "the of and to in is that for it as was with be by on not this are or from at which but "
    "have an they you were there one all we their can has been if more when will would who so "
    "meeting report budget quarter draft attached please review schedule agenda minutes "
    "project milestone deadline contract customer release server database security audit "
    "compliance tenant policy update thanks regards"
).split()
# Search queries: (label, query, expected hits or None for "at least one"). "zanzibar" is in
# every 1,000th document, "invoice" in every 100th, "serialNNNNNN" in exactly one.
RARE, COMMON = "zanzibar", "invoice"

# --------------------------------------------------------------------------------------------
# Documents


def document(index: int, rng: random.Random) -> bytes:
    words = rng.choices(WORDS, k=rng.randint(150, 450))
    if index % 100 == 0:
        words.insert(rng.randrange(len(words)), COMMON)
    if index % 1000 == 0:
        words.insert(rng.randrange(len(words)), RARE)
    words.insert(rng.randrange(len(words)), f"serial{index:06d}")
    lines = [" ".join(words[i : i + 12]) for i in range(0, len(words), 12)]
    return ("\n".join(lines) + "\n").encode()


def documents(count: int, seed: int) -> Iterator[tuple[str, bytes]]:
    rng = random.Random(seed)
    for index in range(count):
        yield f"note-{index:06d}.txt", document(index, rng)


def queries(count: int) -> list[tuple[str, str, int | None]]:
    unique = min(4217, count - 1)
    return [
        ("one word, 1 hit", f"serial{unique:06d}", 1),
        ("rare word", RARE, (count - 1) // 1000 + 1),
        ("common word, first 20", COMMON, min(20, (count - 1) // 100 + 1)),
        ("very common word, first 20", "budget", 20),
        ("two words", f"{COMMON} budget", None),
        ("prefix", "milest", None),
        ("no match", "nonexistentword", 0),
    ]


# --------------------------------------------------------------------------------------------
# Servers


class Enclave:
    name = "enclave"

    def __init__(self, work: Path) -> None:
        self.data = work / "enclave"
        self.command = str(enclave_command())
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.base = f"/dav/files/{USER}"
        self.auth: tuple[str, str] | None = (USER, PASSWORD)
        self.dns_port = free_port()  # nothing listens there: DAV does no DNS

    def env(self) -> dict[str, str]:
        return enclave_env(self.dns_port)

    def cli(self, *args: str, stdin: str | None = None) -> None:
        run_quiet([self.command, *args, "--data", str(self.data)], env=self.env(), input=stdin)

    def populate(self, count: int, seed: int) -> float:
        self.cli("init", "--hostname", "dav.enclave-bench.test")
        self.cli("tenant", "create", "bench", "--domain", DOMAIN)
        self.cli("user", "add", USER, "--password-stdin", stdin=PASSWORD + "\n")
        return asyncio.run(self._fill(count, seed))

    async def _fill(self, count: int, seed: int) -> float:
        """``services.documents.write`` (what a WebDAV PUT calls), 8 in flight."""
        if ENCLAVE_SRC:
            sys.path.insert(0, str(ENCLAVE_SRC[0]))
        from enclave.app import open_services  # the project's venv
        from enclave.config import load_settings

        settings = load_settings(self.data, self.env())
        async with open_services(settings) as svc:
            principal = await svc.auth.login_protocol(USER, PASSWORD)
            library = await svc.libraries.personal(principal)
            await svc.documents.make_folder(principal, library.id, FOLDER)
            gate = asyncio.Semaphore(8)

            async def one(name: str, data: bytes) -> None:
                async with gate:
                    await svc.documents.write(
                        principal, library.id, f"{FOLDER}/{name}", data, "text/plain"
                    )

            begin = time.perf_counter()
            batch: list[tuple[str, bytes]] = []
            for item in documents(count, seed):
                batch.append(item)
                if len(batch) == 64:
                    await asyncio.gather(*(one(n, d) for n, d in batch))
                    batch = []
            await asyncio.gather(*(one(n, d) for n, d in batch))
            # What the server's index worker would do in the background, done before timing
            # (counted in the fill time, as the old inline indexing was).
            await svc.index_queue.run_pending()
            return time.perf_counter() - begin

    def start(self) -> None:
        ports = serve_ports()
        self.port = ports["http"]
        self.log = (self.data / "serve.log").open("ab")
        self.process = subprocess.Popen(
            serve_command(self.command, self.data, ports),
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env(),
        )  # fmt: skip
        wait_for_http(f"http://{HOST}:{self.port}/healthz", self.process)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> int:
        if self.process is None:
            return 0
        code = stop_process(self.process)
        self.process = None
        self.log.close()
        return code


WSGIDAV_RUNNER = """\
import sys
import uvicorn
from a2wsgi import WSGIMiddleware
from wsgidav.fs_dav_provider import FilesystemProvider
from wsgidav.wsgidav_app import WsgiDAVApp

root, port = sys.argv[1], int(sys.argv[2])
app = WsgiDAVApp({
    "provider_mapping": {"/": FilesystemProvider(root, readonly=False)},
    "simple_dc": {"user_mapping": {"*": True}},  # anonymous
    "http_authenticator": {"accept_basic": True, "accept_digest": False,
                           "default_to_digest": False},
    "lock_storage": True, "property_manager": True, "block_size": 256 * 1024,
    "verbose": 1, "logging": {"enable": False}, "dir_browser": {"enable": False},
})
uvicorn.run(WSGIMiddleware(app, workers=16), host="127.0.0.1", port=port,
            log_level="warning", access_log=False)
"""


class WsgiDav:
    """wsgidav's FilesystemProvider on a directory, served like Enclave's DAV (uvicorn,
    a2wsgi, 16 threads), anonymous."""

    name = "wsgidav"

    def __init__(self, work: Path) -> None:
        self.root = work / "wsgidav" / "root"
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.base = ""
        self.auth: tuple[str, str] | None = None

    def populate(self, count: int, seed: int) -> float:
        folder = self.root / FOLDER
        folder.mkdir(parents=True)
        begin = time.perf_counter()
        for name, data in documents(count, seed):
            (folder / name).write_bytes(data)
        return time.perf_counter() - begin

    def start(self) -> None:
        import wsgidav  # noqa: F401 - fail early if the venv lacks it

        self.port = free_port()
        self.log = (self.root.parent / "serve.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-c", WSGIDAV_RUNNER, str(self.root), str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_http(f"http://{HOST}:{self.port}/", self.process, method="OPTIONS")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> int:
        """0 for a clean stop: uvicorn re-raises the SIGTERM it handled (exit -15)."""
        if self.process is None:
            return 0
        code = stop_process(self.process)
        self.process = None
        self.log.close()
        return 0 if code == -15 else code


Server = Enclave | WsgiDav


# --------------------------------------------------------------------------------------------
# The workload


@dataclass
class Round:
    server: str
    number: int
    times: dict[str, list[float]] = field(default_factory=dict)  # op -> seconds per call
    sizes: dict[str, int] = field(default_factory=dict)  # op -> bytes per call
    rates: dict[str, float] = field(default_factory=dict)  # op -> requests/s (concurrent parts)
    errors: list[str] = field(default_factory=list)
    server_cpu_s: float = 0.0
    load_before: float = 0.0
    load_after: float = 0.0
    search: str = "n/a"


def expect(reply: httpx.Response, codes: Sequence[int], what: str) -> None:
    if reply.status_code not in codes:
        raise RuntimeError(f"{what}: {reply.status_code} {reply.text[:300]}")


class Workload:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        rng = random.Random(args.seed)
        self.small = [rng.randbytes(4 * 1024) for _ in range(args.repeats)]
        self.medium = [rng.randbytes(MiB) for _ in range(args.repeats)]
        self.large = rng.randbytes(args.large_mib * MiB)
        self.large_sha = hashlib.sha256(self.large).hexdigest()

    def run(self, server: Server, number: int) -> Round:
        result = Round(server.name, number)
        result.load_before = os.getloadavg()[0]
        cpu0 = tree_cpu_seconds(server.pid)
        url = f"http://{HOST}:{server.port}"
        with httpx.Client(base_url=url, auth=server.auth, timeout=900) as client:
            try:
                self._files(client, server.base, number, result)
                self._propfind(client, server.base, result)
                self._concurrent(client, server, number, result)
                if server.name == "enclave" and not self.args.no_search:
                    result.search = self._search(url, result)
            except (RuntimeError, httpx.HTTPError) as exc:
                result.errors.append(f"{type(exc).__name__}: {exc}")
        result.server_cpu_s = tree_cpu_seconds(server.pid) - cpu0
        result.load_after = os.getloadavg()[0]
        return result

    @staticmethod
    def timed(result: Round, op: str, size: int, call: Callable[[], Any]) -> Any:
        begin = time.perf_counter()
        value = call()
        result.times.setdefault(op, []).append(time.perf_counter() - begin)
        result.sizes[op] = size
        return value

    def _files(self, client: httpx.Client, base: str, number: int, result: Round) -> None:
        folder = f"{base}/round-{number}"
        expect(client.request("MKCOL", folder), (201,), f"MKCOL {folder}")
        large_mib = self.args.large_mib
        for op, bodies in (("4k", self.small), ("1m", self.medium)):
            for index, body in enumerate(bodies):
                path = f"{folder}/{op}-{index}.bin"
                reply = self.timed(result, f"PUT {op}", len(body),
                                   lambda p=path, b=body: client.put(p, content=b))  # fmt: skip
                expect(reply, (201,), f"PUT {path}")
            for index, body in enumerate(bodies):
                path = f"{folder}/{op}-{index}.bin"
                reply = self.timed(result, f"GET {op}", len(body),
                                   lambda p=path: client.get(p))  # fmt: skip
                expect(reply, (200,), f"GET {path}")
                if reply.content != body:
                    raise RuntimeError(f"GET {path}: content differs")
        path = f"{folder}/large.bin"
        for index in range(self.args.large_repeats):
            reply = self.timed(result, f"PUT {large_mib}m", len(self.large),
                               lambda: client.put(path, content=self.large))  # fmt: skip
            expect(reply, (201, 204) if index else (201,), f"PUT {path}")

        def download() -> tuple[int, str]:
            digest, received = hashlib.sha256(), 0
            with client.stream("GET", path) as reply:
                expect(reply, (200,), f"GET {path}")
                for chunk in reply.iter_bytes(1024 * 1024):
                    digest.update(chunk)
                    received += len(chunk)
            return received, digest.hexdigest()

        for _ in range(self.args.large_repeats):
            got = self.timed(result, f"GET {large_mib}m", len(self.large), download)
            if got != (len(self.large), self.large_sha):
                raise RuntimeError(f"GET {path}: {got[0]} bytes, not the content put")

    def _propfind(self, client: httpx.Client, base: str, result: Round) -> None:
        path = f"{base}/{FOLDER}/"
        for _ in range(self.args.propfind_repeats):
            reply = self.timed(result, "PROPFIND 1", 0, lambda: client.request(
                "PROPFIND", path, content=PROPFIND_BODY,
                headers={"Depth": "1", "Content-Type": "application/xml"}))  # fmt: skip
            expect(reply, (207,), f"PROPFIND {path}")
            tree = ElementTree.fromstring(reply.content)  # noqa: S314 (our loopback servers)
            responses = tree.findall("{DAV:}response")
            if len(responses) != self.args.documents + 1:
                raise RuntimeError(f"PROPFIND {path}: {len(responses)} responses, expected "
                                   f"{self.args.documents + 1}")  # fmt: skip
            result.sizes["PROPFIND 1"] = len(reply.content)

    def _concurrent(self, client: httpx.Client, server: Server, number: int, result: Round) -> None:
        """The two concurrent parts: GETs of the round's 4 KiB documents, then the
        PUT/PROPFIND/DELETE mix, from ``--connections`` clients at once."""
        folder = f"{server.base}/round-{number}"
        mix = f"{folder}/mix"
        expect(client.request("MKCOL", mix), (201,), f"MKCOL {mix}")
        for index in range(self.args.connections):  # a folder each: wsgidav's filesystem
            # provider fails a listing (500) when a member goes while it lists
            expect(client.request("MKCOL", f"{mix}/c{index}"), (201,), f"MKCOL {mix}/c{index}")
        url = f"http://{HOST}:{server.port}"
        bodies = self.small

        def gets(index: int, http: httpx.Client, times: list[float]) -> int:
            for call in range(self.args.concurrent_requests):
                which = (index + call) % len(bodies)
                begin = time.perf_counter()
                reply = http.get(f"{folder}/4k-{which}.bin")
                times.append(time.perf_counter() - begin)
                expect(reply, (200,), f"GET {folder}/4k-{which}.bin")
                if reply.content != bodies[which]:
                    raise RuntimeError(f"GET {folder}/4k-{which}.bin: content differs")
            return self.args.concurrent_requests

        def mixed(index: int, http: httpx.Client, times: list[float]) -> int:
            calls = 0
            for call in range(max(1, self.args.concurrent_requests // 3)):
                path = f"{mix}/c{index}/{call}.bin"
                for method, target, codes in (
                    ("PUT", path, (201,)), ("PROPFIND", f"{mix}/c{index}/", (207,)),
                    ("DELETE", path, (204,)),
                ):  # fmt: skip
                    begin = time.perf_counter()
                    if method == "PUT":
                        reply = http.put(target, content=bodies[(index + call) % len(bodies)])
                    elif method == "PROPFIND":
                        reply = http.request(method, target, content=PROPFIND_BODY, headers={
                            "Depth": "1", "Content-Type": "application/xml"})  # fmt: skip
                    else:
                        reply = http.delete(target)
                    times.append(time.perf_counter() - begin)
                    expect(reply, codes, f"{method} {target}")
                    calls += 1
            return calls

        for op, work in ((f"GET 4k, {self.args.connections} conns", gets),
                         (f"mix PUT/PROPFIND/DELETE, {self.args.connections} conns", mixed)):  # fmt: skip
            self._together(url, server, op, work, result)

    def _together(
        self, url: str, server: Server, op: str,
        work: Callable[[int, httpx.Client, list[float]], int], result: Round,
    ) -> None:  # fmt: skip
        """``work`` on every connection at once (each connected and authenticated first);
        the clock runs from the moment all are ready until the last one ends."""
        count = self.args.connections
        clients = [httpx.Client(base_url=url, auth=server.auth, timeout=300)
                   for _ in range(count)]  # fmt: skip
        times: list[list[float]] = [[] for _ in range(count)]
        done = [0] * count
        errors: list[BaseException] = []
        ready = threading.Barrier(count + 1)

        def run(index: int) -> None:
            try:
                expect(clients[index].options(f"{server.base}/"), (200,), "OPTIONS")
                ready.wait()
                done[index] = work(index, clients[index], times[index])
            except BaseException as exc:
                ready.abort()
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
        try:
            for thread in threads:
                thread.start()
            with contextlib.suppress(threading.BrokenBarrierError):
                ready.wait()
            begin = time.perf_counter()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - begin
        finally:
            for http in clients:
                http.close()
        if errors:
            raise RuntimeError(f"{op}: {type(errors[0]).__name__}: {errors[0]}")
        result.times[op] = [t for per in times for t in per]
        result.sizes[op] = 0
        result.rates[op] = sum(done) / elapsed

    def _search(self, url: str, result: Round) -> str:
        """Enclave's JSON search; "not available" if the endpoint is not there (yet)."""
        with httpx.Client(base_url=url, timeout=300) as web:
            login = web.post("/api/login", json={"email": USER, "password": PASSWORD})
            expect(login, (200,), "POST /api/login")
            headers = {"Authorization": f"Bearer {login.json()['token']}"}
            probe = web.get("/api/search", params={"q": RARE}, headers=headers)
            if probe.status_code in (404, 405, 501, 503):
                return f"not available ({probe.status_code})"
            expect(probe, (200,), "GET /api/search")
            for _ in range(self.args.search_repeats):
                for label, text, hits in queries(self.args.documents):
                    reply = self.timed(result, f"search: {label}", 0, lambda t=text: web.get(
                        "/api/search", params={"q": t}, headers=headers))  # fmt: skip
                    expect(reply, (200,), f"GET /api/search?q={quote(text)}")
                    found = len(reply.json()["hits"])
                    if (hits is None and found < 1) or (hits is not None and found != hits):
                        raise RuntimeError(f"search {text!r}: {found} hits, expected "
                                           f"{'some' if hits is None else hits}")  # fmt: skip
            return "available"


# --------------------------------------------------------------------------------------------
# Reporting


def machine() -> dict[str, str]:
    try:
        import wsgidav

        version = wsgidav.__version__
    except ImportError:
        version = "not installed"
    return host_facts() | {"wsgidav": version, "enclave": enclave_revision()}


def fmt(value: float) -> str:
    if value != value:
        return "n/a"
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def summary(rounds: Sequence[Round]) -> dict[str, dict[str, float]]:
    """op -> n, p50 and p99 ms over every call in the rounds, median MB/s (per call)."""
    out: dict[str, dict[str, float]] = {}
    for op in dict.fromkeys(op for r in rounds for op in r.times):
        times = [t for r in rounds for t in r.times.get(op, [])]
        size = next(r.sizes[op] for r in rounds if op in r.sizes)
        row = {"n": float(len(times)), "p50_ms": percentile(times, 50) * 1000,
               "p99_ms": percentile(times, 99) * 1000, "mb_per_s": float("nan")}  # fmt: skip
        if size and not op.startswith(("PROPFIND", "search")):
            row["mb_per_s"] = statistics.median(size / t / MB for t in times)
        if op.startswith("PROPFIND"):
            row["bytes"] = float(size)
        rates = [r.rates[op] for r in rounds if op in r.rates]
        if rates:
            row["req_per_s"] = statistics.median(rates)
        out[op] = row
    return out


def table(sums: dict[str, dict[str, dict[str, float]]]) -> str:
    servers = list(sums)
    head = ["op"]
    for s in servers:
        head += [f"{s} n", f"{s} p50 ms", f"{s} p99 ms", f"{s} MB/s"]
    both = len(servers) == 2
    if both:
        head += ["p50 E/W", "MB/s E/W"]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for op in dict.fromkeys(op for s in servers for op in sums[s]):
        cells = [op]
        for s in servers:
            r = sums[s].get(op)
            cells += ["-"] * 4 if r is None else [
                f"{r['n']:.0f}", fmt(r["p50_ms"]), fmt(r["p99_ms"]), fmt(r["mb_per_s"])]  # fmt: skip
        if both:
            e, w = sums["enclave"].get(op), sums["wsgidav"].get(op)
            if e is None or w is None:
                cells += ["(Enclave only)" if w is None else "-", "-"]
            else:
                cells.append(fmt(e["p50_ms"] / w["p50_ms"]) if w["p50_ms"] else "n/a")
                ratio = e["mb_per_s"] / w["mb_per_s"] if w["mb_per_s"] else float("nan")
                cells.append(fmt(ratio))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def rate_table(sums: dict[str, dict[str, dict[str, float]]]) -> str:
    """Requests per second of the concurrent parts (median over the rounds)."""
    servers = list(sums)
    ops = [op for op in dict.fromkeys(op for s in servers for op in sums[s])
           if any("req_per_s" in sums[s].get(op, {}) for s in servers)]  # fmt: skip
    if not ops:
        return ""
    head = ["op", *(f"{s} req/s" for s in servers)]
    both = len(servers) == 2
    if both:
        head.append("req/s E/W")
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for op in ops:
        rates = [sums[s].get(op, {}).get("req_per_s", float("nan")) for s in servers]
        cells = [op, *(fmt(r) for r in rates)]
        if both:
            cells.append(fmt(rates[0] / rates[1]) if rates[1] else "n/a")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def load_text() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


# --------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=10_000,
                        help="documents in the PROPFIND/search folder (10000)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server (3)")
    parser.add_argument("--repeats", type=int, default=20,
                        help="4 KiB and 1 MiB documents PUT and GET per round (20)")  # fmt: skip
    parser.add_argument("--large-mib", type=int, default=100, help="the large document (100)")
    parser.add_argument("--large-repeats", type=int, default=2,
                        help="PUTs and GETs of the large document per round (2)")  # fmt: skip
    parser.add_argument("--propfind-repeats", type=int, default=2,
                        help="PROPFIND Depth 1 of the big folder per round (2)")  # fmt: skip
    parser.add_argument("--search-repeats", type=int, default=5,
                        help="times each search query runs per round (5)")  # fmt: skip
    parser.add_argument("--no-search", action="store_true", help="skip the search part")
    parser.add_argument("--connections", type=int, default=20,
                        help="clients at once in the concurrent parts (20)")  # fmt: skip
    parser.add_argument("--concurrent-requests", type=int, default=30,
                        help="requests per client in each concurrent part (30)")  # fmt: skip
    parser.add_argument("--only", choices=("enclave", "wsgidav"), help="benchmark one server")
    parser.add_argument("--seed", type=int, default=20261128, help="content seed")
    parser.add_argument("--smoke", action="store_true",
                        help="100 documents, 3 x 1 MiB, one 4 MiB large, 1 round")  # fmt: skip
    parser.add_argument("--workdir", type=Path, help="parent of the temporary directory")
    parser.add_argument("--enclave-src", type=Path,
                        help="run Enclave from this source tree (put first on the path), e.g. "
                        "a `git archive HEAD src` snapshot, instead of the installed checkout")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the deployments afterwards")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args(argv)
    if args.smoke:
        args.documents, args.rounds, args.repeats = 100, 1, 3
        args.large_mib, args.large_repeats, args.propfind_repeats = 4, 1, 1
        args.search_repeats, args.connections, args.concurrent_requests = 1, 4, 6
    if min(args.documents, args.rounds, args.repeats, args.large_mib, args.large_repeats,
           args.propfind_repeats, args.search_repeats, args.connections,
           args.concurrent_requests) < 1:  # fmt: skip
        parser.error("sizes, rounds and repeats must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not use_enclave_src(args.enclave_src):
        return 2
    servers = ["enclave", "wsgidav"] if args.only is None else [args.only]
    started, load_start = time.perf_counter(), load_text()
    info = machine()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    print(f"run: {args.documents} documents, {args.rounds} round(s), {args.repeats} x 4 KiB and "
          f"1 MiB, {args.large_repeats} x {args.large_mib} MiB, {args.propfind_repeats} x "
          f"PROPFIND, seed {args.seed}, servers {', '.join(servers)}; one client, sequential, then "
          f"{args.connections} at once ({args.concurrent_requests} requests each); load averages 1/5/15 min {load_start}")  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="dav-bench-", dir=args.workdir))
    targets: dict[str, Server] = {}
    rounds: list[Round] = []
    populated: dict[str, float] = {}
    ok = True
    try:
        workload = Workload(args)
        for name in servers:
            target: Server = Enclave(work) if name == "enclave" else WsgiDav(work)
            load0 = os.getloadavg()[0]
            populated[name] = seconds = target.populate(args.documents, args.seed)
            how = "services.documents.write, 8 in flight" if name == "enclave" else "files"
            print(f"{name}: {args.documents} documents written in {seconds:.1f}s "
                  f"({args.documents / seconds:.0f}/s, {how}); load {load0:.1f} -> "
                  f"{os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
            target.start()
            targets[name] = target
        print()
        for number in range(1, args.rounds + 1):
            for name in servers if number % 2 else servers[::-1]:
                result = workload.run(targets[name], number)
                rounds.append(result)
                ok = ok and not result.errors
                s = summary([result])
                parts = [f"{op} p50 {fmt(s[op]['p50_ms'])} ms"
                         + (f" ({fmt(s[op]['req_per_s'])}/s)" if "req_per_s" in s[op] else "")
                         for op in s if not op.startswith("search")]  # fmt: skip
                if name == "enclave" and not args.no_search:
                    parts.append(f"search {result.search}")
                print(f"round {number} {name:<8} " + ", ".join(parts)
                      + f"; server CPU {result.server_cpu_s:.1f}s; load "
                      f"{result.load_before:.1f} -> {result.load_after:.1f}"
                      + ("  PROBLEM: " + "; ".join(result.errors) if result.errors else ""),
                      flush=True)  # fmt: skip
        for name, target in targets.items():
            code = target.stop()
            if code != 0:
                ok = False
                print(f"PROBLEM: {name} exited {code} after SIGTERM")
    finally:
        for target in targets.values():
            with contextlib.suppress(Exception):
                target.stop()
        for line in log_complaints(work, ("enclave/serve.log", "wsgidav/serve.log")):
            print(line)
        if args.keep:
            print(f"\nkept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if not rounds:
        return 1
    sums = {name: summary([r for r in rounds if r.server == name]) for name in servers}
    print(f"\nOver {args.rounds} round(s) (p50/p99 of every call; MB/s is the median per call, "
          "10^6 bytes/s; E/W = Enclave/wsgidav, above 1 means Enclave takes longer):\n")  # fmt: skip
    print(table(sums))
    if rates := rate_table(sums):
        print("\nConcurrent parts, requests per second (median over the rounds; E/W above 1 "
              "means Enclave serves more):\n")  # fmt: skip
        print(rates)
    if "enclave" in sums:
        states = {r.search for r in rounds if r.server == "enclave"}
        if args.no_search:
            print("\nsearch: skipped (--no-search)")
        elif any(state.startswith("not available") for state in states):
            print(f"\nsearch: {', '.join(sorted(states))}")
        else:
            print("\nsearch: Enclave only (wsgidav has no search), absolute latencies above")
    for name in servers:
        if "PROPFIND 1" in sums[name]:
            r = sums[name]["PROPFIND 1"]
            print(f"{name}: PROPFIND Depth 1 of {args.documents} documents, "
                  f"{r['bytes'] / 1e6:.1f} MB of XML, {r['p50_ms'] / args.documents * 1000:.0f} "
                  "us per document (p50)")  # fmt: skip
    took, load_end = time.perf_counter() - started, load_text()
    print(f"\nrun took {took / 60:.1f} min; load averages 1/5/15 min {load_start} at the start, "
          f"{load_end} at the end")  # fmt: skip
    if args.json is not None:
        args.json.write_text(json.dumps({
            "machine": info, "args": {k: str(v) for k, v in vars(args).items()},
            "populate_s": populated, "summary": sums, "elapsed_s": took,
            "rounds": [vars(r) for r in rounds], "load_start": load_start,
            "load_end": load_end}, indent=2))  # fmt: skip
    if (revision := enclave_revision()) != info["enclave"]:
        print(f"\nWARNING: the Enclave checkout changed during the run: now {revision}")
    print("\nOK" if ok else "\nFAILED: see PROBLEM above")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
