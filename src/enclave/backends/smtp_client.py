"""Sending a message to a remote SMTP server (aiosmtplib): opportunistic STARTTLS to MX hosts,
STARTTLS and AUTH when relaying through a smarthost. Returns a verdict per recipient."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiosmtplib


@dataclass(frozen=True)
class Outcome:
    code: int  # SMTP reply code; 0 when the host could not be reached
    message: str
    dsn_passed: bool = False  # the host took the DSN request on (it reports from now on)

    @property
    def delivered(self) -> bool:
        return 200 <= self.code < 300

    @property
    def permanent(self) -> bool:
        return 500 <= self.code < 600


@dataclass(frozen=True)
class DsnParams:
    """A sender's DSN request (RFC 3461), passed on to a next hop that offers DSN: MAIL's
    RET and ENVID, RCPT's NOTIFY and ORCPT (address type, address) per recipient."""

    ret: str | None = None
    envid: str | None = None
    notify: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    orcpt: Mapping[str, tuple[str, str]] = field(default_factory=dict)


def _no_verify() -> ssl.SSLContext:
    # Opportunistic TLS (RFC 3207 as practised between MX hosts): encrypt if offered, without
    # certificate checks, since most MX certificates would not pass them anyway.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _header_block(data: bytes) -> bytes:
    end = data.find(b"\r\n\r\n")
    return data if end < 0 else data[:end]


def ascii_form(address: str) -> str | None:
    """The address as plain ASCII, with its domain as A-labels (IDNA), or None when the
    local part itself is not ASCII and only an SMTPUTF8 server can take it."""
    if address.isascii():
        return address
    local, at, domain = address.rpartition("@")
    if not at or not local.isascii():
        return None
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:
        return None


def _xtext(text: str) -> str:
    """RFC 3461 4: printable ASCII but '+' and '=', the rest as +HH."""
    return "".join(
        ch if 0x21 <= ord(ch) <= 0x7E and ch not in "+=" else f"+{ord(ch):02X}"
        for ch in text
        if ord(ch) < 0x80
    )


def _mail_dsn(dsn: DsnParams) -> list[str]:
    options = [f"RET={dsn.ret}"] if dsn.ret else []
    if dsn.envid:
        options.append(f"ENVID={_xtext(dsn.envid)}")
    return options


def _rcpt_dsn(dsn: DsnParams, recipient: str) -> list[str]:
    """NOTIFY as asked (none: the next hop's default) and ORCPT when it is ASCII."""
    notify = dsn.notify.get(recipient)
    options = [f"NOTIFY={','.join(notify)}"] if notify else []
    orcpt = dsn.orcpt.get(recipient)
    if orcpt and orcpt[1].isascii():
        options.append(f"ORCPT={orcpt[0]};{_xtext(orcpt[1])}")
    return options


def _needs_utf8(host: str, address: str, role: str) -> Outcome:
    return Outcome(
        553,
        f"5.6.7 <{address}>: the {role} address is not ASCII and {host} does not offer "
        "SMTPUTF8 (RFC 6531), so it cannot be delivered there",
    )


async def send(
    host: str,
    port: int,
    mail_from: str,
    recipients: list[str],
    data: bytes,
    *,
    helo: str,
    time_limit: float,
    username: str | None = None,
    password: str | None = None,
    verify_tls: bool = False,
    dsn: DsnParams | None = None,
) -> dict[str, Outcome]:
    """One SMTP transaction. Connection problems and whole-transaction refusals give every
    recipient the same outcome; RCPT refusals are per recipient. Addresses that are not
    ASCII go out with SMTPUTF8 when the server offers it; otherwise a domain is sent as
    A-labels, and a local part that is not ASCII is refused for good (553 5.6.7)."""
    client = aiosmtplib.SMTP(
        hostname=host,
        port=port,
        timeout=time_limit,
        local_hostname=helo,
        start_tls=False,
        use_tls=False,
    )
    try:
        await client.connect()
    except (aiosmtplib.SMTPException, OSError) as exc:
        return dict.fromkeys(recipients, Outcome(0, f"cannot connect to {host}:{port}: {exc}"))
    try:
        await client.ehlo()
        if client.supports_extension("starttls"):
            context = ssl.create_default_context() if verify_tls else _no_verify()
            await client.starttls(tls_context=context)
            await client.ehlo()  # the extensions offered under TLS (aiosmtplib forgot them)
        if username and password:
            await client.login(username, password)
        utf8 = client.supports_extension("smtputf8")
        sender = mail_from if utf8 else ascii_form(mail_from)
        if sender is None:
            return dict.fromkeys(recipients, _needs_utf8(host, mail_from, "sender"))
        outcomes: dict[str, Outcome] = {}
        wire: dict[str, str] = {}  # recipient -> the form sent
        for recipient in recipients:
            form = recipient if utf8 else ascii_form(recipient)
            if form is None:
                outcomes[recipient] = _needs_utf8(host, recipient, "recipient")
            else:
                wire[recipient] = form
        if not wire:
            return outcomes
        international = not all(a.isascii() for a in (sender, *wire.values()))
        options = []
        if utf8 and (international or not _header_block(data).isascii()):
            options.append("SMTPUTF8")
        if not data.isascii() and client.supports_extension("8bitmime"):
            options.append("BODY=8BITMIME")
        encoding = "utf-8" if international else "ascii"
        passing = dsn is not None and client.supports_extension("dsn")
        if passing and dsn is not None:
            options += _mail_dsn(dsn)
        await client.mail(sender, options=options, encoding=encoding)
        accepted: list[str] = []
        for recipient, form in wire.items():
            rcpt_options = _rcpt_dsn(dsn, recipient) if passing and dsn else []
            try:
                reply = await client.rcpt(form, options=rcpt_options, encoding=encoding)
                outcomes[recipient] = Outcome(reply.code, reply.message)
                accepted.append(recipient)
            except aiosmtplib.SMTPRecipientRefused as refused:
                outcomes[recipient] = Outcome(refused.code, refused.message)
            except ValueError as exc:  # a line break or the like: never sendable
                outcomes[recipient] = Outcome(553, f"5.1.3 <{recipient}>: {exc}")
        if accepted:
            reply = await client.data(data)
            for recipient in accepted:
                outcomes[recipient] = Outcome(reply.code, reply.message, dsn_passed=passing)
        return outcomes
    except aiosmtplib.SMTPResponseException as exc:
        return dict.fromkeys(recipients, Outcome(exc.code, exc.message))
    except (aiosmtplib.SMTPException, OSError) as exc:
        return dict.fromkeys(recipients, Outcome(0, f"{host}: {exc}"))
    finally:
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError):
            client.close()
