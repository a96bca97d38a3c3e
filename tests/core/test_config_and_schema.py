"""Configuration validation and migrations."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from enclave.backends.db import migrate
from enclave.backends.db.engine import Database
from enclave.backends.db.schema import metadata
from enclave.config import ConfigError, load_settings
from enclave.services import Services


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "enclave.toml").write_text(text)
    return tmp_path


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""), environ={})
    assert (settings.listen.bind, settings.listen.http_port, settings.listen.smtp_port) == (
        "127.0.0.1", 8080, 2525,
    )  # fmt: skip
    assert (settings.listen.submission_port, settings.listen.imap_port) == (5870, 1143)
    assert settings.database_url == f"sqlite+enclave:///{tmp_path}/enclave.db"


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ('[listen]\nhttp_port = "abc"\n', "listen.http_port"),
        ("[listen]\nhttp_port = 70000\n", "listen.http_port"),
        ("[listen]\ncolour = 1\n", "listen.colour"),
        ("[nosuchsection]\nx = 1\n", "nosuchsection"),
        ('[operators.policy]\nmin_check_level = "tier9"\n', "operators.policy.min_check_level"),
        ('[database]\nurl = "mysql://x"\n', "database.url"),
    ],
)
def test_errors_name_the_key_path(tmp_path: Path, text: str, path: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text), environ={})
    assert f": {path}:" in str(info.value)


def test_broken_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[listen\n"), environ={})
    with pytest.raises(ConfigError, match="enclave init"):
        load_settings(tmp_path / "nowhere", environ={})


def test_environment_overrides_one_key(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""), environ={"ENCLAVE_LISTEN__HTTP_PORT": "9090"})
    assert settings.listen.http_port == 9090
    with pytest.raises(ConfigError, match=r"listen\.http_port"):
        load_settings(write(tmp_path, ""), environ={"ENCLAVE_LISTEN__HTTP_PORT": "x"})


async def test_migrations_build_exactly_the_declared_schema(services: Services) -> None:
    def diff(connection):  # type: ignore[no-untyped-def]
        return compare_metadata(MigrationContext.configure(connection), metadata)

    async with services.db.engine.connect() as conn:
        assert await conn.run_sync(diff) == []
    assert await migrate.current_revision(services.db) == migrate.head_revision()


async def test_sqlite_runs_in_wal_with_foreign_keys(services: Services) -> None:
    if not services.db.is_sqlite:
        pytest.skip("SQLite pragmas")
    async with services.db.transaction() as conn:
        assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
        assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
        assert (await conn.exec_driver_sql("PRAGMA synchronous")).scalar() == 2  # FULL


async def test_upgrade_is_idempotent(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/x.db")
    try:
        await migrate.upgrade(db)
        await migrate.upgrade(db)
        assert await migrate.current_revision(db) == migrate.head_revision()
    finally:
        await db.close()


def test_managed_networks_are_checked_and_matched() -> None:
    from enclave.config import HttpSettings

    http = HttpSettings(managed_networks=["10.0.0.0/8", "::1/128"])
    assert http.is_managed("10.20.30.40") and http.is_managed("::1")
    assert not http.is_managed("127.0.0.1") and not http.is_managed(None)
    assert not http.is_managed("not an address")
    with pytest.raises(ValueError, match="not a network"):
        HttpSettings(managed_networks=["10.0.0.0/33"])
