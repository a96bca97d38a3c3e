"""Header splitting, forged-result removal and what DKIM verification is handed, on bytes:
the same answers as dkimpy's own code, in time linear in the input however it is folded."""

from __future__ import annotations

import random
import time

import dkim
import dkim.canonicalization as canon
import pytest

from enclave.core.mail.headers import MalformedHeader, header_length, split
from enclave.smtp.authentication import strip_forged
from enclave.smtp.dkimverify import MAX_SIGNED_FIELDS, check_dkim, covered, relaxed_body

ATOMS = [b"a", b"B", b":", b" ", b"\t", b"\r\n", b"x-y", b"From ", b"\r\n\r\n"]


def _reference_relaxed(body: bytes) -> bytes:
    """dkimpy's relaxed body canonicalisation, from its own (unpatched) functions."""
    stripped = canon.strip_trailing_whitespace(body)
    return canon.correct_empty_body(canon.strip_trailing_lines(canon.compress_whitespace(stripped)))


def _theirs(raw: bytes) -> object:
    try:
        fields, body = dkim.rfc822_parse(raw)
    except (dkim.MessageFormatError, IndexError):
        return "malformed"
    return [tuple(field) for field in fields], body


def _ours(raw: bytes) -> object:
    try:
        return split(raw)
    except MalformedHeader:
        return "malformed"


@pytest.mark.parametrize(
    "raw",
    [
        b"", b"\r\n", b"\r\nbody\r\n", b"a: b\r\n", b"a: b", b"a: b\r\n\r\n",
        b"From x@y Mon\r\nA:b\r\n c\r\n\td\r\n\r\nbody\nwith a bare LF\r\n",
        b"A:\r\nB: x\r\n\r\n\r\n\r\n", b" folded first: x\r\n\r\n", b"no colon\r\n\r\n",
    ],
)  # fmt: skip
def test_split_gives_what_dkimpy_gives(raw: bytes) -> None:
    assert _ours(raw) == _theirs(raw)


def test_split_agrees_with_dkimpy_on_random_headers() -> None:
    chance = random.Random(9)
    compared = 0
    for _ in range(20_000):
        raw = b"".join(chance.choice(ATOMS) for _ in range(chance.randint(0, 25)))
        head = raw[: header_length(raw)].replace(b"\r\n", b"")
        if b"\r" in head or b"\n" in head:
            assert _ours(raw) == "malformed"  # never reaches the MX's checks
            continue
        assert _ours(raw) == _theirs(raw), raw
        compared += 1
    assert compared > 5_000


def test_huge_folded_header_is_split_in_linear_time() -> None:
    """dkimpy's rfc822_parse copies a folded field once per line: minutes at 300,000."""
    raw = (
        b"From: a@example.org\r\nTo: "
        + b",\r\n ".join(b"user%d@example.org" % n for n in range(300_000))
        + b"\r\n\r\nhello\r\n"
    )
    started = time.perf_counter()
    fields, body = split(raw)
    assert time.perf_counter() - started < 2.0
    assert [name for name, _ in fields] == [b"From", b"To"] and body == b"hello\r\n"
    assert fields[1][1].count(b"\r\n") == 300_000


def test_relaxed_body_is_dkimpys_in_linear_time() -> None:
    chance = random.Random(4)
    atoms = [b" ", b"\t", b"\r\n", b"a", b"\r", b"  ", b"\n"]
    for _ in range(20_000):
        body = b"".join(chance.choice(atoms) for _ in range(chance.randint(0, 40)))
        assert relaxed_body(body) == _reference_relaxed(body), body
    body = b"".join(chance.choice(atoms) for _ in range(600_000))  # several pieces
    assert relaxed_body(body) == _reference_relaxed(body)
    # dkimpy backtracks over a run of blanks: 7 s for 40,000 of them, and holds the GIL.
    started = time.perf_counter()
    assert relaxed_body(b"x" + b" " * 2_000_000 + b"y\r\n") == b"x y\r\n"
    assert time.perf_counter() - started < 1.0
    assert dkim.canonicalization.Relaxed.canonicalize_body is relaxed_body


def test_verifier_gets_every_field_the_signature_can_select() -> None:
    chance = random.Random(5)
    names = [b"from", b"to", b"subject", b"x-a", b"dkim-signature"]
    for _ in range(3_000):
        fields = [(chance.choice(names).title(), b" v%d\r\n" % n) for n in range(20)]
        fields.insert(chance.randint(0, 20), (b"DKIM-Signature", b" v=1; first\r\n"))
        first = next(i for i, (n, _) in enumerate(fields) if n.lower() == b"dkim-signature")
        signed = [chance.choice([*names, b"absent"]) for _ in range(chance.randint(1, 12))]
        view = covered(fields, first, signed)
        expected = dkim.select_headers(fields, [*signed, b"from"])
        assert dkim.select_headers(view, [*signed, b"from"]) == expected
        assert next(f for f in view if f[0].lower() == b"dkim-signature") == fields[first]
        assert len(view) <= len(signed) + 2


def _signature(**tags: bytes) -> bytes:
    base = {b"v": b"1", b"a": b"rsa-sha256", b"d": b"signer.example", b"s": b"sel"}
    base.update({b"h": b"from", b"bh": b"AAAA", b"b": b"AAAA"})
    base.update({key.encode(): value for key, value in tags.items()})
    return b" " + b"; ".join(k + b"=" + v for k, v in base.items()) + b"\r\n"


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        (_signature(h=b":".join([b"x-field"] * (MAX_SIGNED_FIELDS + 1))), "fields"),
        (_signature(b=b"A" * 5000), "octets"),
        (_signature(b=b"\r\n ".join([b"AAAA"] * 200)), "lines"),
    ],
    ids=["too-many-fields", "too-long", "too-many-lines"],
)
def test_oversized_signature_is_not_verified(signature: bytes, reason: str) -> None:
    """dkimpy's b= removal backtracks on folding white space (0.3 s for 4 KiB, holding the
    GIL) and its field selection costs fields named x fields: such signatures get
    dkim=policy, before any DNS lookup."""
    fields = [(b"DKIM-Signature", signature), (b"From", b" a@signer.example\r\n")]
    result = check_dkim(fields, b"hello\r\n")
    assert result.result == "policy" and reason in str(result.result_comment)


def test_forged_results_with_quoted_or_escaped_ids_are_removed() -> None:
    """RFC 8601: the authserv-id may be a quoted-string, and comments before it may hold
    quoted pairs; a forged field written so claims to be ours just the same."""
    raw = (
        b'Authentication-Results: "mx.example.org"; dkim=pass\r\n'
        b"Authentication-Results: (a \\( b) mx.example.org; spf=pass\r\n"
        b"Authentication-Results: (nested (comment)) MX.example.org(x); dmarc=pass\r\n"
        b"Authentication-Results : mx.example.org;\r\n\tarc=pass\r\n"
        b"Authentication-Results: mx.example.org.evil; spf=pass\r\n"
        b"Subject: hi\r\n\r\nbody\r\n"
    )
    assert strip_forged(raw, "mx.example.org") == (
        b"Authentication-Results: mx.example.org.evil; spf=pass\r\nSubject: hi\r\n\r\nbody\r\n"
    )


def test_forged_results_are_removed_in_linear_time() -> None:
    """The authserv-id used to be found by slicing the value after each comment: 500,000
    comments before it copied the rest of the value 500,000 times."""
    raw = (
        b"Authentication-Results: " + b"()" * 500_000 + b" mx.example.org; dkim=pass\r\n"
        b"Subject: hi\r\n\r\nbody\r\n"
    )
    started = time.perf_counter()
    assert strip_forged(raw, "mx.example.org") == b"Subject: hi\r\n\r\nbody\r\n"
    assert time.perf_counter() - started < 2.0
