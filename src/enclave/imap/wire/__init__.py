"""The IMAP wire layer: bytes in, events and bytes out. No asyncio, no sockets, no database."""
