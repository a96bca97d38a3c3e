"""Typed settings: one class per section of ``enclave.toml``, validated at load.

Relative paths in the file are resolved against the data directory, so a deployment
directory can be moved as a whole. Environment variables ``ENCLAVE_<SECTION>__<KEY>``
override single keys (for containers); secrets are never settings, only paths to files.
"""

from __future__ import annotations

import ipaddress
import json
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

CONFIG_NAME = "enclave.toml"
DATA_ENV = "ENCLAVE_DATA"


class ConfigError(Exception):
    """A configuration problem; the message names the key path and the reason."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeploymentSettings(Section):
    name: str = "enclave"
    hostnames: list[str] = Field(default_factory=lambda: ["localhost"])
    # Worker processes of ``enclave serve`` for CPU-bound steps (parsing mail, index tokens,
    # document text): unset, one per core beyond the event loop's; 0, threads. (Commands
    # and other short-lived processes always use threads.)
    cpu_workers: int | None = Field(None, ge=0, le=64)


class ListenSettings(Section):
    bind: str = "127.0.0.1"
    http_port: int = Field(8080, ge=0, le=65535)
    smtp_port: int = Field(2525, ge=0, le=65535)
    submission_port: int = Field(5870, ge=0, le=65535)
    imap_port: int = Field(1143, ge=0, le=65535)
    # Implicit TLS (RFC 8314), beside the STARTTLS ports: IMAP (usually 993) and submission
    # (usually 465). 0 turns the listener off.
    imaps_port: int = Field(9930, ge=0, le=65535)
    submissions_port: int = Field(4650, ge=0, le=65535)


class HttpSettings(Section):
    tls: bool = False
    # Reverse proxies whose X-Forwarded-For is believed (source addresses for audit, limits).
    trusted_proxies: list[str] = Field(default_factory=list)
    # Networks (CIDR) whose clients count as managed devices: documents labelled "downloads
    # only to managed clients" go only there.
    managed_networks: list[str] = Field(default_factory=list)

    @field_validator("managed_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"{network!r} is not a network (CIDR)") from None
        return value

    def is_managed(self, address: str | None) -> bool:
        """Whether a client address lies in one of the managed networks."""
        if not address:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in ipaddress.ip_network(n, strict=False) for n in self.managed_networks)


class SmtpSettings(Section):
    # The name this server gives in its greeting and Received headers (default: the first
    # of deployment.hostnames).
    hostname: str | None = None
    max_message_bytes: int = Field(36 * 1024 * 1024, ge=1024)
    # A message whose header section is larger is refused (552 5.3.4), as Exim does.
    max_header_bytes: int = Field(1024 * 1024, ge=1024)
    max_recipients: int = Field(100, ge=1)
    timeout_seconds: int = Field(300, ge=10)
    # A failing DMARC "reject" policy gets 550 (reject) or is filed in Junk (quarantine).
    dmarc_reject_action: Literal["reject", "quarantine"] = "reject"


class ImapSettings(Section):
    # RFC 3501 5.4: an authenticated client may idle 30 minutes before autologout.
    idle_timeout_seconds: int = Field(1800, ge=60)
    login_timeout_seconds: int = Field(60, ge=5)
    max_line_bytes: int = Field(64 * 1024, ge=1024)
    # Literal data (APPEND messages...) that all IMAP connections together may hold in memory;
    # a literal that would go over is refused with NO [LIMIT].
    literal_budget_bytes: int = Field(256 * 1024 * 1024, ge=1024 * 1024)


class DnsSettings(Section):
    # Empty: the system resolver. Tests and split-horizon setups name their own servers.
    nameservers: list[str] = Field(default_factory=list)
    port: int = Field(53, ge=1, le=65535)
    timeout_seconds: float = Field(5, gt=0)


class QueueSettings(Section):
    # Seconds to wait before each retry; the last value repeats until max_age_hours.
    retry_schedule_seconds: list[int] = Field(
        default_factory=lambda: [60, 300, 900, 1800, 3600, 7200, 14400]
    )
    max_age_hours: float = Field(120, gt=0)
    # Port of remote MX hosts (25; tests point it at a local sink).
    mx_port: int = Field(25, ge=1, le=65535)
    # Relay everything through this host ("host" or "host:port") instead of MX lookups.
    smarthost: str | None = None
    smarthost_username: str | None = None
    smarthost_password_file: Path | None = None
    connect_timeout_seconds: float = Field(30, gt=0)
    poll_seconds: float = Field(5, gt=0)


class DatabaseSettings(Section):
    url: str = "sqlite:///enclave.db"

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value


class BlobSettings(Section):
    backend: str = "fs"
    path: Path = Path("blobs")
    # Files without a database row are collected only after this grace period (seconds).
    orphan_grace_seconds: int = Field(3600, ge=0)


class KeySettings(Section):
    master_key_file: Path = Path("keys/master.key")
    audit_signing_key_file: Path = Path("keys/audit-signing.key")


class TlsSettings(Section):
    cert_file: Path = Path("tls/cert.pem")
    key_file: Path = Path("tls/key.pem")


class AuthSettings(Section):
    failure_delay_ms: int = Field(500, ge=0)
    account_failures: int = Field(5, ge=1)
    address_failures: int = Field(20, ge=1)
    window_seconds: int = Field(900, ge=1)
    session_ttl_hours: float = Field(12, gt=0)
    session_idle_minutes: float = Field(60, gt=0)


class AuditSettings(Section):
    checkpoint_interval: int = Field(100, ge=1)


class OperatorPolicySettings(Section):
    citizenship: list[str] = Field(default_factory=list)
    check_levels: list[str] = Field(
        default_factory=lambda: ["tier1", "tier2", "tier3", "tier4", "tier5"]
    )
    min_check_level: str | None = None
    max_check_age_days: int | None = Field(None, ge=1)
    max_training_age_days: int | None = Field(None, ge=1)
    require_mfa: bool = True

    @field_validator("min_check_level")
    @classmethod
    def _level_known(cls, value: str | None, info: Any) -> str | None:
        levels = info.data.get("check_levels", [])
        if value is not None and value not in levels:
            raise ValueError(f"must be one of check_levels {levels}")
        return value


class OperatorSettings(Section):
    policy: OperatorPolicySettings = OperatorPolicySettings()


class DocumentSettings(Section):
    # Trashed documents and folders are purged after this many days (unless held).
    trash_days: int = Field(30, ge=1)


class Settings(Section):
    data_dir: Path
    deployment: DeploymentSettings = DeploymentSettings()
    listen: ListenSettings = ListenSettings()
    http: HttpSettings = HttpSettings()
    smtp: SmtpSettings = SmtpSettings()
    imap: ImapSettings = ImapSettings()
    dns: DnsSettings = DnsSettings()
    queue: QueueSettings = QueueSettings()
    database: DatabaseSettings = DatabaseSettings()
    blobs: BlobSettings = BlobSettings()
    keys: KeySettings = KeySettings()
    tls: TlsSettings = TlsSettings()
    auth: AuthSettings = AuthSettings()
    audit: AuditSettings = AuditSettings()
    operators: OperatorSettings = OperatorSettings()
    documents: DocumentSettings = DocumentSettings()

    def path(self, relative: Path) -> Path:
        """A settings path resolved against the data directory."""
        return relative if relative.is_absolute() else self.data_dir / relative

    @property
    def database_url(self) -> str:
        """The SQLAlchemy async URL, with relative SQLite paths under the data directory."""
        url = self.database.url
        if url.startswith("sqlite:///"):
            return f"sqlite+enclave:///{self.path(Path(url.removeprefix('sqlite:///')))}"
        if url.startswith("postgresql://"):
            return "postgresql+asyncpg://" + url.removeprefix("postgresql://")
        return url


def resolve_data_dir(data: str | Path | None) -> Path:
    """``--data`` if given, else ``$ENCLAVE_DATA``; a clear error when neither is set."""
    value = data if data is not None else os.environ.get(DATA_ENV)
    if value is None or not str(value).strip():
        raise ConfigError(f"no data directory: pass --data DIR or set {DATA_ENV}")
    return Path(value).expanduser().resolve()


def _env_value(value: str) -> Any:
    """Lists and tables may be given as JSON (``'["10.0.0.53"]'``); anything else is text."""
    if value.startswith(("[", "{")):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _env_overrides(raw: dict[str, Any], environ: dict[str, str]) -> None:
    for name, value in environ.items():
        if not name.startswith("ENCLAVE_") or "__" not in name:
            continue
        section, _, key = name.removeprefix("ENCLAVE_").lower().partition("__")
        target = raw.setdefault(section, {})
        if isinstance(target, dict):
            target[key] = _env_value(value)


def _describe(error: ValidationError, source: Path) -> str:
    lines = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"])
        lines.append(f"{source}: {path}: {item['msg']}")
    return "\n".join(lines)


def load_settings(data_dir: Path, environ: dict[str, str] | None = None) -> Settings:
    """Read ``DATA/enclave.toml``; any problem raises ConfigError naming the key path."""
    source = data_dir / CONFIG_NAME
    try:
        raw: dict[str, Any] = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{source} not found: run 'enclave init --data {data_dir}' first"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    _env_overrides(raw, dict(os.environ) if environ is None else environ)
    raw["data_dir"] = data_dir
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None
