"""Starting SMTP listeners on the process's event loop."""

from __future__ import annotations

import asyncio
import logging
import ssl

from aiosmtpd.smtp import SMTP

from enclave.services import Services
from enclave.smtp import replies
from enclave.smtp.handler import HandlerBase
from enclave.smtp.inbound import InboundHandler
from enclave.smtp.submission import SubmissionHandler

# aiosmtpd's own logger is chatty (and warns about its own deprecated attributes); our
# handlers log what matters through structlog.
logging.getLogger("mail.log").setLevel(logging.ERROR)


class EnclaveSMTP(SMTP):
    async def smtp_STARTTLS(self, arg: str) -> None:
        if self._tls_protocol is not None:  # aiosmtpd would nest a second TLS layer
            await self.push("554 5.5.1 TLS is already active")
            return
        await super().smtp_STARTTLS(arg)

    async def smtp_AUTH(self, arg: str) -> None:
        # aiosmtpd answers a wrong number of arguments without an enhanced status code
        if not arg or len(arg.split()) > 2:
            await self.push(replies.AUTH_SYNTAX)
            return
        await super().smtp_AUTH(arg)


def smtp_hostname(services: Services) -> str:
    return services.settings.smtp.hostname or services.settings.deployment.hostnames[0]


async def _listen(
    services: Services,
    handler: HandlerBase,
    host: str,
    port: int,
    tls: ssl.SSLContext | None,
    *,
    submission: bool,
) -> asyncio.Server:
    settings = services.settings.smtp
    loop = asyncio.get_running_loop()

    def protocol() -> SMTP:
        return EnclaveSMTP(
            handler,
            data_size_limit=settings.max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=handler.hostname,
            ident="Enclave ESMTP",
            tls_context=tls,
            require_starttls=submission,  # credentials never cross the wire in clear
            timeout=settings.timeout_seconds,
            auth_required=submission,
            auth_require_tls=True,
            loop=loop,
        )

    return await loop.create_server(protocol, host=host, port=port)


async def start_inbound(
    services: Services, host: str, port: int, tls: ssl.SSLContext | None
) -> asyncio.Server:
    """The MX listener: anyone may connect; only local recipients are accepted."""
    handler = InboundHandler(services, smtp_hostname(services))
    return await _listen(services, handler, host, port, tls, submission=False)


async def start_submission(
    services: Services, host: str, port: int, tls: ssl.SSLContext
) -> asyncio.Server:
    """The submission listener: STARTTLS, then AUTH, then mail from the user's addresses."""
    handler = SubmissionHandler(services, smtp_hostname(services))
    return await _listen(services, handler, host, port, tls, submission=True)
