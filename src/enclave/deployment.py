"""Creating a deployment directory: configuration, keys, certificate, database."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

from enclave.backends.db import migrate
from enclave.backends.db.engine import Database
from enclave.config import CONFIG_NAME, ConfigError, Settings, load_settings
from enclave.core.audit import write_signing_key
from enclave.core.errors import Invalid
from enclave.core.keys import write_master_key
from enclave.core.names import hostname
from enclave.tlscert import write_self_signed

TEMPLATE = """\
# Enclave deployment configuration. Relative paths are resolved against this directory.
# Every key is optional; the values below are the defaults unless noted.

[deployment]
name = "enclave"
hostnames = {hostnames}

[listen]
bind = "127.0.0.1"
http_port = 8080
smtp_port = 2525
submission_port = 5870   # STARTTLS, then AUTH (usually 587)
imap_port = 1143         # STARTTLS, then LOGIN (usually 143)
imaps_port = 9930        # implicit TLS (RFC 8314; usually 993); 0 turns it off
submissions_port = 4650  # implicit TLS submission (usually 465); 0 turns it off

[http]
tls = false              # serve HTTPS on http_port with [tls] below
trusted_proxies = []     # reverse proxies whose X-Forwarded-For is believed

[smtp]
# hostname = "mx.example.org"   # greeting and Received headers (default: first hostname)
max_message_bytes = 37748736    # announced in EHLO SIZE and enforced
max_header_bytes = 1048576      # a larger header section is refused (552 5.3.4)
max_recipients = 100
timeout_seconds = 300
dmarc_reject_action = "reject"  # or "quarantine": file DMARC failures in Junk

[imap]
idle_timeout_seconds = 1800     # autologout after 30 idle minutes (RFC 3501)
login_timeout_seconds = 60

[dns]
nameservers = []                # empty: the system resolver
# port = 53

[queue]
retry_schedule_seconds = [60, 300, 900, 1800, 3600, 7200, 14400]
max_age_hours = 120             # then the sender gets a failure notice (DSN)
# smarthost = "relay.example.org:587"   # relay everything through this host
# smarthost_username = "enclave"
# smarthost_password_file = "keys/smarthost.password"

[database]
url = "sqlite:///enclave.db"   # or postgresql://user@host/db (password via .pgpass)

[blobs]
backend = "fs"
path = "blobs"

[keys]
master_key_file = "keys/master.key"
audit_signing_key_file = "keys/audit-signing.key"

[tls]
cert_file = "tls/cert.pem"
key_file = "tls/key.pem"

[auth]
failure_delay_ms = 500   # every failed login answers after at least this long
account_failures = 5     # failures per account within the window before a lock
address_failures = 20    # failures per source address within the window
window_seconds = 900
session_ttl_hours = 12       # a web or API session ends this long after sign-in
session_idle_minutes = 60    # ... or once unused this long

[audit]
checkpoint_interval = 100   # sign the chain head every N entries (and on export)

# Who may operate this deployment. Checked at operator login and at every action.
[operators.policy]
citizenship = []            # e.g. ["US"]; empty: any
check_levels = ["tier1", "tier2", "tier3", "tier4", "tier5"]
# min_check_level = "tier3"
# max_check_age_days = 730
# max_training_age_days = 365
require_mfa = true
"""


def init_deployment(
    data_dir: Path, hostnames: list[str], *, create_schema: bool = True
) -> Settings:
    """Create a new deployment; refuses to touch an existing one, and leaves nothing behind
    if any step fails. (Services create or upgrade the schema whenever they open;
    ``create_schema`` only does it now.)"""
    config = data_dir / CONFIG_NAME
    if config.exists():
        raise ConfigError(f"{data_dir} already holds a deployment; refusing to overwrite it")
    if data_dir.exists() and any(data_dir.iterdir()):
        raise ConfigError(f"{data_dir} is not empty; choose a new directory")
    try:
        names = [hostname(n) for n in hostnames] or ["localhost"]
    except Invalid as exc:
        raise ConfigError(str(exc)) from None
    existed = data_dir.exists()
    try:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        config.write_text(TEMPLATE.format(hostnames=json.dumps(names)))
        settings = load_settings(data_dir, environ={})
        write_master_key(settings.path(settings.keys.master_key_file))
        write_signing_key(settings.path(settings.keys.audit_signing_key_file))
        write_self_signed(
            settings.path(settings.tls.cert_file), settings.path(settings.tls.key_file), names
        )
        settings.path(settings.blobs.path).mkdir(parents=True, exist_ok=True, mode=0o700)
        if create_schema:
            asyncio.run(_create_schema(settings))
    except BaseException:
        if existed:
            for child in data_dir.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
        raise
    return settings


async def _create_schema(settings: Settings) -> None:
    db = Database(settings.database_url)
    try:
        await migrate.upgrade(db)
    finally:
        await db.close()
