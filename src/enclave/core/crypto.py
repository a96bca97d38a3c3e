"""Authenticated encryption primitives: pure functions over bytes, no storage, no I/O.

Key wrapping is single-shot AES-256-GCM. Content uses a segmented AES-256-GCM stream (the
STREAM construction): the plaintext is cut into 64 KiB segments, each sealed with the nonce
``prefix(7) || counter(4) || last(1)`` and the caller's associated data. Reordering, dropping or
truncating segments therefore fails to decrypt, memory stays bounded for any size, and a range
read needs only the segments it covers.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Iterator
from hashlib import sha256

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from enclave.core.errors import IntegrityError

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
SEGMENT = 64 * 1024
MAGIC = b"ENC1"
PREFIX_BYTES = 7
HEADER_BYTES = len(MAGIC) + PREFIX_BYTES


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt a small value (a key, a secret): nonce || ciphertext || tag."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
    except (InvalidTag, ValueError):
        raise IntegrityError("sealed value failed authentication") from None


def keyed_hash(key: bytes) -> hmac.HMAC:
    """An incremental HMAC-SHA256: names content without revealing it."""
    return hmac.new(key, digestmod=sha256)


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    return prefix + counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


class _Segments:
    """Cuts a stream fed in any chunking into whole segments of ``step`` bytes and hands each
    to ``seal`` (encrypt or decrypt), always keeping at least one byte back: the last segment
    is sealed differently. Segments are views, so a chunk is copied only when it must join
    bytes held back from the chunk before."""

    def __init__(self, step: int, seal: Callable[[memoryview], bytes]) -> None:
        self._step = step
        self._seal = seal
        self._held = bytearray()

    def cut(self, data: bytes | memoryview) -> bytes:
        held = self._held
        source: bytes | bytearray | memoryview = data
        if held:
            held += data
            source = held
        count = (len(source) - 1) // self._step
        if count <= 0:
            if source is data:
                held += data
            return b""
        step = self._step
        with memoryview(source) as view:
            out = b"".join([self._seal(view[i * step : (i + 1) * step]) for i in range(count)])
            if source is data:
                held += view[count * step :]
        if source is held:
            del held[: count * step]
        return out

    def rest(self) -> bytes:
        return bytes(self._held)


class StreamEncryptor:
    """Feed plaintext in any chunking; get ciphertext bytes out, ready to append to a file."""

    def __init__(self, key: bytes, aad: bytes) -> None:
        self._aead = AESGCM(key)
        self._aad = aad
        self._prefix = os.urandom(PREFIX_BYTES)
        self._counter = 0
        self._segments = _Segments(SEGMENT, lambda plain: self._segment(plain, last=False))
        self._started = False
        self._finished = False

    def _segment(self, plaintext: bytes | memoryview, last: bool) -> bytes:
        nonce = _nonce(self._prefix, self._counter, last)
        self._counter += 1
        return self._aead.encrypt(nonce, plaintext, self._aad)

    def _header(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return MAGIC + self._prefix

    def update(self, data: bytes | memoryview) -> bytes:
        assert not self._finished
        header, sealed = self._header(), self._segments.cut(data)
        return header + sealed if header else sealed

    def finalize(self) -> bytes:
        assert not self._finished
        self._finished = True
        return self._header() + self._segment(self._segments.rest(), last=True)


class StreamDecryptor:
    """The inverse of StreamEncryptor; raises IntegrityError on any tampering or truncation."""

    def __init__(self, key: bytes, aad: bytes) -> None:
        self._aead = AESGCM(key)
        self._aad = aad
        self._prefix: bytes | None = None
        self._header = bytearray()
        self._counter = 0
        self._segments = _Segments(
            SEGMENT + TAG_BYTES, lambda sealed: self._open(sealed, last=False)
        )

    def _open(self, ciphertext: bytes | memoryview, last: bool) -> bytes:
        assert self._prefix is not None
        nonce = _nonce(self._prefix, self._counter, last)
        self._counter += 1
        try:
            return self._aead.decrypt(nonce, ciphertext, self._aad)
        except InvalidTag:
            raise IntegrityError("content failed authentication") from None

    def update(self, data: bytes | memoryview) -> bytes:
        if self._prefix is None:
            self._header += data
            if len(self._header) < HEADER_BYTES:
                return b""
            if bytes(self._header[: len(MAGIC)]) != MAGIC:
                raise IntegrityError("not an Enclave encrypted stream")
            self._prefix = bytes(self._header[len(MAGIC) : HEADER_BYTES])
            data, self._header = memoryview(self._header)[HEADER_BYTES:], bytearray()
        return self._segments.cut(data)

    def finalize(self) -> bytes:
        if self._prefix is None:
            raise IntegrityError("encrypted stream is truncated")
        return self._open(self._segments.rest(), last=True)


def encrypt_bytes(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    enc = StreamEncryptor(key, aad)
    return enc.update(plaintext) + enc.finalize()


def decrypt_chunks(key: bytes, chunks: Iterator[bytes], aad: bytes) -> Iterator[bytes]:
    dec = StreamDecryptor(key, aad)
    for chunk in chunks:
        out = dec.update(chunk)
        if out:
            yield out
    yield dec.finalize()
