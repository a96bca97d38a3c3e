"""Run the real ``enclave`` command: prepare deployments with the CLI, serve them over loopback.

Nothing here imports the application: every step goes through the console script in a
subprocess, exactly as an administrator would run it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Self

import httpx

ENCLAVE = Path(sys.executable).parent / "enclave"
HOST = "127.0.0.1"


def _env() -> dict[str, str]:
    """The test runner's environment without ENCLAVE_* overrides (but with the loopback DNS
    the suite's conftest chose, so no server looks anything up off this machine), with plain
    output."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ENCLAVE_") or k.startswith("ENCLAVE_DNS__")
    }
    env.update({"NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "200", "PYTHONUNBUFFERED": "1"})
    return env


class CliError(AssertionError):
    pass


def cli(data: Path, *args: str, stdin: str | None = None, check: bool = True) -> str:
    """``enclave ARGS --data DATA``; returns stdout (fails the test on a non-zero exit)."""
    done = subprocess.run(
        [str(ENCLAVE), *args, "--data", str(data)],
        input=stdin,
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
        check=False,
    )
    if check and done.returncode != 0:
        raise CliError(
            f"enclave {' '.join(args)} exited {done.returncode}\n"
            f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )
    return done.stdout


Call = tuple[tuple[str, ...], str | None]  # (arguments, standard input)


def cli_chains(data: Path, chains: Iterable[Sequence[Call]]) -> list[list[str]]:
    """Run several chains of CLI calls side by side, each chain in order; their outputs.

    SQLite serialises the writers (busy timeout, BEGIN IMMEDIATE), so independent chains are
    safe to overlap; that halves the set-up time, which is mostly start-up and argon2.
    """

    def run_chain(chain: Sequence[Call]) -> list[str]:
        return [cli(data, *args, stdin=stdin) for args, stdin in chain]

    with ThreadPoolExecutor(max_workers=max(2, min(4, os.cpu_count() or 2))) as pool:
        futures = [pool.submit(run_chain, chain) for chain in chains]
        return [future.result() for future in futures]


def set_option(data: Path, section: str, key: str, value: str) -> None:
    """Set ``key = value`` (value in TOML syntax) in ``[section]`` of DATA/enclave.toml,
    replacing the existing (possibly commented-out) line, or adding one after the header."""
    path = data / "enclave.toml"
    lines = path.read_text(encoding="utf-8").splitlines()
    header = f"[{section}]"
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == header)
    except StopIteration:
        lines += ["", header, f"{key} = {value}"]
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")),
            len(lines),
        )
        pattern = re.compile(rf"^\s*#?\s*{re.escape(key)}\s*=")
        for i in range(start + 1, end):
            if pattern.match(lines[i]):
                lines[i] = f"{key} = {value}"
                break
        else:
            lines.insert(start + 1, f"{key} = {value}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def copy_deployment(source: Path, target: Path) -> Path:
    """A private copy of a prepared (not running) deployment directory."""
    shutil.copytree(source, target)
    return target


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def free_ports(count: int) -> list[int]:
    """``count`` different free ports: sockets held open together until all are chosen (one
    at a time, the kernel may hand out the same port twice)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_is_free(port: int) -> bool:
    """Nothing listens on the port (connections left in TIME_WAIT do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


class Server:
    """``enclave serve`` in a subprocess, every listener on its own free loopback port (so
    servers of different tests never collide), with ``env`` added to the environment. Ready
    when /healthz answers and every mail listener accepts connections."""

    def __init__(self, data: Path, env: Mapping[str, str] | None = None) -> None:
        self.data = data
        ports = free_ports(6)
        self.port, self.smtp_port, self.submission_port, self.imap_port = ports[:4]
        self.imaps_port, self.submissions_port = ports[4:]  # implicit TLS
        self.url = f"http://{HOST}:{self.port}"
        self.log_path = data / "serve.log"
        self.env = dict(env or {})
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, timeout: float = 30.0) -> Self:
        self._log = self.log_path.open("ab")
        ports = {
            "--http-port": self.port,
            "--smtp-port": self.smtp_port,
            "--submission-port": self.submission_port,
            "--imap-port": self.imap_port,
            "--imaps-port": self.imaps_port,
            "--submissions-port": self.submissions_port,
        }
        self.process = subprocess.Popen(
            [str(ENCLAVE), "serve", "--data", str(self.data)]
            + [part for option, port in ports.items() for part in (option, str(port))],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_env() | self.env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._close_log()
                raise RuntimeError(
                    f"enclave serve exited {self.process.returncode} during start-up:\n"
                    + self.output()
                )
            if self._ready():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"enclave serve did not start in {timeout}s:\n{self.output()}")

    def _ready(self) -> bool:
        try:
            if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code != 200:
                return False
        except httpx.TransportError:
            return False
        return all(
            not port_is_free(port)
            for port in (
                self.smtp_port,
                self.submission_port,
                self.imap_port,
                self.imaps_port,
                self.submissions_port,
            )
        )

    def restart(self, env: Mapping[str, str] | None = None) -> Self:
        """SIGTERM (a clean stop, exit 0 expected), then start again on the same ports, with
        ``env`` replacing the extra environment if given."""
        code = self.terminate()
        if code != 0:
            raise RuntimeError(f"enclave serve exited {code} on SIGTERM:\n{self.output()}")
        if env is not None:
            self.env = dict(env)
        return self.start()

    def kill(self) -> int:
        """SIGKILL: no shutdown code runs (a crash, as far as the server can tell)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        code = self.process.wait(timeout=10)
        self._close_log()
        return code

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0, **kwargs)  # type: ignore[arg-type]

    def output(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM, then wait; returns the exit code (kills and fails after ``timeout``)."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            self._close_log()
            raise
        self._close_log()
        return code

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.returncode is not None:
            self._close_log()
            return self.process.returncode
        try:
            return self.terminate()
        except subprocess.TimeoutExpired:
            return None

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
