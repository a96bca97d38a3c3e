#!/usr/bin/env python3
"""Web app benchmark: server time of the main pages on a throwaway deployment.

    .venv/bin/python bench/web_bench.py              # 10,000 messages, 1,000 files, 3 rounds
    .venv/bin/python bench/web_bench.py --smoke      # tiny run, exit 0 if every page answered

The INBOX gets its messages through ``MailStore.deliver`` (what SMTP delivery calls) and a
folder its documents through ``Documents.write`` (what a PUT calls), before the server
starts; then one signed-in client asks, one request at a time over a kept-alive loopback
connection, for the pages a person opens most: the message list of the full INBOX (its first
page, and one deep in it), a message, and the folder of documents. Reported per page: p50 and
p99 latency, and the server's CPU per request. There is no reference server for pages; the
figures are the project's own, kept in ``bench/RESULTS.md`` to compare over time.
"""

# ruff: noqa: S603

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from benchlib import (
    ENCLAVE_SRC,
    HOST,
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
    wait_for_http,
)

USER, PASSWORD, DOMAIN = "reader@web-bench.test", "web bench password 1", "web-bench.test"
FOLDER = "Reports"


def message(n: int) -> bytes:
    return (
        f"From: Sender {n % 97} <sender{n % 97}@example.org>\r\nTo: {USER}\r\n"
        f"Subject: Weekly figures number {n}\r\nDate: Mon, 07 Dec 2026 09:00:00 +0000\r\n"
        f"Message-ID: <web-bench-{n}@example.org>\r\n\r\n"
        + f"Line {n} of a plain message body.\r\n"
        * 40
    ).encode()


async def fill(data: Path, env: dict[str, str], messages: int, files: int) -> float:
    if ENCLAVE_SRC:
        sys.path.insert(0, str(ENCLAVE_SRC[0]))
    from enclave.app import open_services
    from enclave.config import load_settings

    begin = time.perf_counter()
    async with open_services(load_settings(data, env)) as svc:
        principal = await svc.auth.login_protocol(USER, PASSWORD)
        tenant = await svc.tenants.get("bench")
        gate = asyncio.Semaphore(8)

        async def deliver(n: int) -> None:
            async with gate:
                await svc.mail_store.deliver(tenant.id, [principal.id], message(n))

        for start in range(0, messages, 256):
            await asyncio.gather(*(deliver(n) for n in range(start, min(messages, start + 256))))
        library = await svc.libraries.personal(principal)
        await svc.documents.make_folder(principal, library.id, FOLDER)

        async def write(n: int) -> None:
            async with gate:
                body = f"document {n}\n".encode() * 100
                await svc.documents.write(principal, library.id, f"{FOLDER}/doc-{n:05}.txt", body)

        for start in range(0, files, 256):
            await asyncio.gather(*(write(n) for n in range(start, min(files, start + 256))))
        await svc.index_queue.run_pending()
    return time.perf_counter() - begin


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=30, help="requests per page per round")
    parser.add_argument("--smoke", action="store_true", help="200 messages, 50 files, 1 round")
    parser.add_argument("--enclave-src", type=Path, help="run Enclave from this source tree")
    args = parser.parse_args()
    if args.smoke:
        args.messages, args.files, args.rounds, args.repeats = 200, 50, 1, 5
    if not use_enclave_src(args.enclave_src):
        return 2
    print("machine:", ", ".join(f"{k} {v}" for k, v in host_facts().items()))
    print(f"enclave {enclave_revision()}; {args.messages} messages, {args.files} files")
    with tempfile.TemporaryDirectory(prefix="web-bench-") as work:
        data = Path(work) / "deployment"
        env = enclave_env(free_port())
        command = str(enclave_command())

        def cli(*parts: str, stdin: str | None = None) -> None:
            run_quiet([command, *parts, "--data", str(data)], env=env, input=stdin)

        cli("init", "--hostname", "web.enclave-bench.test")
        cli("tenant", "create", "bench", "--domain", DOMAIN)
        cli("user", "add", USER, "--password-stdin", stdin=PASSWORD + "\n")
        filled = asyncio.run(fill(data, env, args.messages, args.files))
        print(f"filled in {filled:.1f} s")
        ports = serve_ports()
        with (data / "serve.log").open("ab") as log:
            server = subprocess.Popen(
                serve_command(command, data, ports), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=env,
            )  # fmt: skip
            try:
                return measure(f"http://{HOST}:{ports['http']}", server, args)
            finally:
                stop_process(server)


def measure(base: str, server: subprocess.Popen[bytes], args: argparse.Namespace) -> int:
    wait_for_http(base + "/healthz", server)
    with httpx.Client(base_url=base, timeout=60) as client:
        signed = client.post("/api/login", json={"email": USER, "password": PASSWORD})
        signed.raise_for_status()
        listed = client.get("/api/mail/messages", params={"limit": 1}).json()
        uid = listed["messages"][0]["uid"]
        library = client.get("/api/libraries/personal").json()["id"]
        pages = {
            "message list, first page": "/mail?folder=INBOX",
            "message list, deep page": f"/mail?folder=INBOX&offset={max(0, args.messages - 100)}",
            "a message": f"/mail/message?folder=INBOX&uid={uid}",
            f"folder of {args.files} documents": f"/files/{library}/{FOLDER}",
        }
        times: dict[str, list[float]] = {name: [] for name in pages}
        cpu: dict[str, list[float]] = {name: [] for name in pages}
        for _ in range(args.rounds):
            for name, url in pages.items():
                before = tree_cpu_seconds(server.pid)
                for _ in range(args.repeats):
                    started = time.perf_counter()
                    reply = client.get(url)
                    times[name].append(time.perf_counter() - started)
                    if reply.status_code != 200:
                        print(f"{name}: {reply.status_code}", file=sys.stderr)
                        return 1
                cpu[name].append((tree_cpu_seconds(server.pid) - before) / args.repeats)
    print("\n| page | p50 ms | p99 ms | server CPU ms/request |\n|---|---:|---:|---:|")
    for name in pages:
        print(
            f"| {name} | {statistics.median(times[name]) * 1000:.1f} | "
            f"{percentile(times[name], 99) * 1000:.1f} | "
            f"{statistics.median(cpu[name]) * 1000:.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
