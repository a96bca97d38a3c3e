"""Header fields of a stored message as IMAP renders them (RFC 3501 section 7.4.2, RFC 2045,
RFC 2231, RFC 5322): splitting a header block into fields, the structured-field tokenizer,
MIME parameters, addresses and ENVELOPE. Pure: bytes in, bytes out.

Values are sent raw (encoded words stay encoded) and unfolded; RFC 2231 parameter
continuations are joined and decoded into the plain parameter name. Malformed input never
raises.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from enclave.imap.wire.response import NIL, string

MISSING_MAILBOX = b"MISSING_MAILBOX"  # placeholders as Dovecot sends them: a NIL host would
MISSING_DOMAIN = b"MISSING_DOMAIN"  # read as group syntax (RFC 3501 section 7.4.2)
SYNTAX_ERROR = b"SYNTAX_ERROR"
_REPLACEMENT = "\ufffd".encode()  # NUL may not appear even in a literal (CHAR8)
_RFC2231_NAME = re.compile(rb"^([^*]+)\*([0-9]+)?(\*)?$")


# --- header fields -----------------------------------------------------------------------


@dataclass(slots=True)
class Field:
    key: bytes | None  # lower-case name; None for a stray continuation line before any field
    raw: bytes  # the original lines, line breaks included
    value: bytes  # after the colon: unfolded, leading white space dropped


def _unfold(value: bytes) -> bytes:
    return value.replace(b"\r\n", b"").replace(b"\n", b"").lstrip(b" \t")


def split_fields(header: bytes) -> list[Field]:
    """The fields of a header block (without its blank line), folded lines kept together."""
    fields: list[Field] = []
    lines: list[bytes] = []

    def flush() -> None:
        if not lines:
            return
        raw = b"".join(lines)
        lines.clear()
        if raw[:1] in (b" ", b"\t"):
            fields.append(Field(None, raw, _unfold(raw)))
            return
        name, colon, value = raw.partition(b":")
        key = name.rstrip(b" \t\r\n").lower()
        fields.append(Field(key, raw, _unfold(value) if colon else b""))

    pos, size = 0, len(header)
    while pos < size:
        nl = header.find(b"\n", pos)
        end = size if nl < 0 else nl + 1
        line = header[pos:end]
        if line[:1] not in (b" ", b"\t"):
            flush()
        lines.append(line)
        pos = end
    flush()
    return fields


def header_values(header: bytes, name: str | None) -> list[bytes]:
    """The unfolded values of the fields called ``name`` in a header block (of every field
    when ``name`` is None), in order."""
    if name is None:
        return [f.value for f in split_fields(header) if f.key]
    # One field by name (what SEARCH asks for): a scan for its lines beats splitting them all.
    field = re.compile(
        rb"^" + re.escape(name.encode()) + rb"[ \t]*:([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)", re.I | re.M
    )
    return [_unfold(m.group(1)) for m in field.finditer(header)]


def first_value(fields: list[Field], key: bytes) -> bytes | None:
    for f in fields:
        if f.key == key:
            return f.value
    return None


def _last(fields: list[Field], key: bytes) -> bytes | None:
    found = None
    for f in fields:
        if f.key == key:
            found = f.value
    return found


def select_fields(fields: list[Field], names: list[str], exclude: bool) -> bytes:
    wanted = {n.strip().lower().encode("utf-8", "surrogateescape") for n in names}
    out = bytearray()
    for f in fields:
        if (f.key is not None and f.key in wanted) != exclude:
            out += f.raw if f.raw.endswith(b"\n") else f.raw + b"\r\n"
    return bytes(out) + b"\r\n"


# --- IMAP strings ------------------------------------------------------------------------


def header_string(value: bytes) -> bytes:
    """A quoted string or, for 8-bit, control characters or length, a literal."""
    return string(value.replace(b"\x00", _REPLACEMENT))


def header_nstring(value: bytes | None) -> bytes:
    return NIL if value is None else header_string(value)


# --- MIME structured values (RFC 2045 tokens, RFC 822 comments) -------------------------

TSPECIALS = frozenset(b'()<>@,;:\\"/[]?=')
_WSP = frozenset(b" \t\r\n")
ATOM, _QUOTED, _SPECIAL, _COMMENT, _DOMAIN_LITERAL = range(5)


@dataclass(slots=True)
class _Tok:
    kind: int
    text: bytes
    space: bool  # white space or a comment came before it


def _comment(value: bytes, i: int) -> tuple[bytes, int]:
    """The text of the comment opening at value[i] (outer parentheses off) and where it ends."""
    depth, out, n = 0, bytearray(), len(value)
    while i < n:
        c = value[i]
        if c == 0x5C and i + 1 < n:
            out.append(value[i + 1])
            i += 2
            continue
        if c == 0x28:
            depth += 1
            if depth > 1:
                out.append(c)
        elif c == 0x29:
            depth -= 1
            if depth == 0:
                return bytes(out), i + 1
            out.append(c)
        else:
            out.append(c)
        i += 1
    return bytes(out), n


def _quoted(value: bytes, i: int) -> tuple[bytes, int]:
    """The unescaped content of the quoted string opening at value[i], and where it ends."""
    out, n = bytearray(), len(value)
    i += 1
    while i < n:
        c = value[i]
        if c == 0x5C and i + 1 < n:
            out.append(value[i + 1])
            i += 2
            continue
        if c == 0x22:
            return bytes(out), i + 1
        if c not in (0x0D, 0x0A):
            out.append(c)
        i += 1
    return bytes(out), n


def tokens(value: bytes, specials: frozenset[int], keep_comments: bool) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n, space = 0, len(value), False
    while i < n:
        c = value[i]
        if c in _WSP:
            space, i = True, i + 1
        elif c == 0x28:
            text, i = _comment(value, i)
            if keep_comments:
                toks.append(_Tok(_COMMENT, text, space))
            space = True
        elif c == 0x22:
            text, i = _quoted(value, i)
            toks.append(_Tok(_QUOTED, text, space))
            space = False
        elif c == 0x5B and keep_comments:  # a domain literal, in addresses only
            close = value.find(b"]", i)
            end = n if close < 0 else close + 1
            toks.append(_Tok(_DOMAIN_LITERAL, value[i:end], space))
            space, i = False, end
        elif c in specials:
            toks.append(_Tok(_SPECIAL, value[i : i + 1], space))
            space, i = False, i + 1
        else:
            j = i
            while j < n and value[j] not in _WSP and value[j] not in specials:
                j += 1
            toks.append(_Tok(ATOM, value[i:j], space))
            space, i = False, j
    return toks


def is_special(tok: _Tok, special: bytes) -> bool:
    return tok.kind == _SPECIAL and tok.text == special


def raw_params(toks: list[_Tok], i: int) -> list[tuple[bytes, bytes]]:
    """``; name=value`` pairs from toks[i:]. Lenient: an unquoted value runs to the next ``;``
    (so ``boundary=----=_Part_1`` survives); a name without ``=`` is dropped."""
    out: list[tuple[bytes, bytes]] = []
    n = len(toks)
    while i < n:
        tok = toks[i]
        if tok.kind == ATOM and i + 1 < n and is_special(toks[i + 1], b"="):
            name = tok.text.lower()
            i += 2
            if i < n and toks[i].kind == _QUOTED:
                value = toks[i].text
                i += 1
            else:
                buf = bytearray()
                while i < n and not is_special(toks[i], b";") and toks[i].kind != _QUOTED:
                    if buf and toks[i].space:
                        buf += b" "
                    buf += toks[i].text
                    i += 1
                value = bytes(buf)
            out.append((name, value))
        while i < n and not is_special(toks[i], b";"):
            i += 1
        i += 1
    return out


def _encoded_word(charset: bytes, data: bytes) -> bytes:
    if not charset:
        try:
            data.decode("utf-8")
            charset = b"utf-8"
        except UnicodeDecodeError:
            charset = b"unknown-8bit"
    return b"=?" + charset + b"?B?" + base64.b64encode(data) + b"?="


def params(raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Join RFC 2231 continuations (``name*0*=utf-8''a%20b; name*1=c``) into the plain name.

    The decoded value is sent as is when it is ASCII, else as one RFC 2047 encoded word in the
    declared charset, which clients decode in parameter values. A decoded RFC 2231 value takes
    the place of a plain parameter of the same name; of a repeated plain parameter the first
    counts (as Dovecot and the stdlib pick the boundary).
    """
    plain: dict[bytes, bytes] = {}
    sections: dict[bytes, list[tuple[int, bool, bytes]]] = {}
    order: list[bytes] = []
    for name, value in raw:
        m = _RFC2231_NAME.match(name)
        base = m.group(1) if m else name
        if base not in plain and base not in sections:
            order.append(base)
        if m is None:
            plain.setdefault(base, value)
            continue
        number = int(m.group(2)) if m.group(2) is not None else 0
        extended = m.group(3) is not None or m.group(2) is None
        sections.setdefault(base, []).append((number, extended, value))
    out: list[tuple[bytes, bytes]] = []
    for base in order:
        if base not in sections:
            out.append((base, plain[base]))
            continue
        charset, data, seen = b"", bytearray(), set()
        for number, extended, value in sorted(sections[base], key=lambda s: s[0]):
            if number in seen:
                continue
            seen.add(number)
            if extended:
                if number == 0 and value.count(b"'") >= 2:  # charset'language'value
                    charset, _language, value = value.split(b"'", 2)
                data += unquote_to_bytes(value)
            else:
                data += value
        decoded = bytes(data)
        if not decoded.isascii():
            decoded = _encoded_word(charset, decoded)
        out.append((base, decoded))
    return out


def param_list(params: list[tuple[bytes, bytes]]) -> bytes:
    if not params:
        return NIL
    return (
        b"("
        + b" ".join(header_string(k.upper()) + b" " + header_string(v) for k, v in params)
        + b")"
    )


# --- addresses (RFC 5322 section 3.4, with the obsolete forms read leniently) -----------

_ADDRESS_SPECIALS = frozenset(b'()<>@,;:\\".[]')
_Address = tuple[bytes | None, bytes | None, bytes | None, bytes | None]
_GROUP_END: _Address = (None, None, None, None)


def _phrase(toks: list[_Tok]) -> bytes | None:
    out = bytearray()
    for tok in toks:
        if tok.kind == _COMMENT:
            continue
        if out and tok.space:
            out += b" "
        out += tok.text
    return bytes(out) or None


def _join(toks: list[_Tok], kinds: tuple[int, ...]) -> tuple[bytes, bool]:
    """A local part or domain run together, up to the first token that cannot belong to it;
    and whether there was such a token."""
    out = bytearray()
    for tok in toks:
        if tok.kind == _COMMENT:
            continue
        if tok.kind not in kinds and not is_special(tok, b"."):
            return bytes(out), True
        out += tok.text
    return bytes(out), False


def _is_phrase(toks: list[_Tok]) -> bool:
    return all(t.kind in (ATOM, _QUOTED, _COMMENT) or is_special(t, b".") for t in toks)


def _addr_spec(toks: list[_Tok]) -> tuple[bytes, bytes, bool]:
    at = next((i for i, t in enumerate(toks) if is_special(t, b"@")), -1)
    local, bad_local = _join(toks if at < 0 else toks[:at], (ATOM, _QUOTED))
    domain, bad_domain = _join([] if at < 0 else toks[at + 1 :], (ATOM, _DOMAIN_LITERAL))
    return local, domain, bad_local or bad_domain


def _route_addr(toks: list[_Tok]) -> tuple[bytes | None, bytes, bytes, bool]:
    """The inside of ``<...>``: an optional obsolete source route, then an addr-spec."""
    adl: bytes | None = None
    colon = next((i for i, t in enumerate(toks) if is_special(t, b":")), -1)
    if toks and is_special(toks[0], b"@") and colon > 0:
        hops: list[bytes] = []
        for tok in toks[:colon]:
            if is_special(tok, b","):
                hops.append(b"")
            elif tok.kind != _COMMENT:
                if not hops:
                    hops.append(b"")
                hops[-1] += tok.text
        adl = b",".join(h for h in hops if h) or None
        toks = toks[colon + 1 :]
    local, domain, bad = _addr_spec(toks)
    return adl, local, domain, bad


def _mailbox(toks: list[_Tok]) -> _Address:
    lt = next((i for i, t in enumerate(toks) if is_special(t, b"<")), -1)
    if lt >= 0:
        gt = next((i for i in range(lt + 1, len(toks)) if is_special(toks[i], b">")), len(toks))
        name = _phrase(toks[:lt])
        adl, local, domain, bad = _route_addr(toks[lt + 1 : gt])
    else:
        adl, local, domain, bad = _route_addr(toks)
        comments = [t.text for t in toks if t.kind == _COMMENT and t.text.strip()]
        name = comments[0] if comments else None
    host = domain or (SYNTAX_ERROR if bad else MISSING_DOMAIN)
    return name, adl, local or MISSING_MAILBOX, host


def _addresses(value: bytes) -> list[_Address]:
    """An address list with group syntax as RFC 3501 sends it: ``(NIL NIL "group" NIL)``
    before the members and ``(NIL NIL NIL NIL)`` after. Empty list members are skipped."""
    toks = tokens(value, _ADDRESS_SPECIALS, keep_comments=True)
    out: list[_Address] = []
    in_group = False
    i, n = 0, len(toks)
    while i < n:
        elem: list[_Tok] = []
        depth = 0
        while i < n:
            tok = toks[i]
            if is_special(tok, b"<"):
                depth += 1
            elif is_special(tok, b">"):
                depth = max(0, depth - 1)
            elif depth == 0 and tok.kind == _SPECIAL and tok.text in (b",", b";", b":"):
                if tok.text != b":" or _is_phrase(elem):  # else a route or junk, not a group
                    break
            elem.append(tok)
            i += 1
        sep = toks[i].text if i < n else b""
        i += 1
        if sep == b":" and not in_group:
            out.append((None, None, _phrase(elem) or b"", None))
            in_group = True
            continue
        if any(t.kind != _COMMENT for t in elem):
            out.append(_mailbox(elem))
        if sep == b";" and in_group:
            out.append(_GROUP_END)
            in_group = False
    if in_group:
        out.append(_GROUP_END)
    return out


def _address_list(addresses: list[_Address]) -> bytes:
    if not addresses:
        return NIL
    return (
        b"("
        + b"".join(b"(" + b" ".join(header_nstring(v) for v in a) + b")" for a in addresses)
        + b")"
    )


def envelope(fields: list[Field]) -> bytes:
    """Strings from the last field of each name, address lists from all of them (as Dovecot
    does); sender and reply-to fall back to from when absent or empty (RFC 3501 7.4.2)."""

    def addresses(key: bytes) -> list[_Address]:
        found: list[_Address] = []
        for f in fields:
            if f.key == key:
                found += _addresses(f.value)
        return found

    sender_from = addresses(b"from")
    items = [
        header_nstring(_last(fields, b"date")),
        header_nstring(_last(fields, b"subject")),
        _address_list(sender_from),
        _address_list(addresses(b"sender") or sender_from),
        _address_list(addresses(b"reply-to") or sender_from),
        _address_list(addresses(b"to")),
        _address_list(addresses(b"cc")),
        _address_list(addresses(b"bcc")),
        header_nstring(_last(fields, b"in-reply-to")),
        header_nstring(_last(fields, b"message-id")),
    ]
    return b"(" + b" ".join(items) + b")"


# --- the MIME tree -----------------------------------------------------------------------
