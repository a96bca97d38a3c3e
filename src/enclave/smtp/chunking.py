"""CHUNKING and BINARYMIME (RFC 3030) for aiosmtpd, which has neither: ``BDAT <size>
[LAST]`` carries exactly ``size`` octets, no dot-stuffing and no end-of-data line, so a body
may be binary (``MAIL FROM ... BODY=BINARYMIME``).

The rules kept here:
- every chunk's octets are read off the wire even when the command is refused, so the
  client's next command is read as a command (RFC 3030 2);
- a transaction is whole-DATA or all-BDAT; BODY=BINARYMIME needs BDAT (503 otherwise);
- the message is held in memory up to ``data_size_limit``; past it the rest is read and
  dropped, and the chunk is refused (552) with the transaction;
- ``BDAT ... LAST`` hands the message to the handler's ``handle_DATA``, so the reply (250
  only after the commit) is the same as for DATA.

DATA itself is read here too, piece by piece rather than line by line (``_read_message``).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from aiosmtpd.smtp import SMTP

from enclave.smtp import replies

PIECE = 64 * 1024  # octets read at a time
_BDAT = re.compile(r"(\d{1,18})(?:\s+(LAST))?", re.IGNORECASE)
_BODY = re.compile(r"(?i)(?<=\s)BODY=BINARYMIME(?=\s|$)")
CHUNKS = "enclave_chunks"  # bytearray on the envelope while a BDAT transaction is open
BINARY = "enclave_binarymime"


def split_path(arg: str) -> tuple[str, str]:
    """``FROM:<path> PARAMS`` -> (``FROM:<path>``, `` PARAMS``): parameters follow the last
    '>' (a quoted local part may hold spaces and '=', never an unquoted '>')."""
    end = arg.rfind(">")
    return (arg[: end + 1], arg[end + 1 :]) if end >= 0 else (arg, "")


class ChunkingSMTP(SMTP):
    """BDAT for handlers whose ``chunking`` attribute is true (others get 502)."""

    @property
    def chunking(self) -> bool:
        return bool(getattr(self.event_handler, "chunking", False))

    async def smtp_MAIL(self, arg: str | None) -> None:
        binary = False
        if arg and self.chunking:
            path, params = split_path(arg)
            stripped = _BODY.sub("", params)
            binary = stripped != params
            arg = path + stripped
        await super().smtp_MAIL(arg)
        if binary and self.envelope is not None and self.envelope.mail_from:
            setattr(self.envelope, BINARY, True)
            self.envelope.mail_options.append("BODY=BINARYMIME")

    async def smtp_DATA(self, arg: str) -> None:
        envelope = self.envelope
        if envelope is not None and (getattr(envelope, BINARY, False) or hasattr(envelope, CHUNKS)):
            await self.push(replies.DATA_AFTER_BDAT)
            return
        if self._decode_data:  # never here: the listeners keep bytes (smtp.server)
            await super().smtp_DATA(arg)
            return
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push(replies.NEED_RCPT)
            return
        if arg:
            await self.push(replies.DATA_SYNTAX)
            return
        await self.push(replies.START_DATA)
        content = await self._read_message()
        if isinstance(content, str):  # refused, now that all of it was read
            self._end_transaction()
            await self.push(content)
            return
        self.envelope.content = content
        self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._end_transaction()
        await self.push(status if isinstance(status, str) else replies.OK)

    async def _read_message(self) -> bytes | str:
        """DATA's message (RFC 5321 4.5.2: up to CRLF.CRLF, a leading dot taken off every
        line), or the refusal once all of it was read. It is read as it arrives, whatever
        the reader holds at a time (at most a few hundred KiB), with a few scans at C speed
        per piece; aiosmtpd reads it line by line, several microseconds a line on the event
        loop (300,000 folded lines stalled every other client for 0.8 s). What follows the
        end (pipelined commands) goes back to the reader, which is empty then."""
        limit = self.data_size_limit or 0
        buffer = bytearray(b"\r\n")  # a CRLF before the first line: the end is CRLF.CRLF
        carried = 0  # octets of the line being read, up to its LF
        refusal: str | None = None
        while True:
            piece = await self._reader.read(1 << 30)  # all it holds, once there is some
            if not piece:
                self._close()
                raise asyncio.CancelledError
            self._reset_timeout()
            before = len(buffer)
            buffer += piece
            end = buffer.find(b"\r\n.\r\n", max(0, before - 4))
            if end >= 0:
                rest = bytes(buffer[end + 5 :])
                del buffer[end + 2 :]
                piece = piece[: max(0, end + 2 - before)]  # the message's part of it
                if rest and not self._reader.at_eof():
                    self._reader.feed_data(rest)
            longest, carried = _longest_line(piece, carried)
            if refusal is None and max(longest, carried) >= self.line_length_limit:
                refusal = replies.LINE_TOO_LONG
            if refusal is None and limit and len(buffer) - 2 > limit:
                refusal = replies.TOO_MUCH_DATA
            if end >= 0:
                break
            if refusal is not None:
                del buffer[:-4]  # all that the end may have begun with
        if refusal is not None:
            return refusal
        unstuffed = buffer.replace(b"\r\n.", b"\r\n")
        return bytes(memoryview(unstuffed)[2:])

    async def smtp_BDAT(self, arg: str | None) -> None:
        if not self.chunking:
            await self.push(replies.NOT_IMPLEMENTED)
            return
        found = _BDAT.fullmatch((arg or "").strip())
        if not found:  # the size is unknown, so nothing can be skipped: the stream is lost
            await self.push(replies.BDAT_SYNTAX)
            self._close()
            return
        size, last = int(found.group(1)), found.group(2) is not None
        refusal = await self._bdat_refusal()
        if refusal:
            await self._discard(size)
            await self.push(refusal)
            return
        assert self.envelope is not None
        chunks = _chunks(self.envelope, create=True)
        limit = self.data_size_limit or 0
        if limit and len(chunks) + size > limit:
            await self._discard(size)
            self._end_transaction()
            await self.push(replies.TOO_MUCH_DATA)
            return
        await self._read_into(chunks, size)
        if not last:
            await self.push(replies.chunk_received(size, len(chunks)))
            return
        content = bytes(chunks)
        chunks.clear()
        self.envelope.content = content
        self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._end_transaction()
        await self.push(status if isinstance(status, str) else replies.OK)

    async def _bdat_refusal(self) -> str | None:
        assert self.session is not None
        if not self.session.host_name:
            return replies.HELO_FIRST
        if getattr(self, "_auth_required", False) and not self.session.authenticated:
            return replies.AUTH_REQUIRED
        if self.envelope is None or not self.envelope.mail_from:
            return replies.NEED_MAIL
        if not self.envelope.rcpt_tos:
            return replies.NEED_RCPT
        return None

    async def _read_into(self, target: bytearray | None, size: int) -> None:
        """Read ``size`` octets (into ``target``, or nowhere), PIECE at a time; a client
        that goes away mid-chunk ends the session like any disconnect."""
        while size:
            try:
                piece = await self._reader.readexactly(min(size, PIECE))
            except asyncio.IncompleteReadError:
                self._close()
                raise asyncio.CancelledError from None
            if target is not None:
                target += piece
            size -= len(piece)
            self._reset_timeout()

    async def _discard(self, size: int) -> None:
        await self._read_into(None, size)

    def _end_transaction(self) -> None:
        self.envelope = self._create_envelope()  # what aiosmtpd does after DATA

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _longest_line(piece: bytes, carried: int) -> tuple[int, int]:
    """(the longest line ended in ``piece``, counting the ``carried`` octets of the line it
    continues; the octets of the line it leaves open), lines up to and without their LF:
    aiosmtpd's limit counts CRLF, so a line is too long from ``line_length_limit`` octets
    before its LF."""
    first = piece.find(b"\n")
    if first < 0:
        return 0, carried + len(piece)
    lines = piece[first + 1 :].split(b"\n")
    return max([carried + first, *map(len, lines[:-1])]), len(lines[-1])


def _chunks(envelope: Any, *, create: bool = False) -> bytearray:
    found: bytearray | None = getattr(envelope, CHUNKS, None)
    if found is None:
        found = bytearray()
        if create:
            setattr(envelope, CHUNKS, found)
    return found


def is_binary(envelope: Any) -> bool:
    """Whether the transaction declared BODY=BINARYMIME."""
    return bool(getattr(envelope, BINARY, False))
