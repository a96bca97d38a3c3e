"""One stored message as IMAP sees it: ENVELOPE, BODYSTRUCTURE and BODY[section] (RFC 3501
sections 6.4.5, 7.4.2 and 9). Pure: bytes in, bytes out.

The stdlib ``email`` package decodes but forgets where things are; IMAP needs exact octet
counts, line counts and part boundaries, so the MIME tree is walked here over the raw bytes
(RFC 2045/2046): a part's body runs from after the blank line that ends its header to before
the line break that precedes the next boundary line. A boundary line is ``--`` followed by the
boundary of the innermost open multipart or of any enclosing one (a prefix match, as RFC 2046
forbids the boundary as the prefix of any line inside), so a missing close delimiter ends a
part where the enclosing multipart's next boundary (or the end of the message) is.

Header values are sent raw (encoded words stay encoded) and unfolded; RFC 2231 parameter
continuations are joined and decoded into the plain parameter name. Malformed input never
raises: every message gets a structure, the best that its bytes allow.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import unquote_to_bytes

from enclave.imap.wire.response import NIL, string

MAX_DEPTH = 100  # nested multiparts and message/rfc822 parts; deeper ones are opaque
MAX_PARTS = 10_000  # after this many parts, further boundary lines are plain text
MISSING_MAILBOX = b"MISSING_MAILBOX"  # placeholders as Dovecot sends them: a NIL host would
MISSING_DOMAIN = b"MISSING_DOMAIN"  # read as group syntax (RFC 3501 section 7.4.2)
SYNTAX_ERROR = b"SYNTAX_ERROR"
DEFAULT_CHARSET = b"US-ASCII"
_REPLACEMENT = "\ufffd".encode()  # NUL may not appear even in a literal (CHAR8)

_LEAF, _MULTIPART, _RFC822 = 0, 1, 2
_MESSAGE, _BODY, _PART = 0, 1, 2  # what a part number is applied to, in Message._part
_DASHES = re.compile(rb"^--", re.MULTILINE)
_SECTION_PART = re.compile(r"^([0-9]+(?:\.[0-9]+)*)(?:\.(.+))?$", re.DOTALL)
_HEADER_LIST = re.compile(r"^HEADER\.FIELDS(\.NOT)?\s*\((.*)\)\s*$", re.DOTALL | re.IGNORECASE)
_LIST_ITEM = re.compile(r'"((?:[^"\\]|\\.)*)"|([^\s"()]+)')
_UNESCAPE = re.compile(r"\\(.)")
_RFC2231_NAME = re.compile(rb"^([^*]+)\*([0-9]+)?(\*)?$")
_IDENTITY_ENCODINGS = frozenset({b"7bit", b"8bit", b"binary"})  # others hide the message


# --- header fields -----------------------------------------------------------------------


@dataclass(slots=True)
class _Field:
    key: bytes | None  # lower-case name; None for a stray continuation line before any field
    raw: bytes  # the original lines, line breaks included
    value: bytes  # after the colon: unfolded, leading white space dropped


def _unfold(value: bytes) -> bytes:
    return value.replace(b"\r\n", b"").replace(b"\n", b"").lstrip(b" \t")


def _split_fields(header: bytes) -> list[_Field]:
    """The fields of a header block (without its blank line), folded lines kept together."""
    fields: list[_Field] = []
    lines: list[bytes] = []

    def flush() -> None:
        if not lines:
            return
        raw = b"".join(lines)
        lines.clear()
        if raw[:1] in (b" ", b"\t"):
            fields.append(_Field(None, raw, _unfold(raw)))
            return
        name, colon, value = raw.partition(b":")
        key = name.rstrip(b" \t\r\n").lower()
        fields.append(_Field(key, raw, _unfold(value) if colon else b""))

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
        return [f.value for f in _split_fields(header) if f.key]
    # One field by name (what SEARCH asks for): a scan for its lines beats splitting them all.
    field = re.compile(
        rb"^" + re.escape(name.encode()) + rb"[ \t]*:([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)", re.I | re.M
    )
    return [_unfold(m.group(1)) for m in field.finditer(header)]


def _first(fields: list[_Field], key: bytes) -> bytes | None:
    for f in fields:
        if f.key == key:
            return f.value
    return None


def _last(fields: list[_Field], key: bytes) -> bytes | None:
    found = None
    for f in fields:
        if f.key == key:
            found = f.value
    return found


def _select_fields(fields: list[_Field], names: list[str], exclude: bool) -> bytes:
    wanted = {n.strip().lower().encode("utf-8", "surrogateescape") for n in names}
    out = bytearray()
    for f in fields:
        if (f.key is not None and f.key in wanted) != exclude:
            out += f.raw if f.raw.endswith(b"\n") else f.raw + b"\r\n"
    return bytes(out) + b"\r\n"


# --- IMAP strings ------------------------------------------------------------------------


def _str(value: bytes) -> bytes:
    """A quoted string or, for 8-bit, control characters or length, a literal."""
    return string(value.replace(b"\x00", _REPLACEMENT))


def _nstr(value: bytes | None) -> bytes:
    return NIL if value is None else _str(value)


# --- MIME structured values (RFC 2045 tokens, RFC 822 comments) -------------------------

_TSPECIALS = frozenset(b'()<>@,;:\\"/[]?=')
_WSP = frozenset(b" \t\r\n")
_ATOM, _QUOTED, _SPECIAL, _COMMENT, _DOMAIN_LITERAL = range(5)


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


def _tokens(value: bytes, specials: frozenset[int], keep_comments: bool) -> list[_Tok]:
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
            toks.append(_Tok(_ATOM, value[i:j], space))
            space, i = False, j
    return toks


def _is(tok: _Tok, special: bytes) -> bool:
    return tok.kind == _SPECIAL and tok.text == special


def _raw_params(toks: list[_Tok], i: int) -> list[tuple[bytes, bytes]]:
    """``; name=value`` pairs from toks[i:]. Lenient: an unquoted value runs to the next ``;``
    (so ``boundary=----=_Part_1`` survives); a name without ``=`` is dropped."""
    out: list[tuple[bytes, bytes]] = []
    n = len(toks)
    while i < n:
        tok = toks[i]
        if tok.kind == _ATOM and i + 1 < n and _is(toks[i + 1], b"="):
            name = tok.text.lower()
            i += 2
            if i < n and toks[i].kind == _QUOTED:
                value = toks[i].text
                i += 1
            else:
                buf = bytearray()
                while i < n and not _is(toks[i], b";") and toks[i].kind != _QUOTED:
                    if buf and toks[i].space:
                        buf += b" "
                    buf += toks[i].text
                    i += 1
                value = bytes(buf)
            out.append((name, value))
        while i < n and not _is(toks[i], b";"):
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


def _params(raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
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


def _param_list(params: list[tuple[bytes, bytes]]) -> bytes:
    if not params:
        return NIL
    return b"(" + b" ".join(_str(k.upper()) + b" " + _str(v) for k, v in params) + b")"


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
        if tok.kind not in kinds and not _is(tok, b"."):
            return bytes(out), True
        out += tok.text
    return bytes(out), False


def _is_phrase(toks: list[_Tok]) -> bool:
    return all(t.kind in (_ATOM, _QUOTED, _COMMENT) or _is(t, b".") for t in toks)


def _addr_spec(toks: list[_Tok]) -> tuple[bytes, bytes, bool]:
    at = next((i for i, t in enumerate(toks) if _is(t, b"@")), -1)
    local, bad_local = _join(toks if at < 0 else toks[:at], (_ATOM, _QUOTED))
    domain, bad_domain = _join([] if at < 0 else toks[at + 1 :], (_ATOM, _DOMAIN_LITERAL))
    return local, domain, bad_local or bad_domain


def _route_addr(toks: list[_Tok]) -> tuple[bytes | None, bytes, bytes, bool]:
    """The inside of ``<...>``: an optional obsolete source route, then an addr-spec."""
    adl: bytes | None = None
    colon = next((i for i, t in enumerate(toks) if _is(t, b":")), -1)
    if toks and _is(toks[0], b"@") and colon > 0:
        hops: list[bytes] = []
        for tok in toks[:colon]:
            if _is(tok, b","):
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
    lt = next((i for i, t in enumerate(toks) if _is(t, b"<")), -1)
    if lt >= 0:
        gt = next((i for i in range(lt + 1, len(toks)) if _is(toks[i], b">")), len(toks))
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
    toks = _tokens(value, _ADDRESS_SPECIALS, keep_comments=True)
    out: list[_Address] = []
    in_group = False
    i, n = 0, len(toks)
    while i < n:
        elem: list[_Tok] = []
        depth = 0
        while i < n:
            tok = toks[i]
            if _is(tok, b"<"):
                depth += 1
            elif _is(tok, b">"):
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
    return b"(" + b"".join(b"(" + b" ".join(_nstr(v) for v in a) + b")" for a in addresses) + b")"


def _envelope(fields: list[_Field]) -> bytes:
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
        _nstr(_last(fields, b"date")),
        _nstr(_last(fields, b"subject")),
        _address_list(sender_from),
        _address_list(addresses(b"sender") or sender_from),
        _address_list(addresses(b"reply-to") or sender_from),
        _address_list(addresses(b"to")),
        _address_list(addresses(b"cc")),
        _address_list(addresses(b"bcc")),
        _nstr(_last(fields, b"in-reply-to")),
        _nstr(_last(fields, b"message-id")),
    ]
    return b"(" + b" ".join(items) + b")"


# --- the MIME tree -----------------------------------------------------------------------


@dataclass(slots=True)
class _Hit:
    """A boundary line: where it starts, where the next line starts, whose it is."""

    line: int
    after: int
    level: int
    close: bool


@dataclass(slots=True, eq=False)
class _Entity:
    start: int
    body_start: int
    end: int
    fields: list[_Field]
    kind: int = _LEAF
    type: bytes = b"text"
    subtype: bytes = b"plain"
    params: list[tuple[bytes, bytes]] = field(default_factory=list)
    children: list[_Entity] = field(default_factory=list)
    message: _Entity | None = None  # the encapsulated message of a message/rfc822 part


def _classify(ent: _Entity, in_digest: bool, depth: int) -> None:
    value = _first(ent.fields, b"content-type")
    toks = _tokens(value, _TSPECIALS, keep_comments=False) if value is not None else []
    if len(toks) >= 3 and toks[0].kind == _ATOM and _is(toks[1], b"/") and toks[2].kind == _ATOM:
        ent.type, ent.subtype = toks[0].text.lower(), toks[2].text.lower()
        ent.params = _params(_raw_params(toks, 3))
    elif value is None and in_digest:
        ent.type, ent.subtype = b"message", b"rfc822"
    if ent.type == b"multipart" and not dict(ent.params).get(b"boundary"):
        ent.type, ent.subtype, ent.params = b"text", b"plain", []  # invalid: RFC 2045 5.2
    if ent.type == b"text" and all(k != b"charset" for k, _ in ent.params):
        ent.params.append((b"charset", DEFAULT_CHARSET))
    if ent.type == b"multipart" or (ent.type, ent.subtype) == (b"message", b"rfc822"):
        if depth >= MAX_DEPTH:
            ent.type, ent.subtype, ent.params = b"application", b"octet-stream", []
        else:
            ent.kind = _MULTIPART if ent.type == b"multipart" else _RFC822


def _empty(at: int) -> _Entity:
    """An empty text/plain part, where the grammar needs one and the message has none."""
    ent = _Entity(at, at, at, [])
    _classify(ent, False, 0)
    return ent


class _Parser:
    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.parts = 0

    def _match(self, pos: int, stack: list[bytes]) -> _Hit | None:
        raw = self.raw
        nl = raw.find(b"\n", pos)
        after = len(raw) if nl < 0 else nl + 1
        line = raw[pos + 2 : after].rstrip(b"\r\n")
        best, best_len = -1, -1
        for level in range(len(stack) - 1, -1, -1):  # the innermost wins a tie
            boundary = stack[level]
            if len(boundary) > best_len and line.startswith(boundary):
                best, best_len = level, len(boundary)
        if best < 0:
            return None
        return _Hit(pos, after, best, line[best_len : best_len + 2] == b"--")

    def _next_boundary(self, pos: int, stack: list[bytes]) -> _Hit | None:
        if not stack or self.parts >= MAX_PARTS:
            return None
        while (m := _DASHES.search(self.raw, pos)) is not None:
            hit = self._match(m.start(), stack)
            if hit is not None:
                return hit
            nl = self.raw.find(b"\n", m.start())
            if nl < 0:
                return None
            pos = nl + 1
        return None

    def _end_before(self, hit: _Hit | None, floor: int) -> int:
        """Where content ends: before the line break that belongs to the boundary line."""
        if hit is None:
            return len(self.raw)
        line = hit.line
        if self.raw[line - 2 : line] == b"\r\n":
            line -= 2
        elif self.raw[line - 1 : line] == b"\n":
            line -= 1
        return max(floor, line)

    def _read_header(self, pos: int, stack: list[bytes]) -> tuple[int, int, _Hit | None]:
        """(end of the fields, start of the body, boundary line met inside the header)."""
        raw, size = self.raw, len(self.raw)
        line = pos
        while line < size:
            if raw.startswith(b"\r\n", line):
                return line, line + 2, None
            if raw.startswith(b"\n", line):
                return line, line + 1, None
            if stack and raw.startswith(b"--", line) and self.parts < MAX_PARTS:
                hit = self._match(line, stack)
                if hit is not None:
                    cut = self._end_before(hit, pos)
                    return cut, cut, hit
            nl = raw.find(b"\n", line)
            line = size if nl < 0 else nl + 1
        return size, size, None

    def entity(
        self, pos: int, stack: list[bytes], in_digest: bool, depth: int
    ) -> tuple[_Entity, _Hit | None]:
        self.parts += 1
        fields_end, body_start, hit = self._read_header(pos, stack)
        ent = _Entity(pos, body_start, body_start, _split_fields(self.raw[pos:fields_end]))
        _classify(ent, in_digest, depth)
        if hit is not None:  # the header ran into a boundary: no body at all
            if ent.kind == _MULTIPART:
                ent.children.append(_empty(body_start))
            elif ent.kind == _RFC822:
                ent.message = _empty(body_start)
            return ent, hit
        if ent.kind == _MULTIPART:
            return ent, self._multipart(ent, stack, depth)
        if stack and fields_end < body_start and self.raw.startswith(b"--", body_start):
            hit = self._match(body_start, stack) if self.parts < MAX_PARTS else None
            if hit is not None:  # an empty part: that line break is the delimiter's (RFC 2046)
                ent.body_start = ent.end = fields_end
                if ent.kind == _RFC822:
                    ent.message = _empty(fields_end)
                return ent, hit
        if ent.kind == _RFC822:
            if _encoding(ent.fields).lower() in _IDENTITY_ENCODINGS:
                ent.message, hit = self.entity(body_start, stack, False, depth + 1)
                ent.end = ent.message.end
                return ent, hit
        hit = self._next_boundary(body_start, stack)
        ent.end = self._end_before(hit, body_start)
        return ent, hit

    def _multipart(self, ent: _Entity, stack: list[bytes], depth: int) -> _Hit | None:
        level = len(stack)
        inner = [*stack, dict(ent.params)[b"boundary"]]
        digest = ent.subtype == b"digest"
        hit = self._next_boundary(ent.body_start, inner)  # the preamble is skipped
        while hit is not None and hit.level == level and not hit.close:
            if hit.after >= len(self.raw):  # a boundary line ends the message: no new part
                hit = None
                break
            child, hit = self.entity(hit.after, inner, digest, depth + 1)
            ent.children.append(child)
        if hit is not None and hit.level == level:  # the close delimiter; then the epilogue
            epilogue = hit.after
            hit = self._next_boundary(epilogue, stack)
            ent.end = self._end_before(hit, epilogue)
        else:  # no close delimiter: the multipart ends where an enclosing one goes on
            floor = ent.children[-1].end if ent.children else ent.body_start
            ent.end = self._end_before(hit, floor)
        if not ent.children:  # the grammar wants at least one part
            ent.children.append(_empty(ent.end))
        return hit


# --- BODYSTRUCTURE -----------------------------------------------------------------------


def _disposition(fields: list[_Field]) -> bytes:
    value = _first(fields, b"content-disposition")
    toks = _tokens(value, _TSPECIALS, keep_comments=False) if value is not None else []
    if not toks or toks[0].kind != _ATOM:
        return NIL
    params = _param_list(_params(_raw_params(toks, 1)))
    return b"(" + _str(toks[0].text.upper()) + b" " + params + b")"


def _language(fields: list[_Field]) -> bytes:
    value = _first(fields, b"content-language")
    toks = _tokens(value, _TSPECIALS, keep_comments=False) if value is not None else []
    tags = [t.text for t in toks if t.kind == _ATOM]
    if not tags:
        return NIL
    return b"(" + b" ".join(_str(t) for t in tags) + b")"


def _encoding(fields: list[_Field]) -> bytes:
    value = _first(fields, b"content-transfer-encoding")
    toks = _tokens(value, _TSPECIALS, keep_comments=False) if value is not None else []
    return toks[0].text.upper() if toks and toks[0].kind == _ATOM else b"7BIT"


class _Renderer:
    def __init__(self, raw: bytes, extended: bool) -> None:
        self.raw = raw
        self.extended = extended

    def body(self, ent: _Entity) -> bytes:
        fields = ent.fields
        if ent.kind == _MULTIPART:
            out = b"".join(self.body(child) for child in ent.children)
            out += b" " + _str(ent.subtype.upper())
            if self.extended:
                out += b" " + b" ".join((
                    _param_list(ent.params), _disposition(fields), _language(fields),
                    _nstr(_first(fields, b"content-location")),
                ))  # fmt: skip
            return b"(" + out + b")"
        lines = self.raw.count(b"\n", ent.body_start, ent.end)
        items = [
            _str(ent.type.upper()),
            _str(ent.subtype.upper()),
            _param_list(ent.params),
            _nstr(_first(fields, b"content-id")),
            _nstr(_first(fields, b"content-description")),
            _str(_encoding(fields)),
            b"%d" % (ent.end - ent.body_start),
        ]
        if ent.kind == _RFC822:
            inner = ent.message if ent.message is not None else _empty(0)
            items += [_envelope(inner.fields), self.body(inner), b"%d" % lines]
        elif ent.type == b"text":
            items.append(b"%d" % lines)
        if self.extended:
            items += [
                _nstr(_first(fields, b"content-md5")),
                _disposition(fields),
                _language(fields),
                _nstr(_first(fields, b"content-location")),
            ]
        return b"(" + b" ".join(items) + b")"


# --- the message -------------------------------------------------------------------------


def is_header_section(spec: str) -> bool:
    """Whether a section specifier asks only for the message's own header block (HEADER,
    HEADER.FIELDS, HEADER.FIELDS.NOT), which the header block alone can answer."""
    return spec.strip().upper().startswith("HEADER")


class Message:
    """A message parsed once (lazily) from its stored bytes.

    ``section`` takes the text between ``BODY[`` and ``]`` (partial ``<a.b>`` is the
    caller's) and returns the octets to send, or None when the part does not exist or the
    specifier is malformed (a MIME without part number, HEADER on a part that is not
    message/rfc822, a part number 0...). It never raises.
    """

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.size = len(raw)

    @cached_property
    def _root(self) -> _Entity:
        root, _ = _Parser(self.raw).entity(0, [], False, 0)
        return root

    def envelope(self) -> bytes:
        return _envelope(self._root.fields)

    def bodystructure(self, extended: bool = True) -> bytes:
        """BODYSTRUCTURE, or with ``extended=False`` the non-extensible BODY."""
        return _Renderer(self.raw, extended).body(self._root)

    def header_fields(self, names: list[str], exclude: bool = False) -> bytes:
        """BODY[HEADER.FIELDS (names)] (or .NOT): the matching fields as they are, folded lines
        included, in their order, then the blank line."""
        return _select_fields(self._root.fields, names, exclude)

    def section(self, spec: str) -> bytes | None:
        spec = spec.strip()
        if not spec:
            return self.raw
        m = _SECTION_PART.match(spec)
        if m is None:
            return self._msgtext(self._root, spec)
        numbers = [int(n) for n in m.group(1).split(".")]
        part = self._part(numbers)
        if part is None:
            return None
        text = m.group(2)
        if text is None:
            return self.raw[part.body_start : part.end]
        if text.strip().upper() == "MIME":
            return self.raw[part.start : part.body_start]
        if part.kind != _RFC822 or part.message is None:
            return None
        return self._msgtext(part.message, text)

    def _msgtext(self, ent: _Entity, text: str) -> bytes | None:
        """HEADER, TEXT, HEADER.FIELDS (...) and HEADER.FIELDS.NOT (...) of a message."""
        word = text.strip().upper()
        if word == "HEADER":
            return self.raw[ent.start : ent.body_start]
        if word == "TEXT":
            return self.raw[ent.body_start : ent.end]
        m = _HEADER_LIST.match(text.strip())
        if m is None:
            return None
        names = [_UNESCAPE.sub(r"\1", q) or a for q, a in _LIST_ITEM.findall(m.group(2))]
        if not names:
            return None
        return _select_fields(ent.fields, names, exclude=m.group(1) is not None)

    def _part(self, numbers: list[int]) -> _Entity | None:
        """Walk part numbers (RFC 3501 section 6.4.5): a multipart's parts count from 1; a
        message that is not multipart has only a part 1, its body; a message/rfc822 part's
        numbers are those of the message it holds. As in Dovecot, a part of a multipart that
        has no parts of its own is its own part 1."""
        ent = self._root
        state = _MESSAGE
        for number in numbers:
            if number < 1:
                return None
            if ent.kind == _RFC822 and state != _MESSAGE:
                if ent.message is None:  # encoded in base64 or quoted-printable
                    return None
                ent, state = ent.message, _MESSAGE
            if ent.kind == _MULTIPART:
                if number > len(ent.children):
                    return None
                ent, state = ent.children[number - 1], _PART
            elif number != 1 or state == _BODY:
                return None
            elif state == _MESSAGE:
                state = _BODY
        return ent
