"""SPF, DKIM and DMARC for inbound mail (pyspf, dkimpy, authheaders), summarised in an
``Authentication-Results`` header (RFC 8601). The libraries are synchronous and do their own
DNS lookups (through dnspython's default resolver, which ``backends.dns`` configures): call
``authenticate`` in a thread.

The message is split into fields once, linearly (``core.mail.headers``), and each check gets
only what it reads: DKIM the signature and the fields it covers (``smtp.dkimverify``), DMARC
the From fields. The libraries' own parser is quadratic on folded fields."""

from __future__ import annotations

import functools
import importlib.resources
import re
from dataclasses import dataclass
from email.utils import getaddresses

import authheaders
import authheaders.dmarc_lookup
import dns.resolver
from authheaders import (
    DKIMAuthenticationResult,
    DMARCAuthenticationResult,
    SPFAuthenticationResult,
)
from publicsuffix2 import PublicSuffixList

from enclave.core.mail.headers import MalformedHeader, header_length, split, unfold
from enclave.smtp.dkimverify import check_dkim


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

DNS_CACHE_ENTRIES = 4096


def _cache_lookups() -> None:
    """Give dnspython's default resolver (the libraries' lookups go through it; ``backends.dns``
    sets it up) a cache, so that a stream of mail from one domain looks up its SPF and DMARC
    records once per TTL rather than once per message. Answers, NXDOMAIN and NODATA are kept
    for their TTL (dnspython's LRUCache, thread-safe)."""
    resolver = dns.resolver.get_default_resolver()
    if resolver.cache is None:
        resolver.cache = dns.resolver.LRUCache(DNS_CACHE_ENTRIES)


UNKNOWN_IP = "0.0.0.0"  # noqa: S104 - an address no SPF record authorises, not a bind
MAX_FROM_DOMAINS = 10
_RESULTS = re.compile(rb"(?im)^authentication-results[ \t]*:")  # a field's first line
_FIELD_END = re.compile(rb"\r\n(?![ \t])")  # the CRLF after a field's last line
_SIGNATURE = re.compile(rb"(?im)^dkim-signature[ \t]*:")
_TOKEN = re.compile(rb'[^\s;()"]*')


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


def _authserv_id(value: bytes) -> bytes:
    """The authserv-id of an Authentication-Results value (RFC 8601 2.2): the first value
    after comments (nested, with quoted pairs) and folding white space, unquoted if it is a
    quoted-string, lowercase. One pass: a value of a million comments costs a million steps."""
    index, depth = 0, 0
    while index < len(value):
        char = value[index]
        if depth:
            if char == 0x5C:  # a quoted pair: the next octet is only text
                index += 1
            else:
                depth += (char == 0x28) - (char == 0x29)
        elif char == 0x28:
            depth = 1
        elif char not in b" \t\r\n":
            break
        index += 1
    if depth:
        return b""
    if value[index : index + 1] != b'"':
        found = _TOKEN.match(value, index)
        return found.group(0).lower() if found else b""
    quoted = bytearray()
    index += 1
    while index < len(value) and value[index] != 0x22:
        if value[index] == 0x5C:
            index += 1
        quoted += value[index : index + 1]
        index += 1
    return bytes(quoted).lower()


def strip_forged(raw: bytes, authserv_id: str) -> bytes:
    """Drop Authentication-Results fields that claim to come from us (RFC 8601 section 5):
    only this server may vouch for itself. Folded fields, leading comments and a quoted id
    included; the id must match exactly. Only those fields are looked at (a regular
    expression finds them), so the cost is linear in the header. Pure."""
    head = raw[: header_length(raw)]
    ours = authserv_id.lower().encode()
    kept, start = [], 0
    for found in _RESULTS.finditer(head):
        end = _FIELD_END.search(head, found.end())
        stop = end.end() if end else len(head)
        if _authserv_id(head[found.end() : stop]) == ours:
            kept.append(head[start : found.start()])
            start = stop
    if not kept:
        return raw
    return b"".join(kept) + raw[start:]


def _permerror(comment: str, domain: str = "none") -> DMARCAuthenticationResult:
    return DMARCAuthenticationResult(
        result="permerror", result_comment=comment, header_from=domain, policy="none"
    )


def check_dmarc(
    from_values: list[bytes], spf: SPFAuthenticationResult, dkim: DKIMAuthenticationResult
) -> DMARCAuthenticationResult:
    """``authheaders.check_dmarc`` given only the values of the From fields, evaluating each
    From domain once, and at most ``MAX_FROM_DOMAINS`` of them (each costs DNS lookups): more
    fails with policy reject and is looked up not at all (a permerror would let a forger hide a
    reject domain behind ten others). With several domains the strictest policy wins (RFC 7489 6.6.1)."""
    texts = [unfold(value).decode(errors="ignore").strip() for value in from_values]
    addresses = [address for _, address in getaddresses(texts)]
    if not addresses:
        return _permerror("no From address")
    domains: list[str] = []
    for address in addresses:
        try:
            domain = authheaders.get_domain_part(address)
        except IndexError:
            return _permerror(f"Unable to extract From domain: {address}")
        if domain not in domains:
            domains.append(domain)
    if len(domains) > MAX_FROM_DOMAINS:  # a fail, never a way round a reject policy behind it
        return DMARCAuthenticationResult(
            result="fail", result_comment=f"From names over {MAX_FROM_DOMAINS} domains",
            header_from=domains[MAX_FROM_DOMAINS], policy="reject",
        )  # fmt: skip
    results: dict[str, tuple[str, str, str, str]] = {}
    for domain in domains:
        try:
            results[domain] = authheaders.dmarc_per_from(domain, spf_result=spf, dkim_result=dkim)
        except authheaders.dmarc_lookup.DMARCException as error:
            return _permerror(str(error), domain)
    found = list(results.values())
    chosen = next(
        (r for policy in ("reject", "quarantine", "none") for r in found if r[3] == policy),
        found[-1],
    )
    result, comment, domain, policy = chosen
    if result == "none":
        return DMARCAuthenticationResult(result=result, header_from=domain)
    return DMARCAuthenticationResult(
        result=result, result_comment=comment, header_from=domain, policy=policy
    )


def authenticate(
    raw: bytes, *, authserv_id: str, ip: str | None, mail_from: str, helo: str | None
) -> Verdict:
    """Check the message; never raises for DNS trouble (results say temperror instead).
    The header is split once (linearly); DKIM and DMARC get only what they read."""
    _cache_lookups()
    spf = authheaders.check_spf(ip or UNKNOWN_IP, mail_from or "", helo or "unknown")
    try:
        fields, body = split(raw)
    except MalformedHeader as bad:
        signed = _SIGNATURE.search(raw[: header_length(raw)]) is not None
        dkim = DKIMAuthenticationResult(result="permerror" if signed else "none")
        dmarc = _permerror(str(bad))
    else:
        dkim = check_dkim(fields, body)
        try:
            dmarc = check_dmarc([v for n, v in fields if n.lower() == b"from"], spf, dkim)
        except Exception:  # a malformed From makes the library fail: report, do not crash
            dmarc = _permerror("malformed From")
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
