"""DKIM verification of inbound mail with dkimpy, given only what the signature covers, so the
cost grows linearly with the message however its header is folded. Synchronous (DNS): call it
in a thread.

What dkimpy would do with the whole message, and what is done instead:
- ``dkim.rfc822_parse`` is quadratic on folded fields (``core.mail.headers`` explains): the
  header is split by ``core.mail.headers.split`` and the verifier is handed, besides the
  signature, only the fields the signature's ``h=`` tag names: for a name listed k times the
  last k instances (one more for From, which dkimpy checks once more), the only ones its
  bottom-up selection (RFC 6376 5.4.2) can reach. The verdict is the same.
- its relaxed body canonicalisation backtracks over every run of blanks (``[\\t ]+\\r\\n``:
  7 s for one line of 40,000 spaces) and holds the GIL for seconds on a large text body:
  ``relaxed_body`` below gives the same octets in linear time, piece by piece.
- removing ``b=`` from the signature (``dkim.RE_BTAG``) backtracks on folding white space,
  and selecting fields costs (fields named) x (fields kept): a signature over
  ``MAX_SIGNATURE_BYTES`` or ``MAX_SIGNATURE_LINES``, or naming more than
  ``MAX_SIGNED_FIELDS`` fields, is not verified (``dkim=policy``, RFC 8601 2.7.1). Real
  signatures are under 2 KiB, a dozen lines and a few dozen fields.

As ``authheaders.check_dkim`` does, only the first (topmost) signature is verified.
"""

from __future__ import annotations

import re
from collections import Counter

import dkim
import dkim.canonicalization
from authheaders import DKIMAuthenticationResult
from dkim.util import InvalidTagValueList, parse_tag_value
from dns.exception import DNSException

from enclave.core.mail.headers import Field, pieces

MAX_SIGNATURE_BYTES = 4096
MAX_SIGNATURE_LINES = 128
MAX_SIGNED_FIELDS = 256

_BLANKS = re.compile(rb"[\t ]{2,}|\t")  # runs of WSP that are not already a single space
_NAMES = re.compile(rb"\s*:\s*")  # how dkimpy splits h=


def relaxed_body(body: bytes) -> bytes:
    """RFC 6376 3.4.4 as dkimpy's ``Relaxed.canonicalize_body`` computes it (trailing WSP
    removed from each line, other runs of WSP made one space, empty lines at the end
    removed), without backtracking: runs are made one space first, so a blank before CRLF
    is a single space. Pieces end after a LF, and no run or CRLF spans two of them."""
    done = []
    for piece in pieces(body):
        if b"\t" in piece or b"  " in piece:
            piece = _BLANKS.sub(b" ", piece)
        done.append(piece.replace(b" \r\n", b"\r\n"))
    canonical = dkim.canonicalization.strip_trailing_lines(b"".join(done))
    result: bytes = dkim.canonicalization.correct_empty_body(canonical)
    return result


# The same output (tests/wire/test_mail_headers.py compares them), in linear time; signing
# (core.mail.dkim) gets it too.
dkim.canonicalization.Relaxed.canonicalize_body = staticmethod(relaxed_body)


def _refusal(signature: bytes) -> str | None:
    """Why the signature is not verified at all, or None."""
    if len(signature) > MAX_SIGNATURE_BYTES:
        return f"signature over {MAX_SIGNATURE_BYTES} octets"
    if signature.count(b"\r\n") > MAX_SIGNATURE_LINES:
        return f"signature over {MAX_SIGNATURE_LINES} lines"
    return None


def covered(fields: list[Field], first: int, names: list[bytes]) -> list[Field]:
    """The signature at index ``first`` and the fields of ``h=`` (``names``, lowercase) that
    a bottom-up selection can reach, in their order."""
    wanted = Counter(names)
    wanted[b"from"] += 1  # dkimpy selects From once more than h= lists it
    keep = {first}
    for index in range(len(fields) - 1, -1, -1):
        name = fields[index][0].lower()
        if wanted[name] > 0:
            wanted[name] -= 1
            keep.add(index)
    return [fields[index] for index in sorted(keep)]


def _view(fields: list[Field], first: int) -> list[Field] | str:
    """What the verifier is given, or why the signature is not verified."""
    refusal = _refusal(fields[first][1])
    if refusal:
        return refusal
    try:
        signed = parse_tag_value(fields[first][1]).get(b"h")
    except InvalidTagValueList:
        return [fields[first]]  # dkimpy fails it on its own
    if signed is None:
        return [fields[first]]
    names = [name.lower() for name in _NAMES.split(signed)]
    if len(names) > MAX_SIGNED_FIELDS:
        return f"signature names over {MAX_SIGNED_FIELDS} fields"
    return covered(fields, first, names)


def check_dkim(fields: list[Field], body: bytes) -> DKIMAuthenticationResult:
    """``authheaders.check_dkim`` on a message split by ``core.mail.headers.split``."""
    first = next((i for i, (name, _) in enumerate(fields) if name.lower() == b"dkim-signature"), -1)
    if first < 0:
        return DKIMAuthenticationResult(result="none")
    view = _view(fields, first)
    if isinstance(view, str):
        return DKIMAuthenticationResult(result="policy", result_comment=view)
    verifier = dkim.DKIM()
    # What DKIM(message) holds after its set_message: [name, value] lists and the body.
    verifier.headers = [[name, value] for name, value in view]
    verifier.body = body
    try:
        result = "pass" if verifier.verify() else "fail"
    except DNSException:
        result = "temperror"
    except Exception:  # dkim.DKIMException and whatever a hostile signature makes it raise
        result = "fail"
    tags = verifier.signature_fields
    return DKIMAuthenticationResult(
        result=result,
        header_d=tags.get(b"d", b"").decode("ascii", "replace"),
        header_i=tags.get(b"i", b"").decode("ascii", "replace"),
    )
