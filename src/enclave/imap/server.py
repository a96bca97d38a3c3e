"""Starting the IMAP listener on the process's event loop."""

from __future__ import annotations

import asyncio
import ssl

from enclave.imap.session import serve_connection
from enclave.services import Services


async def start_imap(
    services: Services, host: str, port: int, tls: ssl.SSLContext
) -> asyncio.Server:
    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve_connection(services, tls, reader, writer)

    return await asyncio.start_server(connected, host=host, port=port, limit=64 * 1024)
