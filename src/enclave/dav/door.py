"""What a WebDAV request must be before wsgidav sees it: checked once, at the door, in the
worker thread, before anything takes a lock or opens a transaction.

* **Bodies.** Every method but PUT (which streams) has its body read here, at most
  ``MAX_BODY`` bytes (413 above; a larger one is drained up to ``MAX_DRAIN`` so the client
  still reads the answer), and handed on from memory.
* **XML** (PROPFIND, PROPPATCH, LOCK) is parsed with defusedxml: no DTD at all (so no entity,
  internal or external, and no billion laughs), at most ``MAX_XML_DEPTH`` levels and
  ``MAX_XML_ELEMENTS`` elements (the parse stops at the first one too many). Malformed XML,
  an undefined entity included, is 400 here: wsgidav's own parser (lxml, entities left
  unresolved) would have stored ``&xxe;`` in a property that no PROPFIND could render again.
* **Counts.** A PROPPATCH changes at most ``MAX_PROPERTY_CHANGES`` properties (507, RFC 4918
  9.2: the server cannot record them); a PROPFIND names at most ``MAX_PROPFIND_NAMES`` (413).
* **Headers.** ``Destination`` must parse as a URL (400; wsgidav raised ValueError, a 500, on
  ``http://[::1``); ``Content-Length`` is a bounded integer; ``Timeout`` is rewritten to one
  value wsgidav can read (it converts any run of digits with ``int``, and more than 4,300 of
  them raised), capped at the core's longest lock; positions in ``Range`` longer than 18
  digits become 18 nines (the same for any real file; wsgidav raised on them); PROPFIND with ``Depth: infinity`` (or none,
  which means the same) is refused with 403 ``DAV:propfind-finite-depth`` (RFC 4918 9.1), as
  Apache's mod_dav does by default: one request does not get to walk a whole library into one
  reply held in memory.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote, urlparse
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import XMLParser

from enclave.core.bounds import parse_int
from enclave.core.documents.locks import MAX_TIMEOUT
from enclave.core.documents.metadata import MAX_PROPERTY_CHANGES
from enclave.core.errors import Invalid

MAX_BODY = 1024 * 1024  # bytes of a non-PUT request body
MAX_DRAIN = 16 * 1024 * 1024  # read and dropped before a 413, so the client sees it
MAX_XML_DEPTH = 32
MAX_XML_ELEMENTS = 10_000
MAX_PROPFIND_NAMES = 500
XML_METHODS = frozenset({"PROPFIND", "PROPPATCH", "LOCK"})
STREAMED = frozenset({"PUT"})
CHUNK = 64 * 1024
DAV = "{DAV:}"

_LONG_NUMBER = re.compile(r"\d{19,}")  # longer than any file's size
_FAR = "9" * 18

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class Refused(Exception):
    """The request is refused before wsgidav sees it: a status, a reason for the client and,
    for 403, the RFC 4918 precondition element that failed."""

    def __init__(self, status: int, message: str, condition: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.condition = condition


# --- XML -----------------------------------------------------------------------------------


class _Bounded(TreeBuilder):
    """Builds the tree, stopping the parse as soon as it nests or grows past the bounds, or
    (for PROPPATCH and PROPFIND) names more properties than a request may."""

    def __init__(self, method: str) -> None:
        super().__init__()
        self.method = method
        self.open: list[str] = []  # the tags from the root to the element being read
        self.elements = 0
        self.properties = 0

    def start(self, tag: str, attrs: dict[str, str]) -> Element:
        self.open.append(tag)
        self.elements += 1
        if len(self.open) > MAX_XML_DEPTH:
            raise Refused(400, f"XML nests at most {MAX_XML_DEPTH} levels deep")
        if self.elements > MAX_XML_ELEMENTS:
            raise Refused(413, f"at most {MAX_XML_ELEMENTS} XML elements in a request")
        self._count(self.open)
        return super().start(tag, attrs)

    def _count(self, path: list[str]) -> None:
        if self.method == "PROPPATCH" and len(path) == 4 and path[2] == f"{DAV}prop":
            if path[1] in (f"{DAV}set", f"{DAV}remove"):  # propertyupdate/set/prop/NAME
                self.properties += 1
                if self.properties > MAX_PROPERTY_CHANGES:
                    raise Refused(
                        507, f"a PROPPATCH changes at most {MAX_PROPERTY_CHANGES} properties"
                    )
        elif self.method == "PROPFIND" and len(path) == 3 and path[1] == f"{DAV}prop":
            self.properties += 1  # propfind/prop/NAME
            if self.properties > MAX_PROPFIND_NAMES:
                raise Refused(413, f"a PROPFIND names at most {MAX_PROPFIND_NAMES} properties")

    def end(self, tag: str) -> Element:
        self.open.pop()
        return super().end(tag)


def check_xml(method: str, body: bytes) -> Element:
    """The body's root element; ``Refused`` for anything but bounded, DTD-free XML (400),
    or more properties than one request may name."""
    parser = XMLParser(target=_Bounded(method), forbid_dtd=True)
    try:
        parser.feed(body)
        root: Element = parser.close()
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise Refused(400, f"the body is not acceptable XML ({type(exc).__name__})") from None
    return root


# --- headers -------------------------------------------------------------------------------


def _content_length(environ: dict[str, Any]) -> int | None:
    text = str(environ.get("CONTENT_LENGTH") or "").strip()
    if not text:
        return None
    try:
        return parse_int(text, "Content-Length")
    except Invalid as exc:
        raise Refused(400, str(exc)) from None


def _check_destination(environ: dict[str, Any]) -> None:
    header = environ.get("HTTP_DESTINATION")
    if header is None:
        return
    try:  # as wsgidav reads it: unquoted first, then split
        parts = urlparse(unquote(header), allow_fragments=False)
        _ = parts.port  # a malformed port or host raises here
    except ValueError:
        raise Refused(400, "Destination is not a URL") from None


def _timeout(header: str) -> str | None:
    """The first usable choice of a Timeout header, as wsgidav will read it."""
    for choice in header.split(","):
        choice = choice.strip().lower()
        if choice == "infinite":
            return "Infinite"
        digits = choice.removeprefix("second-")
        if digits != choice and digits.isascii() and digits.isdigit():
            seconds = MAX_TIMEOUT if len(digits) > 9 else min(int(digits), MAX_TIMEOUT)
            if seconds > 0:
                return f"Second-{seconds}"
    return None


def _check_headers(environ: dict[str, Any]) -> None:
    _check_destination(environ)
    if "HTTP_RANGE" in environ:  # wsgidav int()s each position: past 4,300 digits that raised
        environ["HTTP_RANGE"] = _LONG_NUMBER.sub(_FAR, str(environ["HTTP_RANGE"]))
    if "HTTP_TIMEOUT" in environ:
        cleaned = _timeout(str(environ["HTTP_TIMEOUT"]))
        if cleaned is None:
            del environ["HTTP_TIMEOUT"]  # the server's default
        else:
            environ["HTTP_TIMEOUT"] = cleaned
    if environ["REQUEST_METHOD"] == "PROPFIND":
        depth = str(environ.get("HTTP_DEPTH", "infinity")).strip().lower()
        if depth == "infinity":
            raise Refused(
                403, "PROPFIND with Depth: infinity is not offered", "propfind-finite-depth"
            )


# --- bodies --------------------------------------------------------------------------------


def _read(stream: Any, limit: int, length: int | None) -> bytes:
    """Up to ``limit`` + 1 bytes of the body (all of it when ``length`` says so)."""
    wanted = limit + 1 if length is None else min(length, limit + 1)
    parts: list[bytes] = []
    got = 0
    while got < wanted:
        chunk = stream.read(min(CHUNK, wanted - got))
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _take_body(environ: dict[str, Any]) -> bytes:
    length = _content_length(environ)
    chunked = "chunked" in str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower()
    if length is None and not chunked:
        return b""
    if length is not None and length > MAX_BODY:
        if length <= MAX_DRAIN:
            _read(environ["wsgi.input"], MAX_DRAIN, length)
        raise Refused(413, f"request bodies are at most {MAX_BODY} bytes (but for PUT)")
    body = _read(environ["wsgi.input"], MAX_BODY, length)
    if len(body) > MAX_BODY:
        raise Refused(413, f"request bodies are at most {MAX_BODY} bytes (but for PUT)")
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def check_request(environ: dict[str, Any]) -> None:
    """Refuse what must not reach wsgidav (``Refused``); the body, if any, is read here and
    handed on from memory."""
    _check_headers(environ)
    method = environ["REQUEST_METHOD"]
    if method in STREAMED:
        _content_length(environ)
        return
    body = _take_body(environ)
    if method in XML_METHODS and body.strip():
        check_xml(method, body)


def _answer(refused: Refused, start_response: Callable[..., Any]) -> list[bytes]:
    if refused.condition:
        text = (
            '<?xml version="1.0" encoding="utf-8"?>\n'
            f'<D:error xmlns:D="DAV:"><D:{refused.condition}/></D:error>\n'
        )
        content_type = "application/xml; charset=utf-8"
    else:
        text, content_type = f"{refused}\n", "text/plain; charset=utf-8"
    body = text.encode("utf-8")
    start_response(
        f"{refused.status} {HTTPStatus(refused.status).phrase}",
        [("Content-Type", content_type), ("Content-Length", str(len(body)))],
    )
    return [body]


def guarded(app: WsgiApp) -> WsgiApp:
    """``app`` behind the door."""

    def door(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            check_request(environ)
        except Refused as refused:
            return _answer(refused, start_response)
        return app(environ, start_response)

    return door
