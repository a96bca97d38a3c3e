"""WebDAV, end to end: a real ``enclave serve`` on a loopback port, a deployment prepared with
the real CLI, spoken to with httpx (and litmus, the WebDAV conformance suite, if installed).

One server serves the module; tests work in folders of their own, so they do not interfere.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote
from xml.etree import ElementTree

import httpx
import pytest

from tests.frontends.webserver import Server, cli, cli_chains, copy_deployment, set_option

PASSWORD = "correct horse battery"
ALICE = "alice@acme.example"
BOB = "bob@acme.example"
GINA = "gina@globex.example"  # tenant globex requires a second factor: app passwords only
DAV = "{DAV:}"


@dataclass(frozen=True)
class Deployment:
    data: Path
    gina_app_password: str


def _add_user(email: str, *flags: str) -> tuple[tuple[str, ...], str]:
    return ("user", "add", email, *flags, "--password-stdin"), PASSWORD + "\n"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    data = tmp_path_factory.mktemp("dav") / "template"
    cli(data, "init")
    set_option(data, "auth", "failure_delay_ms", "50")
    set_option(data, "auth", "address_failures", "1000")
    cli(data, "tenant", "create", "acme", "--domain", "acme.example")
    cli(data, "tenant", "create", "globex", "--domain", "globex.example")
    outputs = cli_chains(
        data,
        [
            [_add_user(ALICE, "--admin")],
            [_add_user(BOB)],
            [
                _add_user(GINA),
                (("user", "app-password", "add", GINA, "--name", "files"), None),
                (("tenant", "require-mfa", "globex", "--on"), None),
            ],
        ],
    )
    return Deployment(data, outputs[2][1].strip().splitlines()[-1].strip())


@pytest.fixture(scope="module")
def server(template: Deployment) -> Iterator[Server]:
    running = Server(copy_deployment(template.data, template.data.parent / "main")).start()
    try:
        yield running
    finally:
        code = running.stop()
    assert code == 0, f"enclave serve exited {code} on SIGTERM after DAV traffic"


# --- helpers ---------------------------------------------------------------------------


def dav(server: Server, email: str = ALICE, password: str = PASSWORD) -> httpx.Client:
    return httpx.Client(base_url=f"{server.url}/dav", auth=(email, password), timeout=60.0)


def home(email: str = ALICE) -> str:
    return f"/files/{email}"


def propfind(client: httpx.Client, path: str, depth: str = "1") -> dict[str, dict[str, str]]:
    """href (unquoted) -> {property local name: text} for every response of a PROPFIND."""
    reply = client.request("PROPFIND", path, headers={"Depth": depth})
    assert reply.status_code == 207, (reply.status_code, reply.text)
    found: dict[str, dict[str, str]] = {}
    for response in ElementTree.fromstring(reply.content).iter(f"{DAV}response"):
        href = unquote(response.findtext(f"{DAV}href") or "")
        props: dict[str, str] = {}
        for prop in response.iter(f"{DAV}prop"):
            for element in prop:
                name = element.tag.removeprefix(DAV)
                props[name] = "collection" if element.find(f"{DAV}collection") is not None else (
                    element.text or ""
                )  # fmt: skip
        found[href] = props
    return found


def status(reply: httpx.Response) -> int:
    return reply.status_code


def server_pid(server: Server) -> int:
    assert server.process is not None
    return server.process.pid


def reset_peak_rss(pid: int) -> None:
    """Start the peak (VmHWM) afresh at the current RSS, so it measures what follows."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc status")


# --- authentication --------------------------------------------------------------------


def test_unauthenticated_and_wrong_password_get_a_basic_challenge(server: Server) -> None:
    with httpx.Client(base_url=f"{server.url}/dav") as anonymous:
        for method in ("GET", "PROPFIND", "PUT", "OPTIONS"):
            reply = anonymous.request(method, f"{home()}/x")
            assert reply.status_code == 401, method
            assert reply.headers["www-authenticate"].startswith('Basic realm="Enclave"')
    with dav(server, ALICE, "wrong password") as wrong:
        assert status(wrong.request("PROPFIND", home(), headers={"Depth": "0"})) == 401
    with dav(server, "nobody@acme.example") as unknown:
        assert status(unknown.request("PROPFIND", "/files/", headers={"Depth": "0"})) == 401


def test_web_session_and_app_password_are_accepted(server: Server, template: Deployment) -> None:
    with httpx.Client(base_url=server.url) as client:
        login = client.post("/api/login", json={"email": BOB, "password": PASSWORD})
        assert login.status_code == 200, login.text
        token = login.json()["token"]
        by_bearer = client.request(
            "PROPFIND",
            f"/dav{home(BOB)}",
            headers={"Depth": "0", "Authorization": f"Bearer {token}"},
        )
        assert by_bearer.status_code == 207
        by_cookie = client.request("PROPFIND", f"/dav{home(BOB)}", headers={"Depth": "0"})
        assert by_cookie.status_code == 207  # the session cookie the login set
    # globex requires a second factor: the main password is refused, the app password works
    with dav(server, GINA) as main_password:
        assert status(main_password.request("PROPFIND", home(GINA))) == 401
    with dav(server, GINA, template.gina_app_password) as app_password:
        assert f"/dav{home(GINA)}/" in propfind(app_password, home(GINA), "0")


def _external_address() -> str | None:
    """This machine's address on its default route (a UDP connect sends nothing), if any."""
    for target in ("192.0.2.1", "203.0.113.1", "10.255.255.255"):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect((target, 9))
            except OSError:
                continue
            address: str = probe.getsockname()[0]
            if not ipaddress.ip_address(address).is_loopback:
                return address
    return None


def test_basic_over_plain_http_only_from_loopback_or_a_trusted_proxy(
    template: Deployment,
) -> None:
    address = _external_address()
    if address is None:
        pytest.skip("no non-loopback address to connect from")
    data = copy_deployment(template.data, template.data.parent / "exposed")
    set_option(data, "listen", "bind", '"0.0.0.0"')
    exposed = Server(data).start()
    try:
        remote = f"http://{address}:{exposed.port}/dav"
        with httpx.Client(base_url=remote, auth=(ALICE, PASSWORD)) as basic:
            refused = basic.request("PROPFIND", home(), headers={"Depth": "0"})
            assert refused.status_code == 403
            assert "www-authenticate" not in refused.headers  # no challenge to retry in clear
        with httpx.Client(base_url=exposed.url) as local:
            token = local.post("/api/login", json={"email": ALICE, "password": PASSWORD})
            assert token.status_code == 200
        bearer = {"Authorization": f"Bearer {token.json()['token']}", "Depth": "0"}
        with httpx.Client(base_url=remote) as session:
            assert status(session.request("PROPFIND", home(), headers=bearer)) == 207
        exposed.restart(env={"ENCLAVE_HTTP__TRUSTED_PROXIES": f'["{address}"]'})
        with httpx.Client(base_url=remote, auth=(ALICE, PASSWORD)) as proxied:
            assert status(proxied.request("PROPFIND", home(), headers={"Depth": "0"})) == 207
    finally:
        exposed.stop()


# --- browsing, folders, documents ------------------------------------------------------


def test_indexes_list_what_the_principal_can_reach(server: Server) -> None:
    with dav(server) as alice:
        root = propfind(alice, "/")
        assert {"/dav/", "/dav/files/", "/dav/libraries/"} <= set(root)
        files = propfind(alice, "/files/")
        assert f"/dav{home()}/" in files
        assert not any(BOB in href for href in files)
        assert set(propfind(alice, "/libraries/")) == {"/dav/libraries/"}
        assert status(alice.request("MKCOL", "/files/newlib")) == 403
        assert status(alice.request("PROPFIND", "/elsewhere/", headers={"Depth": "1"})) == 404


def test_mkcol_put_propfind_get_range(server: Server) -> None:
    base = f"{home()}/basics"
    body = b"The quick brown fox jumps over the lazy dog.\n" * 100
    with dav(server) as alice:
        assert status(alice.request("MKCOL", base)) == 201
        assert status(alice.request("MKCOL", base)) == 405
        assert status(alice.request("MKCOL", f"{base}/missing/child")) == 409
        assert status(alice.request("MKCOL", f"{base}/sub")) == 201

        put = alice.put(f"{base}/fox.txt", content=body, headers={"Content-Type": "text/plain"})
        assert put.status_code == 201
        etag = put.headers["etag"]

        listing = propfind(alice, base)
        assert set(listing) == {f"/dav{base}/", f"/dav{base}/sub/", f"/dav{base}/fox.txt"}
        fox = listing[f"/dav{base}/fox.txt"]
        assert fox["getcontentlength"] == str(len(body))
        assert fox["getcontenttype"] == "text/plain"
        assert f'"{fox["getetag"]}"' == etag
        assert fox["displayname"] == "fox.txt"
        assert fox["getlastmodified"] and fox["creationdate"]
        assert listing[f"/dav{base}/sub/"]["resourcetype"] == "collection"

        got = alice.get(f"{base}/fox.txt")
        assert got.status_code == 200
        assert got.content == body
        assert got.headers["etag"] == etag

        ranged = alice.get(f"{base}/fox.txt", headers={"Range": "bytes=100-199"})
        assert ranged.status_code == 206
        assert ranged.content == body[100:200]
        assert ranged.headers["content-range"] == f"bytes 100-199/{len(body)}"
        tail = alice.get(f"{base}/fox.txt", headers={"Range": "bytes=-10"})
        assert tail.content == body[-10:]

        assert status(alice.get(f"{base}/nothing.txt")) == 404
        assert status(alice.put(f"{base}/missing/x.txt", content=b"x")) == 409


def test_conditional_put(server: Server) -> None:
    path = f"{home()}/conditional.txt"
    with dav(server) as alice:
        first = alice.put(path, content=b"one")
        assert first.status_code == 201
        stale = first.headers["etag"]
        second = alice.put(path, content=b"two", headers={"If-Match": stale})
        assert second.status_code == 204
        assert second.headers["etag"] != stale
        assert status(alice.put(path, content=b"three", headers={"If-Match": stale})) == 412
        assert status(alice.put(path, content=b"four", headers={"If-None-Match": "*"})) == 412
        assert alice.get(path).content == b"two"
        fresh = f"{home()}/conditional-new.txt"
        assert status(alice.put(fresh, content=b"new", headers={"If-None-Match": "*"})) == 201


def test_delete_document_and_folder(server: Server) -> None:
    base = f"{home()}/deleting"
    with dav(server) as alice:
        assert status(alice.request("MKCOL", base)) == 201
        assert status(alice.put(f"{base}/a.txt", content=b"a")) == 201
        assert status(alice.request("MKCOL", f"{base}/inner")) == 201
        assert status(alice.put(f"{base}/inner/b.txt", content=b"b")) == 201
        assert status(alice.delete(f"{base}/a.txt")) == 204
        assert status(alice.get(f"{base}/a.txt")) == 404
        assert status(alice.delete(base)) == 204
        assert status(alice.request("PROPFIND", base, headers={"Depth": "0"})) == 404
        assert status(alice.delete(base)) == 404
        assert status(alice.delete(home())) == 403  # the library root stays


def test_copy_and_move(server: Server) -> None:
    base = f"{home()}/moving"
    url = f"{server.url}/dav{base}"
    with dav(server) as alice:
        assert status(alice.request("MKCOL", base)) == 201
        assert status(alice.request("MKCOL", f"{base}/src")) == 201
        assert status(alice.put(f"{base}/src/doc.txt", content=b"payload")) == 201

        def copy(source: str, target: str, **headers: str) -> int:
            headers = {"Destination": f"{url}/{target}", **headers}
            return status(alice.request("COPY", f"{base}/{source}", headers=headers))

        def move(source: str, target: str, **headers: str) -> int:
            headers = {"Destination": f"{url}/{target}", **headers}
            return status(alice.request("MOVE", f"{base}/{source}", headers=headers))

        assert copy("src/doc.txt", "copy.txt") == 201
        assert copy("src/doc.txt", "copy.txt") == 204  # replaced
        assert copy("src/doc.txt", "copy.txt", Overwrite="F") == 412
        assert alice.get(f"{base}/copy.txt").content == b"payload"

        assert copy("src", "tree") == 201
        assert alice.get(f"{base}/tree/doc.txt").content == b"payload"
        assert copy("src", "shallow", Depth="0") == 201
        assert set(propfind(alice, f"{base}/shallow")) == {f"/dav{base}/shallow/"}

        assert move("copy.txt", "renamed.txt") == 201
        assert status(alice.get(f"{base}/copy.txt")) == 404
        assert alice.get(f"{base}/renamed.txt").content == b"payload"
        assert move("tree", "src/tree") == 201
        assert alice.get(f"{base}/src/tree/doc.txt").content == b"payload"
        assert move("src", "src/tree/inside") in (403, 409)  # not into itself
        assert move("renamed.txt", "nowhere/x.txt") == 409


def test_streamed_upload_and_download_keep_memory_bounded(server: Server) -> None:
    """A 64 MiB document up and down: the server's peak memory grows by less than half of it
    (what does not grow with the document, such as each worker thread's malloc arena holding
    a few 256 KiB blocks, stays well under that; 20 MiB left too little room for it)."""
    size, piece = 64 * 1024 * 1024, 256 * 1024
    pattern = hashlib.sha256(b"seed").digest() * (piece // 32)
    path = f"{home()}/big.bin"

    def body() -> Iterator[bytes]:
        for index in range(size // piece):
            yield index.to_bytes(4, "big") + pattern[4:]

    expected = hashlib.sha256(b"".join(body())).hexdigest()
    pid = server_pid(server)
    with dav(server) as alice:
        alice.put(f"{home()}/warm-up.bin", content=b"x" * piece)  # first-use allocations
        reset_peak_rss(pid)
        before = peak_rss_kib(pid)
        put = alice.put(path, content=body())  # a generator: sent chunked, streamed through
        assert put.status_code == 201, put.text
        digest = hashlib.sha256()
        received = 0
        with alice.stream("GET", path) as reply:
            assert reply.status_code == 200
            for chunk in reply.iter_bytes():
                digest.update(chunk)
                received += len(chunk)
        assert received == size
        assert digest.hexdigest() == expected
        grown = peak_rss_kib(pid) - before
        assert grown < size // 1024 // 2, f"server peak RSS grew by {grown} KiB"
        ranged = alice.get(path, headers={"Range": f"bytes={size - 1000}-"})
        assert ranged.status_code == 206
        assert ranged.content == b"".join(body())[-1000:]


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_upload_cut_short_is_not_committed(server: Server, framing: str) -> None:
    path = f"{home()}/cut-short-{framing}.bin"
    credentials = base64.b64encode(f"{ALICE}:{PASSWORD}".encode()).decode()
    host, port = server.url.removeprefix("http://").split(":")
    if framing == "length":
        header, body = "Content-Length: 1000000", b"x" * 100_000
    else:
        header, body = "Transfer-Encoding: chunked", b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"PUT /dav{path} HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Basic {credentials}\r\n{header}\r\n\r\n".encode()
            + body * 4
        )
        time.sleep(0.5)
    with dav(server) as alice:
        for _ in range(10):  # the server notices the disconnect on its own time: keep looking
            assert status(alice.get(path)) == 404
            time.sleep(0.2)


def test_locks_guard_writes(server: Server) -> None:
    path = f"{home()}/locked.txt"
    lockinfo = (
        '<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:">'
        "<D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>"
        "<D:owner>test</D:owner></D:lockinfo>"
    )
    with dav(server) as alice:
        assert status(alice.put(path, content=b"v1")) == 201
        locked = alice.request("LOCK", path, content=lockinfo, headers={"Timeout": "Second-60"})
        assert locked.status_code == 200, locked.text
        token = locked.headers["lock-token"]
        assert status(alice.put(path, content=b"v2")) == 423
        assert status(alice.delete(path)) == 423
        assert status(alice.put(path, content=b"v2", headers={"If": f"({token})"})) == 204
        assert status(alice.request("UNLOCK", path, headers={"Lock-Token": token})) == 204
        assert status(alice.put(path, content=b"v3")) == 204
        assert alice.get(path).content == b"v3"


# --- isolation -------------------------------------------------------------------------


def test_other_users_libraries_do_not_exist(server: Server) -> None:
    secret = f"{home()}/private.txt"
    with dav(server) as alice:
        assert status(alice.put(secret, content=b"alice only")) == 201
    with dav(server, BOB) as bob:
        assert status(bob.request("PROPFIND", home(), headers={"Depth": "1"})) == 404
        assert status(bob.get(secret)) == 404
        assert status(bob.put(f"{home()}/planted.txt", content=b"x")) == 409  # no such parent
        assert status(bob.delete(secret)) == 404
        target = f"{server.url}/dav{home(BOB)}/stolen.txt"
        assert status(bob.request("COPY", secret, headers={"Destination": target})) == 404
        assert not any(ALICE in href for href in propfind(bob, "/files/"))
    with dav(server) as alice:
        # nor can alice put her own things into bob's library
        target = f"{server.url}/dav{home(BOB)}/gift.txt"
        assert status(alice.request("COPY", secret, headers={"Destination": target})) == 409
        assert alice.get(secret).content == b"alice only"


def test_other_tenants_do_not_exist(server: Server, template: Deployment) -> None:
    with dav(server, GINA, template.gina_app_password) as gina:
        assert status(gina.request("PROPFIND", home(), headers={"Depth": "0"})) == 404
        assert status(gina.get(f"{home()}/private.txt")) == 404
        listed = propfind(gina, "/files/")
        assert set(listed) == {"/dav/files/", f"/dav{home(GINA)}/"}
    with dav(server) as alice:
        assert status(alice.request("PROPFIND", home(GINA), headers={"Depth": "0"})) == 404


# --- conformance -----------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("litmus") is None, reason="litmus is not installed")
def test_litmus_passes_every_suite(server: Server, tmp_path: Path) -> None:
    done = subprocess.run(
        ["litmus", f"{server.url}/dav{home()}/", ALICE, PASSWORD],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    summaries = [line for line in done.stdout.splitlines() if "<- summary" in line]
    assert len(summaries) == 5, done.stdout
    assert all("0 failed" in line for line in summaries), done.stdout
    assert done.returncode == 0, done.stdout
