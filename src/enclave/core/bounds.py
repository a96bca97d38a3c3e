"""Integers that come from outside (query parameters, JSON fields, protocol headers), checked
against a range before anything stores or computes with them. Pure.

The database keeps 64-bit signed integers: a larger value reaching SQLite raises
``OverflowError`` deep in a transaction (a 500 for the client). Every front end parses its
integers here, so the refusal is always ``Invalid`` naming the field.
"""

from __future__ import annotations

from enclave.core.errors import Invalid

INT64_MAX = 2**63 - 1
MAX_DIGITS = 19  # len(str(INT64_MAX)): anything longer is out of range without converting


def bounded(value: object, name: str, low: int = 0, high: int = INT64_MAX) -> int:
    """``value`` (an int, not a bool) if ``low <= value <= high``, else ``Invalid``."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise Invalid(f"{name} must be an integer")
    if not low <= value <= high:
        raise Invalid(f"{name} must be between {low} and {high}")
    return value


def parse_int(text: str, name: str, low: int = 0, high: int = INT64_MAX) -> int:
    """A decimal integer written in ASCII digits (an optional leading minus), in range."""
    digits = text.strip()
    negative = digits.startswith("-")
    digits = digits.removeprefix("-")
    if not digits or not digits.isascii() or not digits.isdigit():
        raise Invalid(f"{name} must be an integer")
    if len(digits.lstrip("0")) > MAX_DIGITS:
        raise Invalid(f"{name} must be between {low} and {high}")
    return bounded(-int(digits) if negative else int(digits), name, low, high)
