"""Normalisation and validation of names users type: tenant names, domains, addresses."""

from __future__ import annotations

import ipaddress
import re

from enclave.core.errors import Invalid

_TENANT = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_LOCAL = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")


def tenant_name(value: str) -> str:
    name = value.strip().lower()
    if not _TENANT.match(name):
        raise Invalid(f"tenant name {value!r}: use lowercase letters, digits and '-' (max 63)")
    return name


def domain(value: str) -> str:
    name = value.strip().lower().rstrip(".")
    try:
        name = name.encode("idna").decode("ascii")
    except UnicodeError:
        raise Invalid(f"domain {value!r} is not a valid host name") from None
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise Invalid(f"domain {value!r} is not a valid host name")
    return name


def hostname(value: str) -> str:
    """A host name for the certificate: an IP address, or one or more DNS labels."""
    name = value.strip().lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise Invalid(f"host name {value!r} is not a valid DNS name or IP address")
    return name


def address(value: str) -> str:
    """A mailbox address, lower-cased (Enclave treats local parts case-insensitively)."""
    local, sep, host = value.strip().lower().rpartition("@")
    if not sep or not _LOCAL.match(local) or local.startswith(".") or ".." in local:
        raise Invalid(f"{value!r} is not a valid email address")
    return f"{local}@{domain(host)}"
