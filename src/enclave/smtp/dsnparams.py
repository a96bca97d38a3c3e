"""The DSN parameters of MAIL and RCPT (RFC 3461 section 4): parsing and xtext. Pure.

``take_mail`` and ``take_rcpt`` split a command argument into what aiosmtpd should see (the
path and the parameters it knows) and our values, with their case kept (aiosmtpd upper-cases
every parameter, which would spoil ENVID and ORCPT). A malformed parameter raises
``DsnSyntax`` with the reply to send.
"""

from __future__ import annotations

import re

from enclave.core.mail.dsn import NOTIFY_VALUES, DsnRequest, RecipientDsn

MAX_ENVID = 100
_XTEXT = re.compile(r"(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*")
_ADDR_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")


class DsnSyntax(ValueError):
    """A malformed DSN parameter; ``str()`` is the SMTP reply."""


def xtext_decode(text: str) -> str:
    if not _XTEXT.fullmatch(text):
        raise DsnSyntax("501 5.5.4 Malformed xtext in a DSN parameter")
    return re.sub(r"\+([0-9A-F]{2})", lambda m: chr(int(m.group(1), 16)), text)


def xtext_encode(text: str) -> str:
    return "".join(
        ch if 0x21 <= ord(ch) <= 0x7E and ch not in "+=" else f"+{ord(ch):02X}"
        for ch in text
        if ord(ch) < 0x80
    )


def _split(arg: str) -> tuple[str, list[str]]:
    end = arg.rfind(">")
    path, rest = (arg[: end + 1], arg[end + 1 :]) if end >= 0 else (arg, "")
    return path, rest.split()


def _take(params: list[str], names: set[str]) -> tuple[list[str], dict[str, str]]:
    kept: list[str] = []
    found: dict[str, str] = {}
    for param in params:
        key, _, value = param.partition("=")
        if key.upper() in names:
            if key.upper() in found:
                raise DsnSyntax(f"501 5.5.4 {key.upper()} given twice")
            found[key.upper()] = value
        else:
            kept.append(param)
    return kept, found


def take_mail(arg: str) -> tuple[str, str | None, str | None]:
    """``FROM:<a> RET=HDRS ENVID=x SIZE=9`` -> (``FROM:<a> SIZE=9``, "HDRS", "x")."""
    path, params = _split(arg)
    kept, found = _take(params, {"RET", "ENVID"})
    ret = found.get("RET")
    if ret is not None:
        ret = ret.upper()
        if ret not in ("FULL", "HDRS"):
            raise DsnSyntax("501 5.5.4 RET must be FULL or HDRS")
    envid = found.get("ENVID")
    if envid is not None:
        if not envid or len(envid) > MAX_ENVID:
            raise DsnSyntax(f"501 5.5.4 ENVID must be 1 to {MAX_ENVID} characters")
        envid = xtext_decode(envid)
    return " ".join([path, *kept]), ret, envid


def take_rcpt(arg: str) -> tuple[str, RecipientDsn | None]:
    """``TO:<b> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@x`` -> (``TO:<b>``, its request)."""
    path, params = _split(arg)
    kept, found = _take(params, {"NOTIFY", "ORCPT"})
    if not found:
        return " ".join([path, *kept]), None
    notify: tuple[str, ...] = ()
    if "NOTIFY" in found:
        values = tuple(v.upper() for v in found["NOTIFY"].split(","))
        never = values == ("NEVER",)
        if not never and (not values or not set(values) <= NOTIFY_VALUES - {"NEVER"}):
            raise DsnSyntax("501 5.5.4 NOTIFY is NEVER or a list of SUCCESS, FAILURE, DELAY")
        if len(set(values)) != len(values):
            raise DsnSyntax("501 5.5.4 NOTIFY names a value twice")
        notify = values
    orcpt = None
    if "ORCPT" in found:
        kind, semicolon, address = found["ORCPT"].partition(";")
        if not semicolon or not _ADDR_TYPE.fullmatch(kind) or not address:
            raise DsnSyntax("501 5.5.4 ORCPT must be addr-type;xtext")
        if kind.lower() == "utf-8":  # RFC 6533: UTF-8 as is, or \x{HEX} escapes
            try:
                decoded = re.sub(
                    r"\\x\{([0-9A-Fa-f]{1,6})\}", lambda m: chr(int(m.group(1), 16)), address
                )
            except ValueError:  # beyond U+10FFFF
                raise DsnSyntax("501 5.5.4 Malformed utf-8 ORCPT") from None
            if any(ord(ch) < 0x21 or 0x7F <= ord(ch) < 0xA0 or 0xD800 <= ord(ch) < 0xE000
                   for ch in decoded):  # fmt: skip
                raise DsnSyntax("501 5.5.4 Malformed utf-8 ORCPT")
        else:
            decoded = xtext_decode(address)
        orcpt = (kind.lower(), decoded)
    return " ".join([path, *kept]), RecipientDsn(notify=notify, orcpt=orcpt)


__all__ = ["DsnRequest", "DsnSyntax", "take_mail", "take_rcpt", "xtext_decode", "xtext_encode"]
