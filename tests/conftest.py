"""Shared fixtures: a real deployment (SQLite, local disk) in a temporary directory."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from enclave.app import open_services
from enclave.config import Settings
from enclave.core.principal import Principal, Role
from enclave.services import Services
from tests.support import fast_settings, make_tenant, make_user


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "deployment"


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return fast_settings(data_dir)


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
