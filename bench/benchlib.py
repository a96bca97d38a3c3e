"""Helpers both benchmarks share: ports, processes, CPU accounting, percentiles, host facts."""

# ruff: noqa: S603 - the commands are the benchmark's own, with fixed arguments

from __future__ import annotations

import base64
import contextlib
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

HOST = "127.0.0.1"


def _b64(data: bytes) -> str:
    return base64.encodebytes(data).decode("ascii").replace("\n", "\r\n")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


LISTENERS = ("http", "smtp", "submission", "imap", "imaps", "submissions")  # listen.<name>_port


def listeners() -> list[str]:
    """The listeners of the Enclave being run (``enclave serve --<name>-port``): an older
    --enclave-src snapshot may lack the implicit-TLS ones (listen.imaps_port and
    listen.submissions_port)."""
    if ENCLAVE_SRC and str(ENCLAVE_SRC[0]) not in sys.path:
        sys.path.insert(0, str(ENCLAVE_SRC[0]))
    try:
        from enclave.config import ListenSettings  # the project's venv
    except ImportError:
        return list(LISTENERS[:4])
    return [name for name in LISTENERS if f"{name}_port" in ListenSettings.model_fields]


def serve_ports(**chosen: int) -> dict[str, int]:
    """A loopback port for every listener: those ``chosen`` (``imap=...``), a free one for
    each other, so that no listener falls back on its fixed default (9930, 4650...) and two
    runs at once never collide."""
    unknown = set(chosen) - set(LISTENERS)
    if unknown:
        raise ValueError(f"no such listener: {', '.join(sorted(unknown))}")
    return {name: chosen.get(name) or free_port() for name in listeners()}


def serve_command(command: str | Path, data: Path, ports: dict[str, int]) -> list[str]:
    """``enclave serve`` for ``data`` on ``ports`` (from ``serve_ports``)."""
    options = [part for name, port in ports.items() for part in (f"--{name}-port", str(port))]
    return [str(command), "serve", "--data", str(data), *options]


def tree_cpu_seconds(root_pid: int) -> float:
    """CPU time (user+system) of a process tree: every live member's own time plus the time
    of the children it has reaped (cutime/cstime), which counts each process once."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        ppid = int(fields[1])
        utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
        stats[int(entry.name)] = (ppid, (utime + stime + cutime + cstime) / tick)
    members = {root_pid}
    grew = True
    while grew:
        grew = False
        for pid, (ppid, _) in stats.items():
            if ppid in members and pid not in members:
                members.add(pid)
                grew = True
    return sum(stats[pid][1] for pid in members if pid in stats)


def run_quiet(
    args: Sequence[str], timeout: float = 120, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        list(args), capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )  # type: ignore[call-overload]
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
        )
    return done


def stop_process(process: subprocess.Popen[bytes], timeout: float = 30) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return -9


def host_facts() -> dict[str, str]:
    """What a results table needs to say about the machine."""
    memory, model = "unknown", "unknown"
    with contextlib.suppress(OSError, StopIteration):
        kib = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        )
        memory = f"{kib / 1024 / 1024:.1f} GiB"
    with contextlib.suppress(OSError, StopIteration):
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "memory": memory,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


# --enclave-src: import and run Enclave from this source tree (a snapshot) instead of the
# checkout's; set once by each script's argument parsing.
ENCLAVE_SRC: list[Path] = []


def use_enclave_src(src: Path | None) -> bool:
    """Take --enclave-src (if given); False, with a message, when it holds no enclave/."""
    if src is None:
        return True
    if not (src / "enclave" / "__init__.py").is_file():
        print(f"--enclave-src {src}: no enclave/ package there", file=sys.stderr)
        return False
    ENCLAVE_SRC[:] = [src.resolve()]
    return True


def enclave_command() -> Path:
    """The ``enclave`` command of the venv running this script."""
    beside = Path(sys.executable).parent / "enclave"
    if beside.exists():
        return beside
    found = shutil.which("enclave")
    if found is None:
        sys.exit("cannot find the `enclave` command: run this with the project's .venv/bin/python")
    return Path(found)


def enclave_env(
    dns_port: int | None = None, dns_timeout_seconds: int | None = None
) -> dict[str, str]:
    """The environment an Enclave deployment runs in: none of the caller's ENCLAVE_ settings,
    plain output, --enclave-src on PYTHONPATH, and DNS sent to ``dns_port`` on loopback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    env.update({"NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "200", "PYTHONUNBUFFERED": "1"})
    if ENCLAVE_SRC:
        env["PYTHONPATH"] = os.pathsep.join([str(ENCLAVE_SRC[0]), env.get("PYTHONPATH", "")])
    if dns_port is not None:
        env["ENCLAVE_DNS__NAMESERVERS"] = f'["{HOST}"]'
        env["ENCLAVE_DNS__PORT"] = str(dns_port)
    if dns_timeout_seconds is not None:
        env["ENCLAVE_DNS__TIMEOUT_SECONDS"] = str(dns_timeout_seconds)
    return env


def enclave_revision() -> str:
    """The commit of the checkout this script lives in, and whether src/ differs from it."""
    if ENCLAVE_SRC:
        return f"source tree {ENCLAVE_SRC[0]}"
    repo = Path(__file__).resolve().parents[1]
    try:
        head = run_quiet(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"]).stdout.strip()
        dirty = run_quiet(["git", "-C", str(repo), "status", "--porcelain", "--", "src"]).stdout
    except (OSError, RuntimeError):
        return "unknown"
    return head + (" + uncommitted changes in src/" if dirty.strip() else "")


COMPLAINT = re.compile(rb"error|traceback|critical|warn|exception|fatal|panic", re.IGNORECASE)


def log_complaints(
    work: Path, logs: Sequence[str], expected: re.Pattern[bytes] | None = None, shown: int = 5
) -> list[str]:
    """Lines of the servers' logs that look like trouble, a few per log, with the counts;
    ``expected`` lines (a server's own notice of the script's SIGTERM) are not trouble."""
    out: list[str] = []
    for log in logs:
        with contextlib.suppress(OSError):
            lines = [line for line in (work / log).read_bytes().splitlines()
                     if COMPLAINT.search(line) and not (expected and expected.search(line))]  # fmt: skip
            if lines:
                out.append(f"{log}: {len(lines)} line(s) mention an error or warning")
                out += [f"  {line.decode(errors='replace')[:300]}" for line in lines[:shown]]
    return out


def wait_for_http(url: str, process: subprocess.Popen[bytes], method: str = "GET") -> None:
    """Until ``url`` answers (below 500); fails if the server exits or 60 s pass."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited {process.returncode} during start-up ({url})")
        with contextlib.suppress(httpx.TransportError):
            if httpx.request(method, url, timeout=2).status_code < 500:
                return
        time.sleep(0.1)
    raise RuntimeError(f"no answer from {url} in 60 s")
