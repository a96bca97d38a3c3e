"""The syntax of SMTP paths (RFC 5321 section 4.1.2, with RFC 6531's UTF-8 additions). Pure.

Only syntax is judged here: whether a sender may use a domain is for SPF and DMARC, so a
single-label domain (``root@vm``) or an address literal is as valid as any other.
"""

from __future__ import annotations

import ipaddress
import re

# The local part is not held to RFC 5321's 64 octets: VERP and SRS senders often exceed it.
# atext (RFC 5322 3.2.3); RFC 6531 adds every non-ASCII character (UTF8-non-ascii).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]+"
_DOT_STRING = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
# qtextSMTP / quoted-pairSMTP, printable ASCII (and UTF-8 with RFC 6531)
_QUOTED = re.compile(r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e\u0080-\U0010ffff]|\\[\x20-\x7e])*"')
# sub-domain = Let-dig [Ldh-str]; a U-label is any run of letters and digits of any script
_LABEL = re.compile(r"[^\W_](?:(?:[^\W_]|-)*[^\W_])?")
_GENERAL = re.compile(r"[A-Za-z0-9-]*[A-Za-z0-9]:[\x21-\x5a\x5e-\x7e]+")

MAX_DOMAIN = 255
MAX_PATH = 256


def _domain(domain: str) -> bool:
    if not domain or len(domain.encode("utf-8")) > MAX_DOMAIN:
        return False
    return all(_LABEL.fullmatch(label) and len(label) <= 63 for label in domain.split("."))


def _literal(text: str) -> bool:
    inner = text[1:-1]
    if inner[:5].lower() == "ipv6:":
        try:
            ipaddress.IPv6Address(inner[5:])
        except ValueError:
            return False
        return True
    try:
        ipaddress.IPv4Address(inner)
    except ValueError:
        return bool(_GENERAL.fullmatch(inner)) and not inner.lower().startswith("ipv6:")
    return True


def mailbox_ok(address: str, *, utf8: bool) -> bool:
    """Whether ``address`` is a syntactically valid RFC 5321 Mailbox; non-ASCII only when
    the transaction declared SMTPUTF8 (``utf8``)."""
    if not address or any(0xD800 <= ord(ch) <= 0xDFFF for ch in address):
        return False  # undecodable bytes (surrogate escapes) are never valid
    if not utf8 and not address.isascii():
        return False
    if len(address.encode("utf-8")) > MAX_PATH - 2:
        return False
    if address.endswith("]"):
        at = address.rfind("@[")
        local, domain = address[:at], address[at + 1 :]
        if at < 1 or not _literal(domain):
            return False
    else:
        local, at_sign, domain = address.rpartition("@")
        if not at_sign or not _domain(domain):
            return False
    return bool(_DOT_STRING.fullmatch(local) or _QUOTED.fullmatch(local))


def reverse_path_ok(address: str, *, utf8: bool) -> bool:
    """MAIL FROM: the null path (bounces) or a valid mailbox."""
    return address in ("", "<>") or mailbox_ok(address, utf8=utf8)
