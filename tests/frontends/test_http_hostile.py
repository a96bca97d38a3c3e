"""Hostile input on the HTTP side (the JSON API and WebDAV), end to end: a real ``enclave
serve`` on loopback, a deployment prepared with the real CLI, httpx as the attacker. One
regression test per fault found; each names the fault it guards against.

Two tenants: acme (alice, the attacker, with her own files) and globex (gina, the bystander
whose writes must not wait on alice's requests).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, unquote
from xml.etree import ElementTree

import httpx
import pytest

from enclave.app import open_services
from enclave.backends.db.platform import transaction
from enclave.backends.db.scoped import TenantScope
from enclave.config import load_settings
from enclave.services import Services
from tests.frontends.webserver import CliError, Server, cli, cli_chains, set_option

PASSWORD = "correct horse battery"
ALICE = "alice@acme.example"  # tenant administrator of acme
GINA = "gina@globex.example"  # another tenant
HOME = f"/files/{ALICE}"
NS = "urn:enclave-test:"
DAV = "{DAV:}"
NORMAL_LATENCY = 2.0  # seconds: what "still answering" means for a bystander's write


def _add_user(email: str, *flags: str) -> tuple[tuple[str, ...], str]:
    return ("user", "add", email, *flags, "--password-stdin"), PASSWORD + "\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("hostile") / "deployment"
    cli(data, "init")
    set_option(data, "auth", "failure_delay_ms", "50")
    set_option(data, "auth", "address_failures", "1000")
    cli(data, "tenant", "create", "acme", "--domain", "acme.example")
    cli(data, "tenant", "create", "globex", "--domain", "globex.example")
    cli_chains(data, [[_add_user(ALICE, "--admin")], [_add_user(GINA)]])
    running = Server(data).start()
    try:
        yield running
    finally:
        code = running.stop()
    assert code == 0, f"enclave serve exited {code} on SIGTERM:\n{running.output()[-3000:]}"


def dav(server: Server) -> httpx.Client:
    return httpx.Client(base_url=f"{server.url}/dav", auth=(ALICE, PASSWORD), timeout=120.0)


@contextmanager
def session(server: Server, email: str) -> Iterator[httpx.Client]:
    with server.client() as client:
        reply = client.post("/api/login", json={"email": email, "password": PASSWORD})
        assert reply.status_code == 200, reply.text
        yield client


def personal(client: httpx.Client) -> str:
    library_id: str = client.get("/api/libraries/personal").json()["id"]
    return library_id


def proppatch_body(props: str) -> str:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:" '
        f'xmlns:e="{NS}"><D:set><D:prop>{props}</D:prop></D:set></D:propertyupdate>'
    )


def many(count: int, value: str = "", start: int = 0) -> str:
    return "".join(f"<e:p{i}>{value}</e:p{i}>" for i in range(start, start + count))


def propstat_codes(reply: httpx.Response) -> dict[str, int]:
    """Clark name -> status of each property in a multistatus."""
    found: dict[str, int] = {}
    for propstat in ElementTree.fromstring(reply.content).iter(f"{DAV}propstat"):
        code = int((propstat.findtext(f"{DAV}status") or "HTTP/1.1 0").split()[1])
        for prop in propstat.iter(f"{DAV}prop"):
            for element in prop:
                found[element.tag] = code
    return found


def dead_properties(client: httpx.Client, path: str) -> dict[str, ElementTree.Element]:
    """The properties in the NS namespace an allprop PROPFIND (Depth 0) returns with 200."""
    body = '<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
    reply = client.request("PROPFIND", path, content=body, headers={"Depth": "0"})
    assert reply.status_code == 207, (reply.status_code, reply.text[:2000])
    found: dict[str, ElementTree.Element] = {}
    for propstat in ElementTree.fromstring(reply.content).iter(f"{DAV}propstat"):
        status = propstat.findtext(f"{DAV}status") or ""
        assert " 500 " not in status, reply.text[:3000]
        for prop in propstat.iter(f"{DAV}prop"):
            for element in prop:
                if " 200 " in status and not element.tag.startswith(DAV):
                    found[element.tag] = element
    return found


class Bystander:
    """Another tenant's user writing through the JSON API in a loop while something else
    runs; records how long each write took."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with session(self.server, GINA) as gina:
            library = personal(gina)
            number = 0
            while not self._stop.is_set():
                number += 1
                started = time.monotonic()
                reply = gina.put(
                    f"/api/libraries/{library}/content/bystander-{number % 5}.txt",
                    content=f"write {number}".encode(),
                )
                self.latencies.append(time.monotonic() - started)
                self._started.set()
                if reply.status_code not in (200, 201):
                    self.failures.append(f"{reply.status_code} {reply.text[:200]}")
                time.sleep(0.05)

    def __enter__(self) -> Bystander:
        self._thread.start()
        assert self._started.wait(timeout=60), "the bystander could not write at all"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=120)

    def check(self) -> None:
        assert self.latencies, "the bystander wrote nothing"
        assert not self.failures, self.failures
        assert max(self.latencies) < NORMAL_LATENCY, sorted(self.latencies)[-5:]


def offline(server: Server, work: Callable[[Services], Any]) -> Any:
    """Stop the server, run ``work`` on the deployment's core services in-process, start the
    server again on the same ports."""
    assert server.terminate() == 0

    async def run() -> Any:
        async with open_services(load_settings(server.data, environ={})) as services:
            return await work(services)

    try:
        return asyncio.run(run())
    finally:
        server.start()


# --- 1. one user's PROPPATCH or COPY stalls every tenant's writes ----------------------


def test_proppatch_with_twenty_thousand_properties_stalls_every_tenant(server: Server) -> None:
    path = f"{HOME}/twenty-thousand.txt"
    with dav(server) as alice, Bystander(server) as gina:
        assert alice.put(path, content=b"t").status_code == 201
        started = time.monotonic()
        reply = alice.request("PROPPATCH", path, content=proppatch_body(many(20_000)))
        took = time.monotonic() - started
        assert reply.status_code == 507, (reply.status_code, reply.text[:500])
        assert took < NORMAL_LATENCY, f"refusing took {took:.1f}s"
        assert not dead_properties(alice, path)  # nothing of it was stored
        time.sleep(0.5)
    gina.check()


def test_maximal_proppatch_and_copy_stall_another_tenants_put(server: Server) -> None:
    """1,000 properties (the most a resource holds, 1 MiB of values in all) set 200 at a time
    (the most one request may), then PROPPATCH and COPY of that file side by side with
    another tenant's uploads."""
    path = f"{HOME}/full-of-properties.txt"
    value = "v" * 900  # stored as the element: about 960 characters each
    with dav(server) as alice:
        assert alice.put(path, content=b"f").status_code == 201
        for start in range(0, 1000, 200):
            reply = alice.request(
                "PROPPATCH", path, content=proppatch_body(many(200, value, start))
            )
            assert reply.status_code == 207, reply.text[:500]
            assert set(propstat_codes(reply).values()) == {200}, reply.text[:500]
        assert len(dead_properties(alice, path)) == 1000
        # one more is over the limit: refused with 507, the rest of the request with it
        reply = alice.request("PROPPATCH", path, content=proppatch_body(many(1, "x", 5000)))
        assert reply.status_code == 207
        assert set(propstat_codes(reply).values()) == {507}, reply.text[:500]

    errors: list[str] = []

    def hammer() -> None:
        with dav(server) as attacker:
            for round_ in range(4):
                reply = attacker.request(
                    "PROPPATCH", path, content=proppatch_body(many(200, "w" * 900))
                )
                if reply.status_code != 207:
                    errors.append(f"PROPPATCH {reply.status_code}")
                copy = attacker.request(
                    "COPY", path,
                    headers={"Destination": f"{server.url}/dav{HOME}/copy-{round_}.txt"},
                )  # fmt: skip
                if copy.status_code not in (201, 204):
                    errors.append(f"COPY {copy.status_code} {copy.text[:200]}")

    with Bystander(server) as gina:
        time.sleep(0.3)
        worker = threading.Thread(target=hammer)
        worker.start()
        worker.join(timeout=300)
        time.sleep(0.3)
    assert not errors, errors
    gina.check()
    with dav(server) as alice:
        assert len(dead_properties(alice, f"{HOME}/copy-3.txt")) == 1000


def test_property_value_and_name_limits(server: Server) -> None:
    path = f"{HOME}/limits.txt"
    with dav(server) as alice:
        assert alice.put(path, content=b"l").status_code == 201
        big = alice.request("PROPPATCH", path, content=proppatch_body(many(1, "x" * 70_000)))
        assert big.status_code == 207
        assert propstat_codes(big) == {f"{{{NS}}}p0": 507}
        # values that fit one by one but not together (1 MiB of values per resource)
        first = alice.request("PROPPATCH", path, content=proppatch_body(many(10, "y" * 60_000)))
        assert set(propstat_codes(first).values()) == {200}, first.text[:300]
        crowd = alice.request(
            "PROPPATCH", path, content=proppatch_body(many(10, "y" * 60_000, start=10))
        )
        assert crowd.status_code == 207
        assert set(propstat_codes(crowd).values()) == {507}
        assert len(dead_properties(alice, path)) == 10


# --- 2. huge integers from a request give 500 -------------------------------------------


HUGE = "1" + "0" * 22  # 23 digits: past SQLite's 64-bit integers


def test_huge_integers_in_query_parameters_give_500(server: Server) -> None:
    with session(server, ALICE) as alice:
        library = personal(alice)
        assert alice.put(f"/api/libraries/{library}/content/n.txt", content=b"n").status_code == 201
        for url, name in [
            (f"/api/audit?after={HUGE}", "after"),
            (f"/api/audit?limit={HUGE}", "limit"),
            (f"/api/audit?after=-{HUGE}", "after"),
            (f"/api/libraries/{library}/content/n.txt?version={HUGE}", "version"),
            (f"/api/libraries/{library}/content/n.txt?version=-1", "version"),
            (f"/api/search?q=n&limit={HUGE}", "limit"),
        ]:
            reply = alice.get(url)
            assert reply.status_code == 400, (url, reply.status_code, reply.text)
            assert name in reply.json()["message"], (url, reply.text)


def test_huge_integers_in_json_fields_give_500(server: Server) -> None:
    big = 10**40
    with session(server, ALICE) as alice:
        library = personal(alice)
        assert alice.put(f"/api/libraries/{library}/content/j.txt", content=b"j").status_code in (
            200, 201,
        )  # fmt: skip
        lib = f"/api/libraries/{library}"
        for method, url, payload, name in [
            ("POST", "/api/libraries", {"name": "big-q", "quota_bytes": big}, "quota_bytes"),
            ("POST", "/api/libraries", {"name": "big-v", "keep_versions": big}, "keep_versions"),
            ("POST", "/api/libraries", {"name": "big-d", "keep_days": big}, "keep_days"),
            ("POST", "/api/libraries", {"name": "neg-q", "quota_bytes": -5}, "quota_bytes"),
            ("POST", f"{lib}/restore-version", {"path": "j.txt", "version": big}, "version"),
            ("PUT", "/api/labels/HUGE", {"rank": big}, "rank"),
            ("PUT", "/api/labels/HUGE", {"rank": -big}, "rank"),
            ("POST", f"{lib}/locks", {"path": "j.txt", "seconds": big}, "seconds"),
        ]:
            reply = alice.request(method, url, json=payload)
            assert reply.status_code == 400, (url, payload, reply.status_code, reply.text)
            assert name in reply.json()["message"], (url, reply.text)
        # in range still works
        assert alice.put("/api/labels/FINE", json={"rank": 2**62}).status_code == 200


def test_huge_integers_in_cli_options_crash(server: Server) -> None:
    for option, args in [
        ("--quota-bytes", ("library", "create", "cli-big", "--tenant", "acme")),
        ("--keep-days", ("library", "create", "cli-days", "--tenant", "acme")),
        ("--rank", ("label", "define", "CLI-BIG", "--tenant", "acme")),
    ]:
        with pytest.raises(CliError) as refused:
            cli(server.data, *args, option, HUGE)
        assert "Traceback" not in str(refused.value), str(refused.value)[-2000:]
        assert option in str(refused.value)
    listed = cli(server.data, "library", "list", "--tenant", "acme")
    assert "cli-big" not in listed and "cli-days" not in listed


def test_deeply_nested_json_and_lone_surrogates_give_500(server: Server) -> None:
    with session(server, ALICE) as alice:
        library = personal(alice)
        assert alice.put(f"/api/libraries/{library}/content/s.txt", content=b"s").status_code in (
            200, 201,
        )  # fmt: skip
        json_type = {"Content-Type": "application/json"}
        for url, method, raw in [
            ("/api/login", "POST", b"[" * 60_000),
            ("/api/login", "POST", b'{"a":' * 10_000 + b"1" + b"}" * 10_000),
            (f"/api/libraries/{library}/metadata/s.txt", "PATCH",
             b'{"properties": {"{urn:x}a": "\\ud800"}}'),
            (f"/api/libraries/{library}/metadata/s.txt", "PATCH", b'{"title": "\\udfff"}'),
            ("/api/libraries", "POST", b'{"name": "x\\ud800"}'),
        ]:  # fmt: skip
            reply = alice.request(method, url, content=raw, headers=json_type)
            assert reply.status_code == 400, (url, raw[:40], reply.status_code, reply.text[:200])
        for name in ("{urn:x}1bad", "has space", "{urn:x}", "{a{b}c", "{urn:x\u0000}a"):
            reply = alice.patch(
                f"/api/libraries/{library}/metadata/s.txt", json={"properties": {name: "v"}}
            )
            assert reply.status_code == 400, (name, reply.status_code, reply.text[:200])
        too_many = {f"{{urn:x}}p{i}": "v" for i in range(201)}
        reply = alice.patch(
            f"/api/libraries/{library}/metadata/s.txt", json={"properties": too_many}
        )
        assert reply.status_code == 400 and "200" in reply.json()["message"]
    assert "Traceback" not in server.output()


# --- 3. WebDAV odds: a broken Destination, an unresolved entity ---------------------------


def test_destination_with_a_broken_ipv6_host_gives_500(server: Server) -> None:
    path = f"{HOME}/destination.txt"
    with dav(server) as alice:
        assert alice.put(path, content=b"d").status_code == 201
        for method in ("COPY", "MOVE"):
            for destination in ("http://[::1", "http://[::1/x", "http://[zz]/x", "http://a:b:c/x"):
                reply = alice.request(method, path, headers={"Destination": destination})
                assert reply.status_code == 400, (method, destination, reply.status_code)
            foreign = alice.request(
                method, path, headers={"Destination": "http://elsewhere.example/dav/x"}
            )
            assert foreign.status_code == 502, (method, foreign.status_code)
        assert alice.get(path).content == b"d"


def test_proppatch_with_an_unresolved_entity_is_stored_and_breaks_propfind(
    server: Server,
) -> None:
    path = f"{HOME}/entity.txt"
    with dav(server) as alice:
        assert alice.put(path, content=b"e").status_code == 201
        reply = alice.request("PROPPATCH", path, content=proppatch_body("<e:x>&xxe;</e:x>"))
        assert reply.status_code == 400, (reply.status_code, reply.text[:500])
        declared = (
            '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
            + proppatch_body("<e:x>&xxe;</e:x>").partition("?>")[2]
        )
        assert alice.request("PROPPATCH", path, content=declared).status_code == 400
        assert not dead_properties(alice, path)


def test_a_stored_property_that_does_not_parse_breaks_propfind(server: Server) -> None:
    """Values planted below the front ends (an older version, the JSON API's plain text, a
    row written by hand): every PROPFIND still answers, never 500."""
    path = f"{HOME}/planted.txt"
    with dav(server) as alice:
        assert alice.put(path, content=b"p").status_code == 201
    planted = {
        f"{{{NS}}}entity": f'<x:entity xmlns:x="{NS}">&xxe;</x:entity>',
        f"{{{NS}}}plain": "just text & <angles>",
        f"{{{NS}}}control": "bell\x07 and nul\x00",
        f"{{{NS}}}other-tag": f'<x:different xmlns:x="{NS}">v</x:different>',
        f"{{{NS}}}dtd": f'<!DOCTYPE x [<!ENTITY a "aaa">]><x:dtd xmlns:x="{NS}">&a;</x:dtd>',
        f"{{{NS}}}1 not a name": "v",
        "no namespace and spaces": "v",
    }

    async def plant(services: Services) -> None:
        async with transaction(services.db, write=True) as tx:
            tenant = await tx.tenants.by_name("acme")
            scoped = await tx.scoped(TenantScope(tenant["id"]))
            library = next(row for row in await scoped.libraries.all() if row["owner_id"])
            node = (await scoped.nodes.root(library["id"]))["id"]
            node = (await scoped.nodes.child(node, "planted.txt"))["id"]
            for name, value in planted.items():
                await scoped.props.put(node, name, value)

    offline(server, plant)
    with dav(server) as alice:
        found = dead_properties(alice, path)
        assert found[f"{{{NS}}}plain"].text == "just text & <angles>"
        assert found[f"{{{NS}}}entity"].text is not None
        assert f"{{{NS}}}other-tag" in found and f"{{{NS}}}dtd" in found
        assert "bell" in (found[f"{{{NS}}}control"].text or "")
        listing = alice.request("PROPFIND", HOME, headers={"Depth": "1"})
        assert listing.status_code == 207 and " 500 " not in listing.text
        named = alice.request(
            "PROPFIND", path, headers={"Depth": "0"},
            content=f'<D:propfind xmlns:D="DAV:"><D:prop><e:entity xmlns:e="{NS}"/>'
            "</D:prop></D:propfind>",
        )  # fmt: skip
        assert propstat_codes(named) == {f"{{{NS}}}entity": 200}
    assert "Traceback" not in server.output()


# --- 4. siblings: bodies, XML bombs, headers, paths -------------------------------------


def test_xml_bombs_and_deep_nesting_are_refused_at_the_door(server: Server) -> None:
    path = f"{HOME}/bombs.txt"
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9))
        + "]>"
    )
    deep = "<e:n>" * 5000 + "</e:n>" * 5000
    with dav(server) as alice, Bystander(server) as gina:
        assert alice.put(path, content=b"b").status_code == 201
        for method, body in [
            ("PROPPATCH", laughs + proppatch_body("<e:x>&j;</e:x>").partition("?>")[2]),
            ("PROPFIND", laughs + '<D:propfind xmlns:D="DAV:"><D:prop>&j;</D:prop></D:propfind>'),
            ("LOCK", laughs + '<D:lockinfo xmlns:D="DAV:"><D:owner>&j;</D:owner></D:lockinfo>'),
            ("PROPPATCH", proppatch_body(deep)),
            ("PROPPATCH", "<not-closed"),
            ("PROPFIND", '<D:propfind xmlns:D="DAV:"><D:prop>'),
        ]:
            started = time.monotonic()
            reply = alice.request(method, path, content=body, headers={"Depth": "0"})
            assert reply.status_code == 400, (method, reply.status_code, reply.text[:300])
            assert time.monotonic() - started < NORMAL_LATENCY
        assert not dead_properties(alice, path)
    gina.check()


def test_oversized_dav_request_bodies_are_read_into_memory(server: Server) -> None:
    path = f"{HOME}/oversized.txt"
    with dav(server) as alice:
        assert alice.put(path, content=b"o").status_code == 201
        huge = proppatch_body(many(1, "z" * (3 * 1024 * 1024)))
        reply = alice.request("PROPPATCH", path, content=huge)
        assert reply.status_code == 413, reply.status_code
        names = "".join(f"<e:q{i}/>" for i in range(5000))
        asking = f'<D:propfind xmlns:D="DAV:" xmlns:e="{NS}"><D:prop>{names}</D:prop></D:propfind>'
        reply = alice.request("PROPFIND", path, content=asking, headers={"Depth": "0"})
        assert reply.status_code == 413, reply.status_code
        destination = {"Destination": f"{server.url}/dav{HOME}/oversized-copy.txt"}
        reply = alice.request("COPY", path, content=b"x" * (3 * 1024 * 1024), headers=destination)
        assert reply.status_code == 413, reply.status_code
        assert alice.request("PROPFIND", path, headers={"Depth": "0"}).status_code == 207


def test_lock_with_an_absurd_timeout(server: Server) -> None:
    path = f"{HOME}/timeout.txt"
    lockinfo = (
        '<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
        "<D:locktype><D:write/></D:locktype><D:owner>t</D:owner></D:lockinfo>"
    )
    with dav(server) as alice:
        assert alice.put(path, content=b"t").status_code == 201
        for timeout in (f"Second-{HUGE}", "Second-" + "9" * 5000, "Infinite, Second-4100000000",
                        "Second--5", "Second-0", "garbage", "Second-1" + "0" * 17):  # fmt: skip
            reply = alice.request("LOCK", path, content=lockinfo, headers={"Timeout": timeout})
            assert reply.status_code == 200, (timeout, reply.status_code, reply.text[:300])
            token = reply.headers["lock-token"]
            given = ElementTree.fromstring(reply.content).findtext(f".//{DAV}timeout") or ""
            assert given.startswith("Second-"), (timeout, given)
            assert 0 < int(given.removeprefix("Second-")) <= 7 * 24 * 3600, (timeout, given)
            unlocked = alice.request("UNLOCK", path, headers={"Lock-Token": token})
            assert unlocked.status_code == 204
        # an owner is shown in every lockdiscovery of everything below the lock: bounded
        huge_owner = lockinfo.replace("<D:owner>t</D:owner>", f"<D:owner>{'o' * 10_000}</D:owner>")
        assert alice.request("LOCK", path, content=huge_owner).status_code == 400


def test_range_with_a_five_thousand_digit_position_gives_500(server: Server) -> None:
    path = f"{HOME}/range.txt"
    body = b"0123456789" * 100
    with dav(server) as alice:
        assert alice.put(path, content=body).status_code == 201
        for header, status, content in [
            ("bytes=1-" + "9" * 5000, 206, body[1:]),
            ("bytes=-" + "9" * 5000, 206, body),
            ("bytes=" + "9" * 5000 + "-", 416, None),
            ("bytes=10-19", 206, body[10:20]),
        ]:
            reply = alice.get(path, headers={"Range": header})
            assert reply.status_code == status, (header[:20], reply.status_code)
            if content is not None:
                assert reply.content == content


def test_odd_depth_and_overwrite_headers(server: Server) -> None:
    path = f"{HOME}/depth.txt"
    with dav(server) as alice:
        assert alice.put(path, content=b"d").status_code == 201
        for method, headers in [
            ("PROPFIND", {"Depth": "2"}),
            ("PROPFIND", {"Depth": "-1"}),
            ("PROPFIND", {"Depth": "1" + "0" * 30}),
            ("PROPPATCH", {"Depth": "infinity"}),
            ("COPY", {"Depth": "7", "Destination": f"{server.url}/dav{HOME}/d2.txt"}),
            ("COPY", {"Overwrite": "maybe", "Destination": f"{server.url}/dav{HOME}/d2.txt"}),
        ]:
            reply = alice.request(method, path, headers=headers, content=b"")
            assert reply.status_code == 400, (method, headers, reply.status_code)


def test_propfind_depth_infinity_over_a_big_tree(server: Server) -> None:
    """RFC 4918 9.1 lets a server refuse Depth: infinity (403, DAV:propfind-finite-depth);
    walking a whole library into one in-memory reply is not something one request gets."""
    with dav(server) as alice:
        for headers in ({"Depth": "infinity"}, {"Depth": "Infinity"}, {}):
            reply = alice.request("PROPFIND", HOME, headers=headers)
            assert reply.status_code == 403, (headers, reply.status_code)
            assert "propfind-finite-depth" in reply.text


TRAVERSALS = [
    "..", "%2e%2e", "%2E%2E/%2e%2e", "..%2f..%2f", "a/../../..", "%00", "x%00y", "%c0%ae%c0%ae",
    "%ff%fe", "%e0%80%ae", "%ed%a0%80", "con%0aname", "%5c..%5c", "\u00e9%cc%81", "~" * 300,
]  # fmt: skip


def test_path_traversal_and_broken_names_in_dav_urls(server: Server) -> None:
    with dav(server) as alice:
        assert alice.request("MKCOL", f"{HOME}/walls").status_code == 201
        for name in TRAVERSALS:
            for method in ("GET", "PUT", "PROPFIND", "MKCOL", "DELETE", "LOCK"):
                url = f"{server.url}/dav{HOME}/walls/{name}"
                reply = alice.request(
                    method, httpx.URL(url), content=b"x" if method == "PUT" else b""
                )
                assert reply.status_code < 500, (method, name, reply.status_code, reply.text[:300])
            destination = f"{server.url}/dav{HOME}/walls/{quote(name, safe='%/~')}"
            reply = alice.request(
                "COPY", f"{HOME}/walls", headers={"Destination": destination, "Depth": "0"}
            )
            assert reply.status_code < 500, ("COPY", name, reply.status_code, reply.text[:300])
        listed = alice.request("PROPFIND", HOME, headers={"Depth": "1"})
        assert listed.status_code == 207
        hrefs = [
            unquote(h.text or "") for h in ElementTree.fromstring(listed.content).iter(f"{DAV}href")
        ]
        assert all(h.startswith(f"/dav{HOME}/") for h in hrefs), hrefs
    assert "Traceback" not in server.output()


def test_delete_of_an_index_reached_through_dot_dot_slash_trashes_every_library(
    server: Server,
) -> None:
    """``%2f`` is decoded before routing, so ``a/..%2f..%2f`` names ``/dav/files/``; wsgidav
    deleted an index by deleting everything it lists, one by one."""
    canary = f"{HOME}/canary.txt"
    with dav(server) as alice:
        assert alice.put(canary, content=b"alive").status_code in (201, 204)
        assert alice.request("MKCOL", f"{HOME}/through").status_code == 201
        here = f"{server.url}/dav{HOME}/through"
        for method, url, headers in [
            ("DELETE", f"{here}/..%2f..%2f", {}),
            ("DELETE", f"{server.url}/dav/files/", {}),
            ("DELETE", f"{server.url}/dav/libraries/", {}),
            ("DELETE", f"{server.url}/dav/", {}),
            ("MOVE", f"{server.url}/dav/files/", {"Destination": f"{here}/moved"}),
            ("COPY", f"{here}/..%2f..%2f", {"Destination": f"{here}/copied"}),
        ]:
            reply = alice.request(method, httpx.URL(url), headers=headers)
            assert reply.status_code == 403, (method, url, reply.status_code, reply.text[:300])
        assert alice.get(canary).content == b"alive"
        assert (
            alice.request("PROPFIND", f"{HOME}/through", headers={"Depth": "0"}).status_code == 207
        )


def test_path_traversal_and_broken_names_in_api_paths(server: Server) -> None:
    with session(server, ALICE) as alice:
        library = personal(alice)
        for name in TRAVERSALS:
            for method, kind in [("GET", "content"), ("PUT", "content"), ("GET", "nodes"),
                                 ("POST", "folders"), ("GET", "metadata"), ("DELETE", "nodes")]:  # fmt: skip
                url = httpx.URL(f"{server.url}/api/libraries/{library}/{kind}/{name}")
                reply = alice.request(method, url, content=b"x" if method == "PUT" else None)
                assert reply.status_code < 500, (method, kind, name, reply.status_code)
        for bad in ("%00", quote("\u0000"), "..", "x" * 5000):
            reply = alice.get(httpx.URL(f"{server.url}/api/libraries/{bad}/nodes/"))
            assert reply.status_code < 500, (bad, reply.status_code)
    assert "Traceback" not in server.output()


def test_oversized_headers_and_request_lines(server: Server) -> None:
    with dav(server) as alice:
        for headers in [{"X-Big": "a" * 100_000}, {f"X-{i}": "b" for i in range(2000)},
                        {"Destination": "http://x/" + "c" * 100_000},
                        {"If": "(<" + "d" * 100_000 + ">)"}]:  # fmt: skip
            try:
                reply = alice.request("PROPFIND", HOME, headers={"Depth": "0", **headers})
            except httpx.TransportError:
                continue  # the server may just close the connection
            assert reply.status_code < 500, (list(headers)[:1], reply.status_code)
        long_path = "/".join(["seg"] * 5000)
        reply = alice.request("PROPFIND", f"{HOME}/{long_path}", headers={"Depth": "0"})
        assert reply.status_code < 500
    with httpx.Client(base_url=server.url, timeout=30) as anonymous:
        assert anonymous.get("/healthz").status_code == 200
