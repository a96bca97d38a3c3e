"""The mail JSON API against a real ``enclave serve``: mail delivered over SMTP to its MX
listener, read, changed and sent with httpx; the OpenAPI description covers every route."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from enclave.web.api import mail as api_mail
from enclave.web.api.openapi import openapi_path
from tests.frontends.mailserver import MailServer
from tests.frontends.webserver import cli, cli_chains

PASSWORD = "correct horse battery"
ALICE, BOB = "alice@acme.example", "bob@acme.example"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailServer]:
    data: Path = tmp_path_factory.mktemp("api-mail") / "deployment"
    cli(data, "init")
    cli(data, "tenant", "create", "acme", "--domain", "acme.example")
    cli_chains(
        data,
        [
            [(("user", "add", ALICE, "--password-stdin"), PASSWORD + "\n")],
            [(("user", "add", BOB, "--password-stdin"), PASSWORD + "\n")],
        ],
    )
    served = MailServer(data).start()
    try:
        yield served
    finally:
        served.stop()


@contextlib.contextmanager
def signed_in(server: MailServer, email: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        reply = client.post("/api/login", json={"email": email, "password": PASSWORD})
        assert reply.status_code == 200, reply.text
        client.headers["authorization"] = f"Bearer {reply.json()['token']}"
        yield client


def deliver(server: MailServer, subject: str, attachment: bytes | None = None) -> None:
    message = EmailMessage()
    message["From"] = f"Alice <{ALICE}>"
    message["To"] = BOB
    message["Subject"] = subject
    message.set_content(f"body of {subject}")
    if attachment is not None:
        message.add_attachment(
            attachment, maintype="application", subtype="pdf", filename="report.pdf"
        )
    with server.mx() as client:
        client.send_message(message)


def test_folders_pages_reading_parts_and_changes(server: MailServer) -> None:
    for n in range(3):
        deliver(server, f"page test {n}", attachment=b"%PDF-" + bytes([n]) * 5000 if n else None)
    with signed_in(server, BOB) as bob:
        folders = {f["name"]: f for f in bob.get("/api/mail/folders").json()}
        assert folders["INBOX"]["total"] >= 3 and folders["INBOX"]["unseen"] >= 3
        assert {"Sent", "Drafts", "Trash"} <= set(folders)
        first = bob.get("/api/mail/messages", params={"limit": 2}).json()
        assert [m["subject"] for m in first["messages"]] == ["page test 2", "page test 1"]
        rest = bob.get("/api/mail/messages", params={"limit": 2, "offset": 2}).json()
        assert rest["messages"][0]["subject"] == "page test 0" and rest["total"] == first["total"]
        newest = first["messages"][0]
        assert newest["attachments"] and not newest["seen"]

        read = bob.get(f"/api/mail/messages/{newest['uid']}").json()
        assert read["text"].strip() == "body of page test 2" and read["sender"] == "Alice"
        [part] = read["attachments"]
        got = bob.get(f"/api/mail/messages/{newest['uid']}/parts/{part['index']}")
        assert got.content == b"%PDF-" + bytes([2]) * 5000
        assert got.headers["content-disposition"].startswith("attachment;")

        uid = newest["uid"]
        assert bob.patch(f"/api/mail/messages/{uid}", json={"flagged": True}).status_code == 204
        listed = bob.get("/api/mail/messages", params={"limit": 1}).json()["messages"][0]
        assert listed["flagged"] and listed["seen"]
        moved = bob.post(f"/api/mail/messages/{uid}/move", json={"target": "Archive"})
        assert moved.status_code == 204
        archived = bob.get("/api/mail/messages", params={"folder": "Archive"}).json()
        assert [m["subject"] for m in archived["messages"]] == ["page test 2"]
        gone = bob.get(f"/api/mail/messages/{uid}")
        assert gone.status_code == 404
        archived_uid = archived["messages"][0]["uid"]
        trashed = bob.delete(f"/api/mail/messages/{archived_uid}", params={"folder": "Archive"})
        assert trashed.status_code == 204
        trash = bob.get("/api/mail/messages", params={"folder": "Trash"}).json()
        assert [m["subject"] for m in trash["messages"]] == ["page test 2"]

        bad = bob.post(f"/api/mail/messages/{trash['messages'][0]['uid']}/move",
                       params={"folder": "Trash"}, json={"target": "Nowhere"})  # fmt: skip
        assert bad.status_code == 404
        assert bob.get("/api/mail/messages/0").status_code == 400
        assert bob.get("/api/mail/messages", params={"folder": "Nowhere"}).status_code == 404


def test_send_with_an_attachment_reaches_the_recipient(server: MailServer) -> None:
    payload = bytes(range(256)) * 300
    with signed_in(server, ALICE) as alice:
        sent = alice.post(
            "/api/mail/send",
            json={
                "to": f"Bob <{BOB}>",
                "subject": "Figures",
                "text": "See the attachment.",
                "attachments": [
                    {
                        "filename": "figures.bin",
                        "content_type": "application/octet-stream",
                        "data": base64.b64encode(payload).decode(),
                    }
                ],
            },
        )
        assert sent.status_code == 201, sent.text
        assert sent.json()["local"] == 1
        assert alice.get("/api/mail/messages", params={"folder": "Sent"}).json()["total"] >= 1
        refused = alice.post("/api/mail/send", json={"to": "nobody@acme.example"})
        assert refused.status_code == 400 and "no nobody@acme.example" in refused.text
        assert alice.post("/api/mail/send", json={"to": "not an address"}).status_code == 400
        assert alice.post("/api/mail/send", json={"to": BOB, "attachments": [{"data": "!"}]}
                          ).status_code == 400  # fmt: skip
    with signed_in(server, BOB) as bob:
        listed = bob.get("/api/mail/messages").json()["messages"]
        figures = next(m for m in listed if m["subject"] == "Figures")
        read = bob.get(f"/api/mail/messages/{figures['uid']}").json()
        [part] = read["attachments"]
        got = bob.get(f"/api/mail/messages/{figures['uid']}/parts/{part['index']}")
        assert got.content == payload and part["filename"] == "figures.bin"


def test_mail_routes_are_all_described_and_need_a_session(server: MailServer) -> None:
    with httpx.Client(base_url=server.url) as anonymous:
        spec = anonymous.get("/api/openapi.json").json()
        assert anonymous.get("/api/mail/folders").status_code == 401
    documented = {(path, method.upper()) for path, item in spec["paths"].items() for method in item}
    routed = {
        (openapi_path(route.path), method)
        for route in api_mail.routes
        for method in route.methods or ()
        if method != "HEAD"
    }
    assert routed and routed <= documented, routed - documented
    for name in ("MailPage", "MailMessage", "MailSend"):
        assert name in spec["components"]["schemas"]
