"""Plain text out of a document's bytes, for the search index. Pure: bytes in, text out.

Uploads are hostile until proven otherwise, so every format is bounded: only the first
``MAX_INPUT_BYTES`` are looked at, the text stops at ``MAX_TEXT_CHARS``, zip members are sized
from the central directory before anything is decompressed (``zipfile`` never inflates past
the declared size), XML goes through defusedxml (no entities, no DTDs), PDF parsing stops
after ``MAX_PDF_PAGES`` pages or ``DEADLINE_SECONDS``, and any parser failure gives "" rather
than an exception. CPU-bound: callers run it in a worker thread.
"""

from __future__ import annotations

import codecs
import io
import re
import time
import zipfile
from collections.abc import Callable, Iterable
from html.parser import HTMLParser
from typing import Any

MAX_INPUT_BYTES = 20 * 1024 * 1024
MAX_TEXT_CHARS = 1024 * 1024
MAX_PDF_PAGES = 2000
DEADLINE_SECONDS = 20.0
MAX_ZIP_MEMBER = 64 * 1024 * 1024  # one inflated part (document.xml, content.xml)
MAX_ZIP_TOTAL = 256 * 1024 * 1024  # every part python-docx loads, images included
MAX_ZIP_MEMBERS = 5000

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
ODF = ("application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.spreadsheet",
       "application/vnd.oasis.opendocument.presentation")  # fmt: skip
TEXT_SUFFIXES = (".txt", ".text", ".md", ".markdown", ".csv", ".tsv", ".json", ".xml", ".log",
                 ".ini", ".toml", ".yaml", ".yml", ".rst", ".eml", ".ics", ".vcf")  # fmt: skip
TEXT_TYPES = ("application/json", "application/xml", "application/x-yaml", "message/rfc822")

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]+")  # \t and \n stay
_BLANK_LINES = re.compile(r"\n\s*\n\s*\n+")
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
         (codecs.BOM_UTF16_BE, "utf-16-be"))  # fmt: skip
_CHARSET = re.compile(rb"""charset\s*=\s*["']?([A-Za-z0-9._:-]{1,40})""", re.IGNORECASE)


class _Full(Exception):
    """Enough text collected: stop parsing."""


class _Sink:
    """Collects text up to the cap (and a deadline), then stops the parser."""

    def __init__(self, deadline: float) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.deadline = deadline

    def add(self, text: str) -> None:
        if not text:
            return
        self.parts.append(text)
        self.size += len(text)
        if self.size >= MAX_TEXT_CHARS or time.monotonic() > self.deadline:
            raise _Full

    def text(self) -> str:
        return "".join(self.parts)


def text_of(name: str, content_type: str | None, data: bytes) -> str:
    """The searchable text of a document, "" when the format is unknown or unreadable."""
    data = data[:MAX_INPUT_BYTES]
    kind = _kind(name.lower(), (content_type or "").lower(), data)
    if kind is None:
        return ""
    sink = _Sink(time.monotonic() + DEADLINE_SECONDS)
    try:
        _EXTRACTORS[kind](data, content_type or "", sink)
    except _Full:
        pass
    except Exception:  # hostile or broken input: index the name and metadata only
        return ""
    return _tidy(sink.text())


# Plain text and HTML beyond this are not looked at: the text kept is at most MAX_TEXT_CHARS.
TEXT_INPUT_BYTES = 4 * MAX_TEXT_CHARS


def wanted_bytes(name: str, content_type: str | None, head: bytes) -> int:
    """How much of a document extraction would read, judged from its first bytes (at least
    8 KiB of them when the document is that long): 0 for formats it cannot read, so callers
    read nothing more."""
    kind = _kind(name.lower(), (content_type or "").lower(), head)
    if kind is None:
        return 0
    return TEXT_INPUT_BYTES if kind in ("text", "html") else MAX_INPUT_BYTES


def _kind(name: str, content_type: str, data: bytes) -> str | None:
    mime = content_type.split(";", 1)[0].strip()
    if mime == "application/pdf" or name.endswith(".pdf") or data.startswith(b"%PDF-"):
        return "pdf"
    if mime == DOCX or name.endswith(".docx"):
        return "docx"
    if mime in ODF or name.endswith((".odt", ".ods", ".odp")):
        return "odf"
    if mime in ("text/html", "application/xhtml+xml") or name.endswith((".html", ".htm")):
        return "html"
    if mime.startswith("text/") or mime in TEXT_TYPES or name.endswith(TEXT_SUFFIXES):
        return "text"
    if not mime or mime == "application/octet-stream":
        # Undeclared: text only if it is clean UTF-8 (binary decoded as latin-1 is noise).
        head = data[:8192]
        if b"\x00" not in head and _utf8_prefix(head) is not None:
            return "text"
    return None


def _tidy(text: str) -> str:
    text = _CONTROL.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()[:MAX_TEXT_CHARS]


# --- plain text ----------------------------------------------------------------------------


def _utf8_prefix(data: bytes) -> str | None:
    """UTF-8 text, tolerating a sequence cut at the end (we may have truncated it)."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    try:
        return decoder.decode(data, final=False)
    except UnicodeDecodeError:
        return None


def decode(data: bytes, content_type: str = "") -> str:
    """Bytes to text: a BOM, then the declared charset, then UTF-8, then latin-1 (which
    never fails, so some text always comes out)."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(codec, "replace")
    declared = _CHARSET.search(content_type.encode("ascii", "ignore"))
    if declared:
        try:
            return data.decode(declared.group(1).decode(), "strict")
        except (LookupError, UnicodeDecodeError):
            pass
    text = _utf8_prefix(data)
    return text if text is not None else data.decode("latin-1")


def _plain(data: bytes, content_type: str, sink: _Sink) -> None:
    sink.add(decode(data, content_type))


# --- HTML ----------------------------------------------------------------------------------

_SKIPPED = frozenset({"script", "style", "template"})
_BLOCKS = frozenset({"p", "div", "br", "li", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5",
                     "h6", "title", "section", "article", "blockquote", "pre", "table", "hr"})  # fmt: skip


class _HtmlText(HTMLParser):
    def __init__(self, sink: _Sink) -> None:
        super().__init__(convert_charrefs=True)
        self.sink = sink
        self.skipping: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self.skipping.append(tag)
        elif tag in _BLOCKS:
            self.sink.add("\n")

    def handle_endtag(self, tag: str) -> None:
        if self.skipping and tag == self.skipping[-1]:
            self.skipping.pop()
        elif tag in _BLOCKS:
            self.sink.add("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.sink.add(data)


def _html(data: bytes, content_type: str, sink: _Sink) -> None:
    if not _CHARSET.search(content_type.encode("ascii", "ignore")):
        meta = _CHARSET.search(data[:2048])  # <meta charset=...> or http-equiv
        if meta:
            content_type = "text/html; charset=" + meta.group(1).decode()
    text = decode(data, content_type)
    parser = _HtmlText(sink)
    for start in range(0, len(text), 65536):  # in pieces, so the cap stops it early
        parser.feed(text[start : start + 65536])
    parser.close()


# --- zip containers (DOCX, ODF) ------------------------------------------------------------


def _checked_zip(data: bytes) -> zipfile.ZipFile:
    """The archive, refused if its declared sizes are bombs. ``zipfile`` stops inflating a
    member at its declared size, so the declared sizes bound the memory used."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    members = archive.infolist()
    if len(members) > MAX_ZIP_MEMBERS:
        raise ValueError("too many members")
    if any(m.file_size > MAX_ZIP_MEMBER for m in members):
        raise ValueError("member too large")
    if sum(m.file_size for m in members) > MAX_ZIP_TOTAL:
        raise ValueError("archive too large")
    return archive


def _docx(data: bytes, content_type: str, sink: _Sink) -> None:
    import docx  # deferred: lxml and python-docx load only when a DOCX comes along
    from docx.table import Table

    _checked_zip(data).close()
    document = docx.Document(io.BytesIO(data))
    seen: set[int] = set()  # merged cells repeat the same cell object

    def walk(items: Iterable[Any]) -> None:
        for item in items:
            if isinstance(item, Table):
                for row in item.rows:
                    for cell in row.cells:
                        if id(cell._tc) not in seen:
                            seen.add(id(cell._tc))
                            walk(cell.iter_inner_content())
            else:
                sink.add(item.text + "\n")

    core = document.core_properties
    sink.add(f"{core.title or ''}\n{core.subject or ''}\n{core.keywords or ''}\n")
    walk(document.iter_inner_content())


_ODF_TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
_ODF_PARAGRAPHS = frozenset({f"{{{_ODF_TEXT}}}p", f"{{{_ODF_TEXT}}}h"})
_ODF_IGNORED = frozenset({f"{{{_ODF_TEXT}}}tracked-changes"})  # deleted text stays out


def _odf(data: bytes, content_type: str, sink: _Sink) -> None:
    from defusedxml import ElementTree

    with _checked_zip(data) as archive:
        xml = archive.read("content.xml")
    root = ElementTree.fromstring(xml)
    # An explicit stack, not recursion: nesting depth is the uploader's choice. Text counts
    # only inside paragraphs and headings; whitespace between them is layout.
    stack: list[tuple[Any, bool, bool]] = [(root, False, False)]
    while stack:
        element, closing, outer = stack.pop()
        if closing:
            if element.tag in _ODF_PARAGRAPHS:
                sink.add("\n")
            if element.tail and outer:
                sink.add(element.tail)
            continue
        if element.tag in _ODF_IGNORED:
            if element.tail and outer:
                sink.add(element.tail)
            continue
        inside = outer or element.tag in _ODF_PARAGRAPHS
        if element.tag == f"{{{_ODF_TEXT}}}s":
            sink.add(" " * min(int(element.get(f"{{{_ODF_TEXT}}}c", "1") or 1), 64))
        elif element.tag in (f"{{{_ODF_TEXT}}}tab", f"{{{_ODF_TEXT}}}line-break"):
            sink.add("\t" if element.tag.endswith("tab") else "\n")
        if element.text and inside:
            sink.add(element.text)
        stack.append((element, True, outer))
        stack.extend((child, False, inside) for child in reversed(element))


# --- PDF -----------------------------------------------------------------------------------


def _pdf(data: bytes, content_type: str, sink: _Sink) -> None:
    from pypdf import PdfReader  # deferred: only when a PDF comes along

    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted and not reader.decrypt(""):  # owner-password-only PDFs open
        return
    for number, page in enumerate(reader.pages):
        if number >= MAX_PDF_PAGES:
            break
        sink.add(page.extract_text() + "\n")


_EXTRACTORS: dict[str, Callable[[bytes, str, _Sink], None]] = {
    "text": _plain,
    "html": _html,
    "docx": _docx,
    "odf": _odf,
    "pdf": _pdf,
}
