"""Snippets cut at query time from the decrypted fields of the top results (pure): a few
words around the first match, each matching word between MARK_START and MARK_END."""

from __future__ import annotations

import re

from enclave.core.search.tokens import normalise

# Control characters never occur in indexed text; a front end escapes the snippet, then
# turns them into its own highlighting.
MARK_START = "\x02"
MARK_END = "\x03"
ELLIPSIS = "…"

_WORD = re.compile(r"\w+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
CONTEXT_WORDS = 8


def _matches(word: str, wanted: list[str], last_is_prefix: bool) -> bool:
    folded = normalise(word)
    if folded in wanted:
        return True
    return last_is_prefix and bool(wanted) and folded.startswith(wanted[-1])


def snippet(text: str, wanted: list[str], *, last_is_prefix: bool = True) -> str:
    """About 2 x CONTEXT_WORDS words of ``text`` around its first match of the (normalised)
    ``wanted`` words, matches marked; "" if none matches."""
    text = _CONTROL.sub(" ", text)
    spans = [m.span() for m in _WORD.finditer(text)]
    hits = [i for i, (a, b) in enumerate(spans) if _matches(text[a:b], wanted, last_is_prefix)]
    if not hits:
        return ""
    first = max(hits[0] - CONTEXT_WORDS, 0)
    last = min(hits[0] + CONTEXT_WORDS, len(spans) - 1)
    start, end = spans[first][0], spans[last][1]
    out, cursor = [], start
    for i in range(first, last + 1):
        a, b = spans[i]
        out.append(text[cursor:a])
        word = text[a:b]
        out.append(f"{MARK_START}{word}{MARK_END}" if i in hits else word)
        cursor = b
    body = " ".join("".join(out).split())
    return (ELLIPSIS if first > 0 else "") + body + (ELLIPSIS if end < len(text) else "")
