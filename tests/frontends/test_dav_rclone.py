"""WebDAV with rclone, a real client: a tree of a few thousand files (nested folders, sizes from
0 bytes to ~5 MB, non-ASCII names, spaces, ``#``, ``%``, ``&``, ``+``) copied up, synced up
after local changes, and synced down after changes made on the server, every step checked by
downloading and comparing content. A real ``enclave serve``, a deployment made with the CLI.

rclone talks to the library as a plain WebDAV server (``vendor = other``): no hashes and no
settable modification times there, so ``rclone sync`` compares sizes, and ``rclone check
--download`` compares content. Every change below therefore changes a file's size, as a change
rclone could not see otherwise. rclone retries nothing here (``--retries 1
--low-level-retries 1``), so any failed request fails the test.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.frontends.webserver import Server, cli, set_option

RCLONE = shutil.which("rclone")
PASSWORD = "rclone horse battery"
ALICE = "alice@acme.example"
REMOTE = "enclave:tree"  # a folder in alice's personal library
SEED = 20261128
FILES = 2000
KiB, MiB = 1024, 1024 * 1024
DASH = "\N{EN DASH}"  # in names (ruff flags the literal character)

# rclone 1.60's "check" logs this at ERROR level for every remote without hashes (as here),
# even with --size-only; it is about the comparison, not a failed request.
NO_HASH = "No common hash found - not using a hash for checks"

pytestmark = pytest.mark.skipif(RCLONE is None, reason="rclone is not installed")

# Folders the generated files are spread over, and names that need care in URLs and XML.
FOLDERS = (
    "", "docs", "docs/2026", "docs/2026/Q4", "photos/raw", "photos/edited", "src/pkg/sub",
    "deep/1/2/3/4/5/6/7", "Grüße", "a b c", "hash#tag", "percent%25 dir", "Q&A", "c++",
    "naïve café/Ünïcödé",
)  # fmt: skip
SPECIAL = (
    f"Grüße/Ödegård {DASH} résumé.txt",
    "a b c/file with  two spaces.txt",
    "hash#tag/#1 notes.md",
    "percent%25 dir/100% done.txt",
    "percent%25 dir/%41%42 literal.txt",
    "Q&A/fish & chips.txt",
    "c++/a+b=c d.txt",
    "names/日本語のファイル.txt",
    "names/emoji 📄 doc.txt",
    "names/quote's and (brackets) [x] {y}.txt",
    "names/semi;colon,comma=equals@at!bang~tilde$dollar.txt",
    "names/Ελληνικά κείμενο.md",
    "names/empty.bin",
)


# --- the trees ---------------------------------------------------------------------------


def _size(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.02:
        return 0
    if roll < 0.62:
        return rng.randint(1, 4 * KiB)
    if roll < 0.95:
        return rng.randint(4 * KiB, 64 * KiB)
    return rng.randint(64 * KiB, MiB)


def build_tree(root: Path, rng: random.Random) -> None:
    """FILES files under ``root``: generated names in FOLDERS, the SPECIAL names, and four
    ~5 MB files."""
    paths = [f"{folder}/f{i:04d}-{rng.choice(('a', 'b', 'c'))}.dat".lstrip("/")
             for i, folder in enumerate(rng.choice(FOLDERS) for _ in range(FILES - 17))]  # fmt: skip
    contents = {path: rng.randbytes(_size(rng)) for path in paths}
    for index, path in enumerate(SPECIAL):
        contents[path] = b"" if path.endswith("empty.bin") else f"{path}\n".encode() * (index + 1)
    for index in range(4):
        contents[f"big/large-{index}.bin"] = rng.randbytes(5 * MiB + rng.randint(0, 64 * KiB))
    for path, data in contents.items():
        write(root / path, data)


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def digests(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``root``."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in root.rglob("*")
        if path.is_file()
    }


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# --- the server and rclone ---------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("dav-rclone") / "deployment"
    cli(data, "init")
    set_option(data, "auth", "failure_delay_ms", "50")
    cli(data, "tenant", "create", "acme", "--domain", "acme.example")
    cli(data, "user", "add", ALICE, "--password-stdin", stdin=PASSWORD + "\n")
    running = Server(data).start()
    try:
        yield running
    finally:
        code = running.stop()
    assert code == 0, f"enclave serve exited {code} on SIGTERM after rclone's traffic"


class Rclone:
    """rclone with the remote ``enclave`` defined in its environment (the password obscured
    through standard input, never on a command line) and an empty config file of its own."""

    def __init__(self, server: Server, work: Path) -> None:
        assert RCLONE is not None
        self.server = server
        self.config = work / "rclone.conf"
        self.config.write_text("")
        obscured = subprocess.run(
            [RCLONE, "obscure", "-"], input=PASSWORD + "\n", capture_output=True, text=True,
            timeout=30, check=True,
        ).stdout.strip()  # fmt: skip
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RCLONE_")}
        self.env.update({
            "RCLONE_CONFIG_ENCLAVE_TYPE": "webdav",
            "RCLONE_CONFIG_ENCLAVE_URL": f"{server.url}/dav/files/{ALICE}/",
            "RCLONE_CONFIG_ENCLAVE_VENDOR": "other",
            "RCLONE_CONFIG_ENCLAVE_USER": ALICE,
            "RCLONE_CONFIG_ENCLAVE_PASS": obscured,
        })  # fmt: skip

    def __call__(self, *args: str, timeout: float = 900) -> str:
        """``rclone ARGS``; fails the test on a non-zero exit or any ERROR it logs. The
        timeout catches a hang, not slowness: the first copy took 130 s here and over 300 s
        on a loaded CI machine."""
        assert RCLONE is not None
        done = subprocess.run(
            [RCLONE, "--config", str(self.config), "--transfers", "4", "--checkers", "8",
             "--retries", "1", "--low-level-retries", "1", "--stats-one-line", "--stats", "0",
             "--stats-log-level", "NOTICE", *args],
            capture_output=True, text=True, env=self.env, timeout=timeout, check=False,
        )  # fmt: skip
        output = done.stdout + done.stderr
        errors = [line for line in output.splitlines() if "ERROR" in line and NO_HASH not in line]
        assert done.returncode == 0 and not errors, (
            f"rclone {' '.join(args)} exited {done.returncode}\n{output[-6000:]}\n"
            f"server log tail:\n{self.server.output()[-4000:]}"
        )
        return output

    def check(self, source: str, target: str, expected: int, download: bool = False) -> None:
        """Every file on both sides with the same size, and with ``download`` the same
        content (rclone downloads and compares every file)."""
        output = self("check", source, target, "--download" if download else "--size-only")
        assert "0 differences found" in output, output[-3000:]
        assert f"{expected} matching files" in output, output[-3000:]


def test_rclone_copy_sync_up_and_down(server: Server, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    rclone = Rclone(server, tmp_path)
    local, down = tmp_path / "local", tmp_path / "down"
    build_tree(local, rng)
    count = len(files(local))
    assert count >= FILES

    # 1. copy up, then compare by content (rclone downloads every file)
    rclone("copy", str(local), REMOTE)
    rclone.check(str(local), REMOTE, count, download=True)

    # 2. change the local tree (sizes change, see the module's docstring), sync up, compare
    names = files(local)
    rng.shuffle(names)
    changed, deleted = names[:60], names[60:100]
    for name in changed:
        path = local / name
        path.write_bytes(path.read_bytes() + b"\nchanged locally " + rng.randbytes(37))
    for name in deleted:
        (local / name).unlink()
    shutil.rmtree(local / "deep/1/2/3/4/5/6/7", ignore_errors=True)
    for index in range(40):
        write(
            local / f"added/new {index} {DASH} ä+b&c#%.txt", rng.randbytes(rng.randint(0, 20 * KiB))
        )
    write(local / f"Grüße/Ödegård {DASH} résumé.txt", "Ödegård, neu\n".encode() * 10)
    rclone("sync", str(local), REMOTE)
    rclone.check(str(local), REMOTE, len(files(local)))  # names and sizes

    # 3. sync down into an empty folder: every file's content as synced up (sha256)
    rclone("sync", REMOTE, str(down))
    expected = digests(local)
    assert digests(down) == expected

    # 4. change things on the server, sync down again, compare content
    base = f"/dav/files/{ALICE}/tree"
    with httpx.Client(base_url=server.url, auth=(ALICE, PASSWORD), timeout=120) as alice:

        def url(name: str) -> str:
            return f"{base}/{quote(name)}"

        remaining = sorted(expected)
        rng.shuffle(remaining)
        for name in remaining[:25]:  # overwrite with content of another size
            data = rng.randbytes(rng.randint(1, 200 * KiB)) + b"server side"
            assert alice.put(url(name), content=data).status_code == 204, name
            expected[name] = hashlib.sha256(data).hexdigest()
        for name in remaining[25:40]:
            assert alice.delete(url(name)).status_code == 204, name
            del expected[name]
        assert alice.request("MKCOL", url(f"from the server {DASH} ß")).status_code == 201
        for index in range(15):
            name = f"from the server {DASH} ß/{index} & more + #{index}%.bin"
            data = rng.randbytes(rng.randint(0, 300 * KiB))
            assert alice.put(url(name), content=data).status_code == 201, name
            expected[name] = hashlib.sha256(data).hexdigest()
    rclone("sync", REMOTE, str(down))
    assert digests(down) == expected
