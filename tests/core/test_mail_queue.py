"""The outbound queue on real SQLite, with the network edge (the SMTP transport) replaced by
functions that answer or fail as a remote host might, and a fixed MX answer."""

from __future__ import annotations

from typing import Any

import pytest

from enclave.app import queue_policy
from enclave.backends.smtp_client import Outcome, ascii_form
from enclave.config import Settings
from enclave.core.mail.queue import OutboundQueue
from enclave.core.principal import Principal
from enclave.services import Services

RAW = b"From: <alice@acme.example>\r\nTo: <j\xc3\xb6rg@remote.example>\r\nSubject: hi\r\n\r\nHi\r\n"


async def one_mx(domain: str) -> list[str]:
    return ["127.0.0.1"]


def make_queue(services: Services, settings: Settings, transport: Any) -> OutboundQueue:
    return OutboundQueue(
        services.db,
        services.content,
        services.mail_store,
        services.mail_router,
        services.audit,
        services.authz,
        queue_policy(settings),
        transport,
        one_mx,
    )


async def rows(queue: OutboundQueue) -> list[Any]:
    return await queue.list_items(Principal.system("tester"))


@pytest.mark.parametrize(
    "error",
    [
        UnicodeEncodeError("ascii", "jörg", 1, 2, "ordinal not in range(128)"),
        ValueError("address contains a line break"),
        RuntimeError("anything at all"),
    ],
    ids=["unicode", "value", "runtime"],
)
async def test_queue_row_settles_whatever_the_transport_raises(
    services: Services, settings: Settings, two_tenants: dict[str, Principal], error: Exception
) -> None:
    """A transport that raises leaves the row queued for a retry with the reason, never
    "sending" with 0 attempts (a UnicodeEncodeError used to escape the run and strand it)."""
    calls: list[list[str]] = []

    async def failing(host: str, port: int, mail_from: str, recipients: list[str],
                      data: bytes, **_: Any) -> dict[str, Outcome]:  # fmt: skip
        calls.append(recipients)
        raise error

    queue = make_queue(services, settings, failing)
    await queue.enqueue(two_tenants["alice"], "alice@acme.example", ["jörg@remote.example"], RAW)
    assert await queue.run_once() == 1
    [item] = await rows(queue)
    assert calls == [["jörg@remote.example"]]
    assert (item.status, item.attempts) == ("queued", 1), item
    assert item.last_error and type(error).__name__ in item.last_error, item.last_error


async def test_queue_run_goes_on_after_one_group_raises(
    services: Services, settings: Settings, two_tenants: dict[str, Principal]
) -> None:
    """One message whose send raises does not stop the others in the same run."""
    delivered: list[str] = []

    async def picky(host: str, port: int, mail_from: str, recipients: list[str],
                    data: bytes, **_: Any) -> dict[str, Outcome]:  # fmt: skip
        if b"boom" in data:
            raise RuntimeError("boom")
        delivered.extend(recipients)
        return dict.fromkeys(recipients, Outcome(250, "2.0.0 OK"))

    queue = make_queue(services, settings, picky)
    alice = two_tenants["alice"]
    await queue.enqueue(alice, "alice@acme.example", ["a@one.example"], RAW + b"boom\r\n")
    await queue.enqueue(alice, "alice@acme.example", ["b@two.example"], RAW)
    assert await queue.run_once() == 2
    assert delivered == ["b@two.example"]
    [left] = await rows(queue)
    assert (left.recipient, left.status, left.attempts) == ("a@one.example", "queued", 1)


def test_ascii_form_uses_a_labels_and_gives_up_on_utf8_local_parts() -> None:
    assert ascii_form("carl@remote.example") == "carl@remote.example"
    assert ascii_form("carl@bücher.example") == "carl@xn--bcher-kva.example"
    assert ascii_form("jörg@remote.example") is None
    assert ascii_form("jörg") is None
