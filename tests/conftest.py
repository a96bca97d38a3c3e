"""Shared fixtures: a real deployment (SQLite, local disk) in a temporary directory.

With ``ENCLAVE_TEST_DATABASE_URL`` set (``postgresql://user:pw@host/db`` of a role that may
create databases and is not a superuser), each test gets a fresh PostgreSQL database instead.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from enclave.app import open_services
from enclave.config import DatabaseSettings, Settings
from enclave.core.principal import Principal, Role
from enclave.services import Services
from tests.dnsserver import DnsServer
from tests.support import PG_ENV, fast_settings, fresh_postgres_database, make_tenant, make_user

# Every server a test starts inherits this environment: its DNS is an empty zone on loopback
# that answers NXDOMAIN at once, unless a test gives it another. No lookup leaves the machine,
# and SPF/DKIM/DMARC checks finish fast.
EMPTY_DNS = DnsServer({}).__enter__()
os.environ["ENCLAVE_DNS__NAMESERVERS"] = '["127.0.0.1"]'
os.environ["ENCLAVE_DNS__PORT"] = str(EMPTY_DNS.port)
os.environ["ENCLAVE_DNS__TIMEOUT_SECONDS"] = "2"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "deployment"


@pytest.fixture
async def settings(data_dir: Path) -> AsyncIterator[Settings]:
    base = fast_settings(data_dir)
    admin_url = os.environ.get(PG_ENV)
    if not admin_url:
        yield base
        return
    async with fresh_postgres_database(admin_url) as url:
        yield base.model_copy(update={"database": DatabaseSettings(url=url)})


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    async with open_services(settings) as svc:
        yield svc


@pytest.fixture
def console() -> Principal:
    return Principal.system(os.environ.get("USER", "tester"))


@pytest.fixture
async def two_tenants(services: Services, console: Principal) -> dict[str, Principal]:
    """acme (alice admin, bob user, carol auditor) and globex (gina admin)."""
    await make_tenant(services, console, "acme", "acme.example")
    await make_tenant(services, console, "globex", "globex.example")
    return {
        "alice": await make_user(services, console, "alice@acme.example", Role.ADMIN),
        "bob": await make_user(services, console, "bob@acme.example"),
        "carol": await make_user(services, console, "carol@acme.example", Role.AUDITOR),
        "gina": await make_user(services, console, "gina@globex.example", Role.ADMIN),
    }
