"""Paths inside a library: ``a/b/c`` from the library's root. Pure.

Names are kept as the client sends them (no case folding or Unicode normalisation: macOS sends
NFD, others NFC, and each expects its own back), but a name must be usable everywhere the
library may be exported: no slash, no NUL or other control characters, not ``.`` or ``..``,
at most 255 UTF-8 bytes.
"""

from __future__ import annotations

from enclave.core.errors import Invalid

MAX_NAME_BYTES = 255
MAX_DEPTH = 64


def check_name(name: str) -> str:
    if name in ("", ".", ".."):
        raise Invalid(f"{name!r} is not a usable name")
    if "/" in name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise Invalid("names may not contain slashes or control characters")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise Invalid(f"names are at most {MAX_NAME_BYTES} bytes")
    return name


def split(path: str) -> list[str]:
    """The names along a path; empty for the root. Repeated or trailing slashes are ignored."""
    parts = [check_name(part) for part in path.split("/") if part]
    if len(parts) > MAX_DEPTH:
        raise Invalid(f"folders nest at most {MAX_DEPTH} deep")
    return parts


def join(parts: list[str]) -> str:
    return "/".join(parts)


def parent_and_name(path: str) -> tuple[list[str], str]:
    parts = split(path)
    if not parts:
        raise Invalid("the library root has no name")
    return parts[:-1], parts[-1]


def within(path: list[str], ancestor: list[str]) -> bool:
    """Whether ``path`` is ``ancestor`` or below it."""
    return path[: len(ancestor)] == ancestor
