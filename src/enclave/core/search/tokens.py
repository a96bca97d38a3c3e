"""Words, prefixes and keyed tokens: what the index stores instead of text (pure).

Text is normalised once (NFKD, combining marks dropped, case folded: ``Zürich`` and ``zurich``
are one word) and cut into words of letters and digits (``\\w+``; an address
``user-from@domain.org`` is the words ``user``, ``from``, ``domain``, ``org``). A word is
indexed whole and either by its prefixes of the ``PREFIXES`` lengths (search as you type:
documents) or by its trigrams, every run of three characters (substring search:
IMAP, where ``ser-fro`` must find ``user-from``). Each of these terms becomes a token:
HMAC-SHA-256 under the tenant's search key, with a one-letter domain (``w`` whole word, ``p``
prefix, ``g`` trigram), cut to ``TOKEN_BYTES``. Without the key a token says nothing about its
term.
"""

from __future__ import annotations

import hmac
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

TOKEN_BYTES = 16
PREFIX_MIN = 3  # shorter query prefixes match whole words only
# The prefix lengths indexed: every one up to 8, then sparser (a long word costs a few more
# tokens). A query prefix of another length is looked up by the longest indexed length under
# it, and its candidates checked against their sealed vocabulary.
PREFIXES = (3, 4, 5, 6, 7, 8, 10, 12, 16, 24, 32)
PREFIX_MAX = PREFIXES[-1]
MAX_WORD_CHARS = 64
MAX_QUERY_CHARS = 256
MAX_QUERY_TERMS = 16
MAX_WORDS = 20_000  # distinct words indexed per object; more are left out (entry incomplete)

_WORD = re.compile(r"\w+")


def normalise(text: str) -> str:
    """Case folded, without diacritics: what both indexing and queries compare."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def words(text: str) -> list[str]:
    """The words of ``text`` in order, normalised and bounded in length."""
    return [word[:MAX_WORD_CHARS] for word in _WORD.findall(normalise(text))]


def query_words(text: str) -> list[str]:
    """The words a user typed (nothing in it is syntax), bounded in number."""
    return words(text[:MAX_QUERY_CHARS])[:MAX_QUERY_TERMS]


def _token(key: bytes, domain: bytes, term: str) -> bytes:
    return hmac.digest(key, domain + b"\0" + term.encode(), "sha256")[:TOKEN_BYTES]


def word_token(key: bytes, word: str) -> bytes:
    return _token(key, b"w", word)


def prefix_token(key: bytes, prefix: str) -> bytes:
    """The token of the longest indexed prefix of ``prefix`` (at least PREFIX_MIN long)."""
    size = max(n for n in PREFIXES if n <= max(len(prefix), PREFIX_MIN))
    return _token(key, b"p", prefix[:size])


GRAM = 3


def grams(word: str) -> list[str]:
    """The trigrams of a word (none for a shorter one)."""
    return [word[i : i + GRAM] for i in range(len(word) - GRAM + 1)]


def gram_token(key: bytes, gram: str) -> bytes:
    return _token(key, b"g", gram)


@dataclass(frozen=True)
class Term:
    """One query word as the index answers it: its token, and whether candidates must still be
    checked (a prefix longer than the indexed ones)."""

    word: str
    token: bytes
    prefix: bool
    needs_check: bool


def term(key: bytes, word: str, *, prefix: bool) -> Term:
    """A whole word, or words starting with ``word``. A prefix under PREFIX_MIN characters
    is looked up as a whole word (one- and two-letter prefixes would match nearly
    everything)."""
    if prefix and len(word) >= PREFIX_MIN:
        return Term(word, prefix_token(key, word), True, len(word) not in PREFIXES)
    return Term(word, word_token(key, word), False, False)


@dataclass(frozen=True)
class Analysis:
    """What indexing one object produced."""

    weights: dict[bytes, int]  # token -> weight (occurrences times field weight, summed)
    vocabulary: list[str]  # the distinct words, sorted (sealed, for long-prefix checks)
    complete: bool  # False when MAX_WORDS cut the vocabulary


MAX_WEIGHT = 30_000


def analyse(key: bytes, fields: Iterable[tuple[str, int]], *, substrings: bool = False) -> Analysis:
    """Tokens and weights for ``(text, field weight)`` pairs: every word, and every prefix of
    the PREFIXES lengths of it (or with ``substrings`` every trigram), weighted
    by where and how often it occurs."""
    counts: dict[str, int] = {}
    complete = True
    for text, weight in fields:
        for word in words(text):
            if word in counts:
                counts[word] += weight
            elif len(counts) < MAX_WORDS:
                counts[word] = weight
            else:
                complete = False
    weights: dict[bytes, int] = {}
    parts: dict[str, int] = {}
    for word, count in counts.items():
        weights[word_token(key, word)] = min(count, MAX_WEIGHT)
        if substrings:
            pieces = grams(word)
        else:
            pieces = [word[:size] for size in PREFIXES if size <= len(word)]
        for piece in pieces:
            parts[piece] = parts.get(piece, 0) + count
    part_token = gram_token if substrings else prefix_token
    for piece, count in parts.items():
        weights[part_token(key, piece)] = min(count, MAX_WEIGHT)
    return Analysis(weights, sorted(counts), complete)


def has_prefix(vocabulary: Iterable[str], prefix: str) -> bool:
    return any(word.startswith(prefix) for word in vocabulary)
