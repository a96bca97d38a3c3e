"""Sending a message to a remote SMTP server (aiosmtplib): opportunistic STARTTLS to MX hosts,
STARTTLS and AUTH when relaying through a smarthost. Returns a verdict per recipient."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import aiosmtplib


@dataclass(frozen=True)
class Outcome:
    code: int  # SMTP reply code; 0 when the host could not be reached
    message: str

    @property
    def delivered(self) -> bool:
        return 200 <= self.code < 300

    @property
    def permanent(self) -> bool:
        return 500 <= self.code < 600


def _no_verify() -> ssl.SSLContext:
    # Opportunistic TLS (RFC 3207 as practised between MX hosts): encrypt if offered, without
    # certificate checks, since most MX certificates would not pass them anyway.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


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
) -> dict[str, Outcome]:
    """One SMTP transaction. Connection problems and whole-transaction refusals give every
    recipient the same outcome; RCPT refusals are per recipient."""
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
        if username and password:
            await client.login(username, password)
        await client.mail(mail_from)
        outcomes: dict[str, Outcome] = {}
        accepted: list[str] = []
        for recipient in recipients:
            try:
                reply = await client.rcpt(recipient)
                outcomes[recipient] = Outcome(reply.code, reply.message)
                accepted.append(recipient)
            except aiosmtplib.SMTPRecipientRefused as refused:
                outcomes[recipient] = Outcome(refused.code, refused.message)
        if accepted:
            reply = await client.data(data)
            for recipient in accepted:
                outcomes[recipient] = Outcome(reply.code, reply.message)
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
