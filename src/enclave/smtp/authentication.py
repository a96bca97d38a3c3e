"""SPF, DKIM and DMARC for inbound mail (pyspf, dkimpy, authheaders), summarised in an
``Authentication-Results`` header (RFC 8601). The libraries are synchronous and do their own
DNS lookups (through dnspython's default resolver, which ``backends.dns`` configures): call
``authenticate`` in a thread."""

from __future__ import annotations

import functools
import importlib.resources
import re
from dataclasses import dataclass

import authheaders
import authheaders.dmarc_lookup
from authheaders import DKIMAuthenticationResult, DMARCAuthenticationResult
from publicsuffix2 import PublicSuffixList


@functools.cache
def _suffix_list() -> PublicSuffixList:
    try:
        from authheaders.findpsl import location  # a system copy, when packaged so
    except ModuleNotFoundError:
        location = importlib.resources.files("authheaders") / "public_suffix_list.txt"
    with importlib.resources.as_file(location) as path, open(path, encoding="utf-8") as handle:
        return PublicSuffixList(handle)


@functools.lru_cache(maxsize=8192)
def _org_domain(domain: str) -> str:
    return str(_suffix_list().get_public_suffix(domain))


# authheaders parses the whole public suffix list again for every organisational-domain
# lookup (about 40 ms, several per message): give it one parsed list and a cache instead.
authheaders.get_org_domain = _org_domain
authheaders.dmarc_lookup.get_org_domain = _org_domain

UNKNOWN_IP = "0.0.0.0"  # noqa: S104 - an address no SPF record authorises, not a bind


@dataclass(frozen=True)
class Verdict:
    header: bytes  # the Authentication-Results line, CRLF-terminated
    spf: str
    dkim: str
    dmarc: str
    dmarc_policy: str  # reject | quarantine | none, as published by the From domain
    from_domain: str

    @property
    def dmarc_rejects(self) -> bool:
        return self.dmarc == "fail" and self.dmarc_policy == "reject"

    @property
    def dmarc_quarantines(self) -> bool:
        return self.dmarc == "fail" and self.dmarc_policy == "quarantine"


def _has_header(raw: bytes, name: bytes) -> bool:
    head = raw.split(b"\r\n\r\n", 1)[0]
    return re.search(rb"(?im)^" + re.escape(name) + rb"\s*:", head) is not None


def _after_comment(text: bytes) -> bytes:
    """What follows the (possibly nested) comment that ``text`` starts with."""
    depth = 0
    for index, char in enumerate(text):
        depth += (char == ord("(")) - (char == ord(")"))
        if depth == 0:
            return text[index + 1 :].strip()
    return b""


def _authserv_id(value: bytes) -> bytes:
    """The first token of an Authentication-Results value, after comments (RFC 8601 2.2)."""
    text = re.sub(rb"\s+", b" ", value).strip()
    while text.startswith(b"("):
        text = _after_comment(text)
    return re.split(rb"[;\s]", text, maxsplit=1)[0].lower()


def strip_forged(raw: bytes, authserv_id: str) -> bytes:
    """Drop Authentication-Results fields that claim to come from us (RFC 8601 section 5):
    only this server may vouch for itself. Folded fields and leading comments included; the
    id must match exactly. Pure."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    fields: list[list[bytes]] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1].append(line)
        else:
            fields.append([line])
    ours = authserv_id.lower().encode()
    kept = []
    for field in fields:
        name, colon, value = b"\r\n".join(field).partition(b":")
        forged = colon and name.strip().lower() == b"authentication-results"
        if forged and _authserv_id(value) == ours:
            continue
        kept.append(b"\r\n".join(field))
    return b"\r\n".join(kept) + sep + body


def authenticate(
    raw: bytes, *, authserv_id: str, ip: str | None, mail_from: str, helo: str | None
) -> Verdict:
    """Check the message; never raises for DNS trouble (results say temperror instead)."""
    spf = authheaders.check_spf(ip or UNKNOWN_IP, mail_from or "", helo or "unknown")
    if _has_header(raw, b"dkim-signature"):
        dkim = authheaders.check_dkim(raw)
    else:
        dkim = DKIMAuthenticationResult(result="none")
    try:
        dmarc = authheaders.check_dmarc(raw, spf, dkim)
    except Exception:  # a malformed From makes the library fail: report, do not crash
        dmarc = DMARCAuthenticationResult(result="permerror", header_from="none", policy="none")
    header = authheaders.AuthenticationResultsHeader(
        authserv_id=authserv_id, results=[spf, dkim, dmarc]
    )
    text = str(header).replace("\r\n", "\n").replace("\n", "\r\n")
    return Verdict(
        header=text.encode("utf-8", "replace") + b"\r\n",
        spf=str(spf.result),
        dkim=str(dkim.result),
        dmarc=str(dmarc.result),
        dmarc_policy=str(getattr(dmarc, "policy", "none") or "none").lower(),
        from_domain=str(getattr(dmarc, "header_from", "") or ""),
    )
