"""RFC 3461 parameters of MAIL and RCPT (``smtp.dsnparams``): split, decoded, case kept."""

from __future__ import annotations

import pytest

from enclave.core.mail.dsn import DsnRequest, RecipientDsn, wants
from enclave.smtp.dsnparams import DsnSyntax, take_mail, take_rcpt, xtext_decode


def test_mail_parameters_are_taken_and_the_rest_left() -> None:
    assert take_mail("FROM:<a@b.example> SIZE=10 RET=hdrs ENVID=Ab+2Bc") == (
        "FROM:<a@b.example> SIZE=10",
        "HDRS",
        "Ab+c",
    )
    assert take_mail('FROM:<"x y=z"@b.example>') == ('FROM:<"x y=z"@b.example>', None, None)


def test_rcpt_parameters_keep_their_case() -> None:
    arg, rcpt = take_rcpt("TO:<b@x.example> NOTIFY=success,Delay ORCPT=RFC822;Bob+40X")
    assert arg == "TO:<b@x.example>"
    assert rcpt == RecipientDsn(notify=("SUCCESS", "DELAY"), orcpt=("rfc822", "Bob@X"))
    assert take_rcpt("TO:<b@x.example>") == ("TO:<b@x.example>", None)
    _, utf8 = take_rcpt("TO:<b@x> ORCPT=utf-8;j\\x{F6}rg@x")
    assert utf8 is not None and utf8.orcpt == ("utf-8", "jörg@x")


@pytest.mark.parametrize(
    "arg",
    ["TO:<b@x> NOTIFY=NEVER,DELAY", "TO:<b@x> NOTIFY=", "TO:<b@x> NOTIFY=SUCCESS,SUCCESS",
     "TO:<b@x> ORCPT=;b@x", "TO:<b@x> ORCPT=rfc822;a=b", "TO:<b@x> ORCPT=rfc822;+4",
     "TO:<b@x> ORCPT=utf-8;\\x{FFFFFF}"],
)  # fmt: skip
def test_bad_rcpt_parameters_raise_with_a_reply(arg: str) -> None:
    with pytest.raises(DsnSyntax, match=r"^501 5\.5\.4"):
        take_rcpt(arg)


def test_xtext() -> None:
    assert xtext_decode("a+2Bb+3Dc") == "a+b=c"
    with pytest.raises(DsnSyntax):
        xtext_decode("a=b")


def test_what_is_reported_follows_notify() -> None:
    def ask(*notify: str) -> DsnRequest:
        return DsnRequest(recipients={"b@x": RecipientDsn(notify=notify)})

    assert wants(DsnRequest(), "b@x", "failed") and not wants(DsnRequest(), "b@x", "relayed")
    assert not any(wants(ask("NEVER"), "b@x", a) for a in ("failed", "delayed", "relayed"))
    assert wants(ask("SUCCESS"), "B@X", "delivered") and not wants(ask("SUCCESS"), "b@x", "failed")
    assert wants(ask("DELAY"), "b@x", "delayed")
    row = ask("SUCCESS", "FAILURE").row("b@x")
    assert DsnRequest.from_row(row, "b@x").of("b@x") == RecipientDsn(notify=("SUCCESS", "FAILURE"))
