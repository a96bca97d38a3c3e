"""Stored values rendered as XML in replies, so that a PROPFIND always answers.

Dead properties are stored as the XML element the client sent, but not every stored value is
one: the JSON API stores plain text, older versions stored what lxml kept of a body with a DTD
(``&xxe;`` left unresolved), a row may be written by a tool. wsgidav parses each value with
``string_to_xml`` and answers 500 for the property (logging the value) when that fails.
``element`` never fails: a value that is one well-formed element of the property's own name,
with no DTD and no entity references, is shown as that element; anything else is shown as
text inside an element of that name (characters XML cannot carry become U+FFFD), with a log
line naming the property, never the value. Names that cannot be XML element names are not
listed at all (``renderable``).

wsgidav builds replies with ``xml_tools.etree`` (lxml whenever it is installed, as it is here
through python-docx), so elements are made with that module.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import Any

import structlog
from wsgidav import xml_tools

log = structlog.get_logger("enclave.dav")
etree: Any = xml_tools.etree
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_local = threading.local()


def _parser() -> Any:
    """A parser per thread (lxml parsers are not to be shared between threads)."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
        )
        _local.parser = parser
    return parser


def _parsed(text: str) -> Any | None:
    """The element ``text`` is, if it is exactly one with no DTD and no entity in it."""
    try:
        if not xml_tools.use_lxml:  # defusedxml's ElementTree refuses DTDs and entities
            return etree.XML(text)
        element = etree.XML(text.encode("utf-8"), parser=_parser())
    except Exception:
        return None
    if element.getroottree().docinfo.internalDTD is not None:
        return None
    if any(isinstance(node, etree._Entity) for node in element.iter()):
        return None
    return element


def text_element(name: str, text: str) -> Any:
    element = etree.Element(name)
    element.text = _NOT_XML.sub("\ufffd", text)
    return element


@lru_cache(maxsize=4096)
def renderable(name: str) -> bool:
    """Whether ``name`` (Clark notation) can be an element's name in a reply."""
    try:
        etree.Element(name)
    except ValueError:
        return False
    return True


def element(name: str, value: str) -> Any:
    """The property ``name`` with the stored ``value``, as an element for the reply."""
    parsed = _parsed(value)
    if parsed is not None and parsed.tag == name:
        return parsed
    if parsed is None:
        log.warning("stored property is not XML: shown as text", property=name)
    return text_element(name, value)


def owner_element(owner: str) -> bytes:
    """A lock's owner as the XML wsgidav shows in lockdiscovery: a WebDAV client's
    ``DAV:owner`` as it sent it, anything else (the JSON API's plain text) as text in one."""
    if not owner:
        return b""
    parsed = _parsed(owner)
    if parsed is None:
        parsed = text_element("{DAV:}owner", owner)
    serialised: bytes = etree.tostring(parsed)
    return serialised
