"""The documents JSON API, end to end: a real ``enclave serve`` on a loopback port, a deployment
prepared with the real CLI, spoken to with httpx.

One server serves the module (plus a second one whose loopback network counts as managed);
tests work in folders or libraries of their own, so they do not interfere.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from enclave.web.api import documents as api_documents
from enclave.web.api.openapi import openapi_path
from tests.frontends.webserver import Server, cli, cli_chains, copy_deployment, set_option

PASSWORD = "correct horse battery"
ALICE = "alice@acme.example"  # tenant administrator
BOB = "bob@acme.example"
CAROL = "carol@acme.example"
GINA = "gina@globex.example"  # another tenant


def _add_user(email: str, *flags: str) -> tuple[tuple[str, ...], str]:
    return ("user", "add", email, *flags, "--password-stdin"), PASSWORD + "\n"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("api_documents") / "template"
    cli(data, "init")
    set_option(data, "auth", "failure_delay_ms", "50")
    set_option(data, "auth", "address_failures", "1000")
    cli(data, "tenant", "create", "acme", "--domain", "acme.example")
    cli(data, "tenant", "create", "globex", "--domain", "globex.example")
    cli_chains(
        data,
        [[_add_user(ALICE, "--admin")], [_add_user(BOB)], [_add_user(CAROL)], [_add_user(GINA)]],
    )
    return data


@pytest.fixture(scope="module")
def server(template: Path) -> Iterator[Server]:
    running = Server(copy_deployment(template, template.parent / "main")).start()
    try:
        yield running
    finally:
        code = running.stop()
    assert code == 0, f"enclave serve exited {code} on SIGTERM"


@contextmanager
def session(server: Server, email: str) -> Iterator[httpx.Client]:
    """A client signed in through POST /api/login, carrying the session cookie it set."""
    with server.client() as client:
        reply = client.post("/api/login", json={"email": email, "password": PASSWORD})
        assert reply.status_code == 200, reply.text
        assert client.cookies.get("enclave_session")
        yield client


@pytest.fixture(scope="module")
def alice(server: Server) -> Iterator[httpx.Client]:
    with session(server, ALICE) as client:
        yield client


@pytest.fixture(scope="module")
def bob(server: Server) -> Iterator[httpx.Client]:
    with session(server, BOB) as client:
        yield client


@pytest.fixture(scope="module")
def carol(server: Server) -> Iterator[httpx.Client]:
    """By bearer token rather than cookie: both authenticate."""
    with server.client() as client:
        token = client.post("/api/login", json={"email": CAROL, "password": PASSWORD}).json()
    with server.client(headers={"Authorization": f"Bearer {token['token']}"}) as client:
        yield client


@pytest.fixture(scope="module")
def gina(server: Server) -> Iterator[httpx.Client]:
    with session(server, GINA) as client:
        yield client


def personal(client: httpx.Client) -> str:
    reply = client.get("/api/libraries/personal")
    assert reply.status_code == 200, reply.text
    library_id: str = reply.json()["id"]
    return library_id


def url(library_id: str, kind: str, path: str = "") -> str:
    return f"/api/libraries/{library_id}/{kind}/{quote(path)}"


def put(
    client: httpx.Client, library_id: str, path: str, data: Any, **headers: str
) -> httpx.Response:
    return client.put(url(library_id, "content", path), content=data, headers=headers)


def ok(reply: httpx.Response, status: int = 200) -> Any:
    assert reply.status_code == status, f"{reply.status_code} {reply.text}"
    return reply.json() if reply.content else None


def shared_library(alice: httpx.Client, name: str, **policy: int) -> str:
    library_id: str = ok(alice.post("/api/libraries", json={"name": name, **policy}), 201)["id"]
    return library_id


def try_grant(
    client: httpx.Client, library_id: str, path: str, kind: str, who: str | None, level: str
) -> httpx.Response:
    return client.post(
        f"/api/libraries/{library_id}/grants",
        json={"path": path, "subject_kind": kind, "subject": who, "level": level},
    )


def grant(client: httpx.Client, library_id: str, path: str, who: str, level: str) -> None:
    ok(try_grant(client, library_id, path, "user", who, level), 201)


# --- libraries and browsing -----------------------------------------------------------------


def test_libraries_personal_shared_and_authentication(
    server: Server, alice: httpx.Client, bob: httpx.Client
) -> None:
    with server.client() as anonymous:
        assert anonymous.get("/api/libraries").status_code == 401
        assert anonymous.get("/api/labels").status_code == 401
    mine = ok(bob.get("/api/libraries/personal"))
    assert mine["personal"] is True and mine["level"] == "manage" and mine["name"] == BOB
    assert ok(bob.get("/api/libraries/personal"))["id"] == mine["id"]  # created once
    assert ok(bob.get(f"/api/libraries/{mine['id']}"))["id"] == mine["id"]

    refused = bob.post("/api/libraries", json={"name": "Bobs"})
    assert refused.status_code == 403, refused.text
    created = ok(alice.post("/api/libraries", json={"name": "Handbook", "keep_versions": 2}), 201)
    assert created["personal"] is False and created["keep_versions"] == 2
    assert alice.post("/api/libraries", json={"name": "Handbook"}).status_code == 409
    assert alice.post("/api/libraries", json={"name": "X", "quota_bytes": "a"}).status_code == 400
    assert created["id"] in {lib["id"] for lib in ok(alice.get("/api/libraries"))}
    # bob has no grant there: the library does not exist for him
    assert created["id"] not in {lib["id"] for lib in ok(bob.get("/api/libraries"))}
    assert bob.get(f"/api/libraries/{created['id']}").status_code == 404
    assert bob.get(url(created["id"], "nodes")).status_code == 404


def test_browse_upload_download_head(bob: httpx.Client) -> None:
    lib = personal(bob)
    folder = ok(bob.post(url(lib, "folders", "browse")), 201)
    assert folder["folder"] is True and folder["path"] == "browse"
    assert bob.post(url(lib, "folders", "browse")).status_code == 409

    name = "browse/Grüße #1?.txt"
    reply = put(bob, lib, name, b"hello, world\n", **{"Content-Type": "text/plain"})
    node = ok(reply, 201)
    assert reply.headers["etag"] == f'"{node["etag"]}"'
    assert node["name"] == "Grüße #1?.txt" and node["size"] == 13 and node["version"] == 1

    listing = ok(bob.get(url(lib, "nodes", "browse")))
    assert [child["name"] for child in listing["children"]] == ["Grüße #1?.txt"]
    root = ok(bob.get(url(lib, "nodes")))
    assert root["path"] == "" and "browse" in {c["name"] for c in root["children"]}
    assert "children" not in ok(bob.get(url(lib, "nodes", name)))

    download = bob.get(url(lib, "content", name))
    assert download.status_code == 200 and download.content == b"hello, world\n"
    assert download.headers["etag"] == f'"{node["etag"]}"'
    assert download.headers["content-length"] == "13"
    assert download.headers["content-type"].startswith("text/plain")
    assert download.headers["content-disposition"].startswith("attachment;")
    assert download.headers["x-content-type-options"] == "nosniff"
    head = bob.head(url(lib, "content", name))
    assert head.status_code == 200 and head.content == b""
    assert (
        head.headers["content-length"] == "13" and head.headers["etag"] == download.headers["etag"]
    )
    cached = bob.get(url(lib, "content", name), headers={"If-None-Match": download.headers["etag"]})
    assert cached.status_code == 304

    assert bob.get(url(lib, "nodes", "browse/missing")).status_code == 404
    assert bob.get(url(lib, "content", "browse")).status_code == 409  # a folder
    assert put(bob, lib, "", b"x").status_code == 400  # the root has no name
    assert put(bob, lib, "browse/missing/x.txt", b"x").status_code == 404


def test_streamed_upload_of_20_megabytes(bob: httpx.Client) -> None:
    lib = personal(bob)
    ok(bob.post(url(lib, "folders", "big")), 201)
    rng = random.Random(20)
    sent = hashlib.sha256()
    size = 20 * 1024 * 1024

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
        for _ in range(size // (256 * 1024)):
            chunk = rng.randbytes(256 * 1024)
            sent.update(chunk)
            yield chunk

    node = ok(put(bob, lib, "big/blob.bin", chunks()), 201)
    assert node["size"] == size
    received = hashlib.sha256()
    with bob.stream("GET", url(lib, "content", "big/blob.bin")) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-length"] == str(size)
        assert reply.headers["content-type"] == "application/octet-stream"
        for chunk in reply.iter_bytes():
            received.update(chunk)
    assert received.hexdigest() == sent.hexdigest()


def test_versions_conditional_writes_and_restore(bob: httpx.Client) -> None:
    lib = personal(bob)
    ok(bob.post(url(lib, "folders", "versions")), 201)
    path = "versions/report.txt"
    first = ok(put(bob, lib, path, b"one", **{"If-None-Match": "*"}), 201)
    assert put(bob, lib, path, b"nope", **{"If-None-Match": "*"}).status_code == 412
    second = ok(put(bob, lib, path, b"two", **{"If-Match": f'"{first["etag"]}"'}))
    assert second["version"] == 2 and second["etag"] != first["etag"]
    stale = put(bob, lib, path, b"lost update", **{"If-Match": f'"{first["etag"]}"'})
    assert stale.status_code == 412 and stale.json()["error"] == "precondition_failed"
    assert ok(put(bob, lib, path, b"three", **{"If-Match": "*"}))["version"] == 3
    assert put(bob, lib, "versions/none.txt", b"x", **{"If-Match": "*"}).status_code == 412

    versions = ok(bob.get(url(lib, "versions", path)))
    assert sorted((v["number"], v["size"], v["current"]) for v in versions) == [
        (1, 3, False), (2, 3, False), (3, 5, True),
    ]  # fmt: skip
    old = bob.get(url(lib, "content", path), params={"version": 1})
    assert old.content == b"one" and old.headers["content-length"] == "3"
    assert old.headers["etag"] != bob.get(url(lib, "content", path)).headers["etag"]
    assert bob.get(url(lib, "content", path), params={"version": 9}).status_code == 404

    restored = ok(
        bob.post(f"/api/libraries/{lib}/restore-version", json={"path": path, "version": 1})
    )
    assert restored["version"] == 4
    assert bob.get(url(lib, "content", path)).content == b"one"
    bad = bob.post(f"/api/libraries/{lib}/restore-version", json={"path": path, "version": "1"})
    assert bad.status_code == 400


def test_quota_exceeded_is_507(alice: httpx.Client) -> None:
    lib = shared_library(alice, "Tiny", quota_bytes=10)
    assert put(alice, lib, "fits.txt", b"12345").status_code == 201
    reply = put(alice, lib, "overflows.txt", b"1234567890")
    assert reply.status_code == 507 and reply.json()["error"] == "quota_exceeded"


# --- locks ----------------------------------------------------------------------------------


def test_check_out_blocks_others_until_check_in(alice: httpx.Client, bob: httpx.Client) -> None:
    lib = shared_library(alice, "Team")
    grant(alice, lib, "", BOB, "write")
    ok(put(alice, lib, "plan.txt", b"v1"), 201)
    locks = f"/api/libraries/{lib}/locks"

    lock = ok(bob.post(locks, json={"path": "plan.txt", "seconds": 600}), 201)
    assert lock["token"].startswith("opaquelocktoken:") and lock["depth"] == "0"
    assert lock["principal_name"] == BOB and lock["timeout"] == 600
    listed = ok(alice.get(locks, params={"path": "plan.txt"}))
    assert [item["token"] for item in listed] == [lock["token"]]

    refused = put(alice, lib, "plan.txt", b"alice's edit")
    assert refused.status_code == 423 and refused.json()["error"] == "locked"
    assert alice.delete(url(lib, "nodes", "plan.txt")).status_code == 423
    assert alice.post(locks, json={"path": "plan.txt"}).status_code == 423
    assert ok(put(bob, lib, "plan.txt", b"bob's edit"))["version"] == 2  # the holder writes

    token = quote(lock["token"])
    refreshed = ok(bob.post(f"{locks}/{token}/refresh", json={"seconds": 120}))
    assert refreshed["timeout"] == 120
    assert alice.post(f"{locks}/{token}/refresh", json={}).status_code == 403
    assert bob.delete(f"{locks}/{token}").status_code == 204
    assert bob.delete(f"{locks}/{token}").status_code == 409  # gone
    assert ok(put(alice, lib, "plan.txt", b"alice's edit"))["version"] == 3

    # a manager (alice administers shared libraries) may break someone's lock
    again = ok(bob.post(locks, json={"path": "", "depth": "infinity"}), 201)
    assert put(alice, lib, "new.txt", b"x").status_code == 423
    assert alice.delete(f"{locks}/{quote(again['token'])}").status_code == 204
    assert put(alice, lib, "new.txt", b"x").status_code == 201
    assert bob.post(locks, json={"path": "plan.txt", "depth": "1"}).status_code == 400


# --- metadata and labels --------------------------------------------------------------------


def test_metadata_patch(bob: httpx.Client) -> None:
    lib = personal(bob)
    ok(bob.post(url(lib, "folders", "meta")), 201)
    ok(put(bob, lib, "meta/doc.txt", b"text"), 201)
    meta = url(lib, "metadata", "meta/doc.txt")
    assert ok(bob.get(meta)) == {
        "title": None, "description": None, "tags": [], "label": None, "properties": {},
    }  # fmt: skip
    changed = ok(
        bob.patch(
            meta,
            json={"title": "Q3", "tags": ["b", "a", "a"], "properties": {"{urn:x}color": "blue"}},
        )
    )
    assert changed["title"] == "Q3" and changed["tags"] == ["a", "b"]
    assert changed["properties"] == {"{urn:x}color": "blue"}
    changed = ok(
        bob.patch(meta, json={"description": "numbers", "properties": {"{urn:x}color": None}})
    )
    assert changed["title"] == "Q3" and changed["description"] == "numbers"
    assert changed["properties"] == {}
    assert ok(bob.patch(meta, json={"title": None}))["title"] is None
    assert bob.patch(meta, json={"title": 5}).status_code == 400
    assert bob.patch(meta, json={"tags": [1]}).status_code == 400
    assert bob.patch(meta, json={"properties": {"a": 1}}).status_code == 400
    assert bob.patch(meta, json={"label": "NO-SUCH-LABEL"}).status_code == 404
    assert bob.patch(meta, content=b"{}").status_code == 400  # not application/json


def test_labels_and_managed_download_only(
    server: Server, alice: httpx.Client, bob: httpx.Client
) -> None:
    assert bob.put("/api/labels/SECRET", json={"rank": 30}).status_code == 403
    label = ok(alice.put("/api/labels/SECRET", json={"rank": 30, "managed_download_only": True}))
    assert label == {
        "name": "SECRET", "rank": 30, "managed_download_only": True, "share_group": None,
    }  # fmt: skip
    assert alice.put("/api/labels/BAD", json={"rank": "high"}).status_code == 400
    assert "SECRET" in {item["name"] for item in ok(bob.get("/api/labels"))}

    lib = personal(bob)
    ok(bob.post(url(lib, "folders", "labels")), 201)
    ok(put(bob, lib, "labels/plans.txt", b"secret plans"), 201)
    assert (
        ok(bob.patch(url(lib, "metadata", "labels/plans.txt"), json={"label": "SECRET"}))["label"]
        == "SECRET"
    )
    refused = bob.get(url(lib, "content", "labels/plans.txt"))  # 127.0.0.1 is not managed here
    assert refused.status_code == 403 and "managed" in refused.json()["message"]
    assert bob.get(url(lib, "nodes", "labels/plans.txt")).status_code == 200  # metadata is fine
    assert alice.delete("/api/labels/SECRET").status_code == 409  # in use

    ok(bob.patch(url(lib, "metadata", "labels/plans.txt"), json={"label": None}))
    assert bob.get(url(lib, "content", "labels/plans.txt")).content == b"secret plans"
    assert alice.delete("/api/labels/SECRET").status_code == 204
    assert "SECRET" not in {item["name"] for item in ok(alice.get("/api/labels"))}
    assert alice.delete("/api/labels/SECRET").status_code == 404


def test_managed_network_may_download_labelled_documents(template: Path) -> None:
    data = copy_deployment(template, template.parent / "managed")
    set_option(data, "http", "managed_networks", '["10.0.0.0/8", "127.0.0.0/8"]')
    managed = Server(data).start()
    try:
        with session(managed, ALICE) as admin, session(managed, BOB) as user:
            ok(admin.put("/api/labels/TOP", json={"rank": 90, "managed_download_only": True}))
            lib = personal(user)
            ok(put(user, lib, "top.txt", b"eyes only"), 201)
            ok(user.patch(url(lib, "metadata", "top.txt"), json={"label": "TOP"}))
            assert user.get(url(lib, "content", "top.txt")).content == b"eyes only"
    finally:
        assert managed.stop() == 0


# --- trash, grants, move and copy, holds ----------------------------------------------------


def test_trash_restore_and_purge(bob: httpx.Client) -> None:
    lib = personal(bob)
    ok(bob.post(url(lib, "folders", "bin")), 201)
    ok(bob.post(url(lib, "folders", "bin/sub")), 201)
    ok(put(bob, lib, "bin/sub/a.txt", b"a"), 201)
    assert bob.delete(url(lib, "nodes", "bin/sub")).status_code == 204
    assert bob.get(url(lib, "nodes", "bin/sub/a.txt")).status_code == 404
    trash = ok(bob.get(f"/api/libraries/{lib}/trash"))
    item = next(entry for entry in trash if entry["name"] == "sub")
    assert item["folder"] is True and item["deleted_by"]

    restored = ok(bob.post(f"/api/libraries/{lib}/trash/{item['id']}/restore"))
    assert restored["path"] == "bin/sub"
    assert bob.get(url(lib, "content", "bin/sub/a.txt")).content == b"a"

    assert bob.delete(url(lib, "nodes", "bin/sub")).status_code == 204
    assert bob.delete(f"/api/libraries/{lib}/trash/{item['id']}").status_code == 204
    assert item["id"] not in {entry["id"] for entry in ok(bob.get(f"/api/libraries/{lib}/trash"))}
    assert bob.delete(f"/api/libraries/{lib}/trash/{item['id']}").status_code == 404
    assert bob.post(f"/api/libraries/{lib}/trash/{item['id']}/restore").status_code == 404
    assert bob.delete(url(lib, "nodes")).status_code == 403  # the root stays


def test_grants_and_isolation_between_users_and_tenants(
    bob: httpx.Client, carol: httpx.Client, gina: httpx.Client
) -> None:
    lib = personal(bob)
    ok(bob.post(url(lib, "folders", "shared")), 201)
    ok(put(bob, lib, "shared/notes.txt", b"for carol"), 201)
    ok(bob.post(url(lib, "folders", "private")), 201)
    ok(put(bob, lib, "private/diary.txt", b"mine"), 201)

    for path in ("", "shared", "shared/notes.txt", "private/diary.txt"):
        assert carol.get(url(lib, "nodes", path)).status_code == 404, path
    assert carol.get(url(lib, "content", "shared/notes.txt")).status_code == 404
    assert carol.get(f"/api/libraries/{lib}").status_code == 404
    assert put(carol, lib, "shared/x.txt", b"x").status_code == 404

    assert try_grant(bob, lib, "shared", "user", CAROL, "owner").status_code == 400
    assert try_grant(bob, lib, "shared", "user", "nobody@acme.example", "read").status_code == 404
    assert try_grant(carol, lib, "shared", "user", CAROL, "manage").status_code == 404
    grant(bob, lib, "shared", CAROL, "read")
    assert try_grant(carol, lib, "shared", "user", CAROL, "manage").status_code == 403
    assert carol.get(url(lib, "content", "shared/notes.txt")).content == b"for carol"
    assert [c["name"] for c in ok(carol.get(url(lib, "nodes", "shared")))["children"]] == [
        "notes.txt"
    ]
    assert ok(carol.get(url(lib, "nodes", "shared")))["level"] == "read"
    assert carol.get(url(lib, "nodes", "private/diary.txt")).status_code == 404
    assert put(carol, lib, "shared/x.txt", b"x").status_code == 403  # read only
    assert lib in {item["id"] for item in ok(carol.get("/api/libraries"))}

    # another tenant: nothing exists, whatever the id
    assert gina.get(f"/api/libraries/{lib}").status_code == 404
    assert gina.get(url(lib, "nodes", "shared")).status_code == 404
    assert gina.get(url(lib, "content", "shared/notes.txt")).status_code == 404
    assert put(gina, lib, "shared/x.txt", b"x").status_code == 404
    assert try_grant(gina, lib, "", "tenant", None, "read").status_code == 404
    assert lib not in {item["id"] for item in ok(gina.get("/api/libraries"))}


def test_move_and_copy_within_and_across_libraries(alice: httpx.Client, bob: httpx.Client) -> None:
    lib = personal(bob)
    ok(bob.post(url(lib, "folders", "moves")), 201)
    ok(put(bob, lib, "moves/a.txt", b"A"), 201)
    ok(put(bob, lib, "moves/b.txt", b"B"), 201)
    move, copy = f"/api/libraries/{lib}/move", f"/api/libraries/{lib}/copy"

    copied = ok(bob.post(copy, json={"from": "moves/a.txt", "to": "moves/a copy.txt"}), 201)
    assert copied["version"] == 1 and copied["path"] == "moves/a copy.txt"
    ok(bob.post(move, json={"from": "moves/a.txt", "to": "moves/c.txt"}), 201)
    assert bob.get(url(lib, "nodes", "moves/a.txt")).status_code == 404
    assert bob.get(url(lib, "content", "moves/c.txt")).content == b"A"
    assert bob.post(move, json={"from": "moves/c.txt", "to": "moves/b.txt"}).status_code == 412
    ok(bob.post(move, json={"from": "moves/c.txt", "to": "moves/b.txt", "overwrite": True}))
    assert bob.get(url(lib, "content", "moves/b.txt")).content == b"A"
    assert bob.post(move, json={"from": "moves", "to": "moves/inside"}).status_code == 409
    assert bob.post(move, json={"from": "moves/b.txt"}).status_code == 400

    team = shared_library(alice, "Crossing")
    grant(alice, team, "", BOB, "write")
    across = ok(
        bob.post(copy, json={"from": "moves/b.txt", "to_library": team, "to": "from-bob.txt"}),
        201,
    )
    assert across["library_id"] == team
    assert alice.get(url(team, "content", "from-bob.txt")).content == b"A"


def test_legal_hold_blocks_deletion(alice: httpx.Client, bob: httpx.Client) -> None:
    lib = shared_library(alice, "Evidence")
    grant(alice, lib, "", BOB, "write")
    ok(put(alice, lib, "exhibit.txt", b"exhibit"), 201)
    holds = f"/api/libraries/{lib}/holds"
    assert bob.post(holds, json={"path": "exhibit.txt", "legal_hold": True}).status_code == 403
    held = ok(alice.post(holds, json={"path": "exhibit.txt", "legal_hold": True}))
    assert held["legal_hold"] is True
    assert bob.delete(url(lib, "nodes", "exhibit.txt")).status_code == 403
    assert alice.post(holds, json={"path": "exhibit.txt"}).status_code == 400
    naive = alice.post(holds, json={"path": "exhibit.txt", "retain_until": "2030-01-01T00:00"})
    assert naive.status_code == 400
    dated = ok(
        alice.post(holds, json={"path": "exhibit.txt", "legal_hold": False,
                                "retain_until": "2000-01-01T00:00:00+00:00"})
    )  # fmt: skip
    assert dated["legal_hold"] is False and dated["retain_until"].startswith("2000-01-01")
    assert bob.delete(url(lib, "nodes", "exhibit.txt")).status_code == 204


# --- the description ------------------------------------------------------------------------


def test_search_finds_what_the_caller_may_read(bob: httpx.Client, carol: httpx.Client) -> None:
    """The server indexes in the background: a new document is found within two seconds."""
    lib = personal(bob)
    ok(put(bob, lib, "field-notes.txt", b"the <kingfisher> dived twice"), 201)
    deadline = time.monotonic() + 2
    while not (hits := ok(bob.get("/api/search", params={"q": "kingfish"}))["hits"]):
        assert time.monotonic() < deadline, "not searchable within 2 s of the PUT"
        time.sleep(0.05)
    assert [(h["path"], h["library_id"]) for h in hits] == [("field-notes.txt", lib)]
    assert "<b>" in hits[0]["snippet"] and "&lt;" in hits[0]["snippet"]  # escaped, marked
    assert ok(carol.get("/api/search", params={"q": "kingfisher"}))["hits"] == []
    assert bob.get("/api/search").status_code == 400


def _refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref":
                yield item
            else:
                yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)


def test_openapi_describes_every_documents_route(server: Server) -> None:
    with server.client() as anonymous:
        spec = ok(anonymous.get("/api/openapi.json"))
    assert spec["openapi"].startswith("3.") and spec["info"]["title"] and spec["info"]["version"]
    schemas = spec["components"]["schemas"]
    for ref in _refs(spec):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref

    documented: set[tuple[str, str]] = set()
    operation_ids: list[str] = []
    for path, item in spec["paths"].items():
        assert path.startswith("/api/")
        names = {part[1:-1] for part in path.split("/") if part.startswith("{")}
        for method, operation in item.items():
            assert method in {"get", "put", "post", "delete", "patch", "head"}
            assert operation["summary"] and operation["responses"]
            for status in operation["responses"]:
                assert status == "default" or 100 <= int(status) < 600
            path_params = [p for p in operation.get("parameters", []) if p["in"] == "path"]
            assert all(p["required"] for p in path_params), path
            assert {p["name"] for p in path_params} == names, path
            operation_ids.append(operation["operationId"])
            documented.add((path, method.upper()))
    assert len(operation_ids) == len(set(operation_ids))

    routed = {
        (openapi_path(route.path), method)
        for route in api_documents.routes
        for method in route.methods or ()
        if method != "HEAD"
    }
    documents = {(p, m) for p, m in routed if p.startswith(("/api/libraries", "/api/labels"))}
    assert documents, "no documents routes?"
    assert documents <= documented, documents - documented
    assert {(p, m) for p, m in documented if p.startswith(("/api/libraries", "/api/labels"))} == (
        documents
    )
    assert ("/api/libraries/{library_id}/content/{path}", "PUT") in documented
