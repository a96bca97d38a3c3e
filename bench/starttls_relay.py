"""A loopback relay for clients that cannot do STARTTLS: it accepts plain IMAP connections,
performs STARTTLS with the server itself (certificate checked), hides STARTTLS and
LOGINDISABLED from the capability lists it passes on, and then copies bytes both ways. Used by
imaptest_run.py, since imaptest speaks only implicit TLS and Enclave refuses LOGIN in clear."""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import threading
from pathlib import Path

from benchlib import HOST

HIDDEN = frozenset({b"STARTTLS", b"LOGINDISABLED"})
RELAY_LIMIT = 64 * 1024 * 1024  # longest server line the relay reads (literals are streamed)


CAPABILITY_LIST = re.compile(
    rb"^(\* CAPABILITY |\S+ (?:OK|NO|BAD|PREAUTH) \[CAPABILITY )([^\]\r\n]*)", re.IGNORECASE
)
LITERAL = re.compile(rb"\{(\d+)\+?\}\r?\n$")


def hide_tls_capabilities(line: bytes) -> bytes:
    """A server line with STARTTLS and LOGINDISABLED taken out of its capability list."""
    match = CAPABILITY_LIST.match(line)
    if match is None:
        return line
    kept = [cap for cap in match.group(2).split(b" ") if cap and cap.upper() not in HIDDEN]
    return line[: match.start(2)] + b" ".join(kept) + line[match.end(2) :]


class StartTlsRelay:
    """A loopback listener that hands each plain connection to ``upstream_port`` after doing
    STARTTLS there itself (certificate checked against ``cafile``). The client's greeting
    carries the capabilities the server announces after STARTTLS; STARTTLS and LOGINDISABLED
    are hidden from every capability list passed on. Runs its own event loop in a thread."""

    def __init__(self, upstream_port: int, cafile: Path, hostname: str = "localhost") -> None:
        self.upstream_port = upstream_port
        self.context = ssl.create_default_context(cafile=str(cafile))
        self.hostname = hostname
        self.port = 0
        self.connections = 0
        self.errors: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="starttls-relay", daemon=True)
        self._ready = threading.Event()

    def __enter__(self) -> StartTlsRelay:
        self._thread.start()
        if not self._ready.wait(10) or not self.port:
            raise RuntimeError("the STARTTLS relay did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, HOST, 0, limit=RELAY_LIMIT)
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            tasks = asyncio.all_tasks(self._loop)
            for task in tasks:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self._loop.close()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_w: asyncio.StreamWriter | None = None
        try:
            up_r, up_w = await asyncio.open_connection(HOST, self.upstream_port, limit=RELAY_LIMIT)
            greeting = await up_r.readline()
            if not greeting.startswith(b"* OK"):
                raise RuntimeError(f"upstream greeting {greeting[:100]!r}")
            await self._command(up_r, up_w, b"R0 STARTTLS")
            await up_w.start_tls(self.context, server_hostname=self.hostname)
            caps = b""
            for line in await self._command(up_r, up_w, b"R1 CAPABILITY"):
                if line.upper().startswith(b"* CAPABILITY "):
                    caps = line[len(b"* CAPABILITY ") :].strip()
            text = greeting.split(b"] ", 1)[1] if b"] " in greeting else b"ready\r\n"
            client_w.write(hide_tls_capabilities(b"* OK [CAPABILITY " + caps + b"] " + text))
            await client_w.drain()
            pumps = [asyncio.ensure_future(self._down(up_r, client_w)),
                     asyncio.ensure_future(self._up(client_r, up_w))]  # fmt: skip
            _, pending = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError, RuntimeError) as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")
        except asyncio.CancelledError:
            pass  # the relay is closing: end quietly (asyncio logs a cancelled handler task)
        finally:
            for writer in (client_w, up_w):
                if writer is not None:
                    writer.close()
                    with contextlib.suppress(Exception):
                        await writer.wait_closed()

    @staticmethod
    async def _command(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, command: bytes
    ) -> list[bytes]:
        """Send one of the relay's own commands; its untagged lines (OK required)."""
        writer.write(command + b"\r\n")
        await writer.drain()
        tag, lines = command.split(b" ", 1)[0] + b" ", []
        while not (line := await reader.readline()).startswith(tag):
            if not line:
                raise RuntimeError(f"upstream closed during {command.decode()}")
            lines.append(line)
        if not line[len(tag) :].upper().startswith(b"OK"):
            raise RuntimeError(f"{command.decode()}: {line.strip().decode(errors='replace')}")
        return lines

    @staticmethod
    async def _down(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Server to client, line by line so capability lists can be edited; a literal's
        bytes are copied as they are."""
        while True:
            try:
                line = await reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:
                writer.write(exc.partial)
                return
            writer.write(hide_tls_capabilities(line))
            if literal := LITERAL.search(line):
                left = int(literal.group(1))
                while left:
                    chunk = await reader.read(min(left, 1 << 16))
                    if not chunk:
                        return
                    writer.write(chunk)
                    left -= len(chunk)
            await writer.drain()

    @staticmethod
    async def _up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(1 << 16):
            writer.write(chunk)
            await writer.drain()
