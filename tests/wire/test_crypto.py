"""The segmented AES-GCM stream and sealed values, on byte strings."""

import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from enclave.core import crypto
from enclave.core.errors import IntegrityError

KEY = bytes(range(32))
AAD = b"enclave/content/t1/o1"


@pytest.mark.parametrize("size", [0, 1, crypto.SEGMENT - 1, crypto.SEGMENT, 3 * crypto.SEGMENT + 5])
def test_round_trip_any_size_and_chunking(size: int) -> None:
    plain = os.urandom(size)
    enc = crypto.StreamEncryptor(KEY, AAD)
    cipher = b"".join(enc.update(plain[i : i + 1000]) for i in range(0, size, 1000))
    cipher += enc.finalize()
    assert size < 16 or plain[:16] not in cipher
    pieces = [cipher[i : i + 777] for i in range(0, len(cipher), 777)]
    assert b"".join(crypto.decrypt_chunks(KEY, iter(pieces), AAD)) == plain


@pytest.mark.parametrize(
    "piece", [1, 777, crypto.SEGMENT, crypto.SEGMENT + crypto.TAG_BYTES, 256 * 1024, 10**7]
)
def test_any_chunking_gives_the_documented_format(piece: int) -> None:
    """Whatever the chunking on either side, the stream is MAGIC, a 7-byte prefix, then
    segments of SEGMENT bytes sealed with the nonce prefix || counter || last (checked here
    with AES-GCM directly, so files written before stay readable)."""
    plain = os.urandom(3 * crypto.SEGMENT + 12345)
    enc = crypto.StreamEncryptor(KEY, AAD)
    cipher = b"".join(enc.update(plain[i : i + piece]) for i in range(0, len(plain), piece))
    cipher += enc.finalize()
    assert cipher[:4] == crypto.MAGIC
    prefix, body = cipher[4 : crypto.HEADER_BYTES], cipher[crypto.HEADER_BYTES :]
    step = crypto.SEGMENT + crypto.TAG_BYTES
    sealed = [body[i : i + step] for i in range(0, len(body), step)]
    aead = AESGCM(KEY)
    opened = [
        aead.decrypt(prefix + n.to_bytes(4, "big") + bytes([n == len(sealed) - 1]), s, AAD)
        for n, s in enumerate(sealed)
    ]
    assert b"".join(opened) == plain
    pieces = [memoryview(cipher)[i : i + piece] for i in range(0, len(cipher), piece)]
    assert b"".join(crypto.decrypt_chunks(KEY, iter(pieces), AAD)) == plain


def test_other_associated_data_fails() -> None:
    cipher = crypto.encrypt_bytes(KEY, b"tenant secret", AAD)
    with pytest.raises(IntegrityError):
        b"".join(crypto.decrypt_chunks(KEY, iter([cipher]), b"enclave/content/t2/o1"))


def test_truncation_at_segment_boundary_is_detected() -> None:
    plain = os.urandom(2 * crypto.SEGMENT + 10)
    cipher = crypto.encrypt_bytes(KEY, plain, AAD)
    cut = crypto.HEADER_BYTES + crypto.SEGMENT + crypto.TAG_BYTES
    with pytest.raises(IntegrityError):
        b"".join(crypto.decrypt_chunks(KEY, iter([cipher[:cut]]), AAD))


def test_swapped_segments_are_detected() -> None:
    plain = os.urandom(3 * crypto.SEGMENT)
    cipher = crypto.encrypt_bytes(KEY, plain, AAD)
    step = crypto.SEGMENT + crypto.TAG_BYTES
    head, body = cipher[: crypto.HEADER_BYTES], cipher[crypto.HEADER_BYTES :]
    swapped = head + body[step : 2 * step] + body[:step] + body[2 * step :]
    with pytest.raises(IntegrityError):
        b"".join(crypto.decrypt_chunks(KEY, iter([swapped]), AAD))


def test_flipped_bit_is_detected() -> None:
    cipher = bytearray(crypto.encrypt_bytes(KEY, b"x" * 100, AAD))
    cipher[-20] ^= 1
    with pytest.raises(IntegrityError):
        b"".join(crypto.decrypt_chunks(KEY, iter([bytes(cipher)]), AAD))


def test_sealed_value_is_bound_to_its_context() -> None:
    sealed = crypto.seal(KEY, b"dek", b"a")
    assert crypto.open_sealed(KEY, sealed, b"a") == b"dek"
    with pytest.raises(IntegrityError):
        crypto.open_sealed(KEY, sealed, b"b")
    with pytest.raises(IntegrityError):
        crypto.open_sealed(os.urandom(32), sealed, b"a")
