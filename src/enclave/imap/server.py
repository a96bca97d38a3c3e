"""Starting the IMAP listeners on the process's event loop: STARTTLS (143) and implicit TLS
(993, RFC 8314), one session class for both."""

from __future__ import annotations

import asyncio
import ssl

from enclave.imap.session import TLS_SHUTDOWN_SECONDS, serve_connection
from enclave.services import Services


async def start_imap(
    services: Services, host: str, port: int, tls: ssl.SSLContext, *, implicit: bool = False
) -> asyncio.Server:
    """With ``implicit`` the session sees a TLS transport from the first byte and offers
    LOGIN at once, without STARTTLS. ``tls`` sends no session tickets (``app.server_tls``)."""

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve_connection(services, tls, reader, writer)

    if not implicit:
        return await asyncio.start_server(connected, host=host, port=port, limit=64 * 1024)
    return await asyncio.start_server(
        connected, host=host, port=port, limit=64 * 1024, ssl=tls,
        ssl_shutdown_timeout=TLS_SHUTDOWN_SECONDS,
    )  # fmt: skip
