"""Starting SMTP listeners on the process's event loop."""

from __future__ import annotations

import asyncio
import ssl

from aiosmtpd.smtp import SMTP

from enclave.services import Services
from enclave.smtp.inbound import InboundHandler


def smtp_hostname(services: Services) -> str:
    return services.settings.smtp.hostname or services.settings.deployment.hostnames[0]


async def start_inbound(
    services: Services, host: str, port: int, tls: ssl.SSLContext | None
) -> asyncio.Server:
    """The MX listener: anyone may connect; only local recipients are accepted."""
    settings = services.settings.smtp
    hostname = smtp_hostname(services)
    handler = InboundHandler(services, hostname)
    loop = asyncio.get_running_loop()

    def protocol() -> SMTP:
        return SMTP(
            handler,
            data_size_limit=settings.max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=hostname,
            ident="Enclave ESMTP",
            tls_context=tls,
            require_starttls=False,
            timeout=settings.timeout_seconds,
            auth_required=False,
            auth_require_tls=True,
            loop=loop,
        )

    return await loop.create_server(protocol, host=host, port=port)
