"""One stored message as IMAP sees it: ENVELOPE, BODYSTRUCTURE and BODY[section] (RFC 3501
sections 6.4.5, 7.4.2 and 9). Pure: bytes in, bytes out.

The stdlib ``email`` package decodes but forgets where things are; IMAP needs exact octet
counts, line counts and part boundaries, so the MIME tree is walked here over the raw bytes
(RFC 2045/2046): a part's body runs from after the blank line that ends its header to before
the line break that precedes the next boundary line. A boundary line is ``--`` followed by the
boundary of the innermost open multipart or of any enclosing one (a prefix match, as RFC 2046
forbids the boundary as the prefix of any line inside), so a missing close delimiter ends a
part where the enclosing multipart's next boundary (or the end of the message) is.

Header fields, parameters, addresses and ENVELOPE are in ``headers``. Malformed input never
raises: every message gets a structure, the best that its bytes allow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

from enclave.imap.wire.headers import (
    ATOM,
    TSPECIALS,
    Field,
    envelope,
    first_value,
    header_nstring,
    header_string,
    is_special,
    param_list,
    params,
    raw_params,
    select_fields,
    split_fields,
    tokens,
)
from enclave.imap.wire.response import NIL

MAX_DEPTH = 100  # nested multiparts and message/rfc822 parts; deeper ones are opaque
MAX_PARTS = 10_000  # after this many parts, further boundary lines are plain text
DEFAULT_CHARSET = b"US-ASCII"

_LEAF, _MULTIPART, _RFC822 = 0, 1, 2
_MESSAGE, _BODY, _PART = 0, 1, 2  # what a part number is applied to, in Message._part
_DASHES = re.compile(rb"^--", re.MULTILINE)
_SECTION_PART = re.compile(r"^([0-9]+(?:\.[0-9]+)*)(?:\.(.+))?$", re.DOTALL)
_HEADER_LIST = re.compile(r"^HEADER\.FIELDS(\.NOT)?\s*\((.*)\)\s*$", re.DOTALL | re.IGNORECASE)
_LIST_ITEM = re.compile(r'"((?:[^"\\]|\\.)*)"|([^\s"()]+)')
_UNESCAPE = re.compile(r"\\(.)")
_IDENTITY_ENCODINGS = frozenset({b"7bit", b"8bit", b"binary"})  # others hide the message


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
    fields: list[Field]
    kind: int = _LEAF
    type: bytes = b"text"
    subtype: bytes = b"plain"
    params: list[tuple[bytes, bytes]] = field(default_factory=list)
    children: list[_Entity] = field(default_factory=list)
    message: _Entity | None = None  # the encapsulated message of a message/rfc822 part


def _classify(ent: _Entity, in_digest: bool, depth: int) -> None:
    value = first_value(ent.fields, b"content-type")
    toks = tokens(value, TSPECIALS, keep_comments=False) if value is not None else []
    if (
        len(toks) >= 3
        and toks[0].kind == ATOM
        and is_special(toks[1], b"/")
        and toks[2].kind == ATOM
    ):
        ent.type, ent.subtype = toks[0].text.lower(), toks[2].text.lower()
        ent.params = params(raw_params(toks, 3))
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
        ent = _Entity(pos, body_start, body_start, split_fields(self.raw[pos:fields_end]))
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


def _disposition(fields: list[Field]) -> bytes:
    value = first_value(fields, b"content-disposition")
    toks = tokens(value, TSPECIALS, keep_comments=False) if value is not None else []
    if not toks or toks[0].kind != ATOM:
        return NIL
    rendered = param_list(params(raw_params(toks, 1)))
    return b"(" + header_string(toks[0].text.upper()) + b" " + rendered + b")"


def _language(fields: list[Field]) -> bytes:
    value = first_value(fields, b"content-language")
    toks = tokens(value, TSPECIALS, keep_comments=False) if value is not None else []
    tags = [t.text for t in toks if t.kind == ATOM]
    if not tags:
        return NIL
    return b"(" + b" ".join(header_string(t) for t in tags) + b")"


def _encoding(fields: list[Field]) -> bytes:
    value = first_value(fields, b"content-transfer-encoding")
    toks = tokens(value, TSPECIALS, keep_comments=False) if value is not None else []
    return toks[0].text.upper() if toks and toks[0].kind == ATOM else b"7BIT"


class _Renderer:
    def __init__(self, raw: bytes, extended: bool) -> None:
        self.raw = raw
        self.extended = extended

    def body(self, ent: _Entity) -> bytes:
        fields = ent.fields
        if ent.kind == _MULTIPART:
            out = b"".join(self.body(child) for child in ent.children)
            out += b" " + header_string(ent.subtype.upper())
            if self.extended:
                out += b" " + b" ".join((
                    param_list(ent.params), _disposition(fields), _language(fields),
                    header_nstring(first_value(fields, b"content-location")),
                ))  # fmt: skip
            return b"(" + out + b")"
        lines = self.raw.count(b"\n", ent.body_start, ent.end)
        items = [
            header_string(ent.type.upper()),
            header_string(ent.subtype.upper()),
            param_list(ent.params),
            header_nstring(first_value(fields, b"content-id")),
            header_nstring(first_value(fields, b"content-description")),
            header_string(_encoding(fields)),
            b"%d" % (ent.end - ent.body_start),
        ]
        if ent.kind == _RFC822:
            inner = ent.message if ent.message is not None else _empty(0)
            items += [envelope(inner.fields), self.body(inner), b"%d" % lines]
        elif ent.type == b"text":
            items.append(b"%d" % lines)
        if self.extended:
            items += [
                header_nstring(first_value(fields, b"content-md5")),
                _disposition(fields),
                _language(fields),
                header_nstring(first_value(fields, b"content-location")),
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
        return envelope(self._root.fields)

    def bodystructure(self, extended: bool = True) -> bytes:
        """BODYSTRUCTURE, or with ``extended=False`` the non-extensible BODY."""
        return _Renderer(self.raw, extended).body(self._root)

    def header_fields(self, names: list[str], exclude: bool = False) -> bytes:
        """BODY[HEADER.FIELDS (names)] (or .NOT): the matching fields as they are, folded lines
        included, in their order, then the blank line."""
        return select_fields(self._root.fields, names, exclude)

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
        return select_fields(ent.fields, names, exclude=m.group(1) is not None)

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
