"""One IMAP connection: moves bytes between the socket and the pure wire layer, keeps the
connection state (RFC 3501 section 3), and dispatches each command to ``do_<NAME>``.

State table (what each state accepts; anything else is ``BAD``):

    not authenticated: CAPABILITY NOOP LOGOUT ID STARTTLS LOGIN AUTHENTICATE
    authenticated:     the above minus STARTTLS/LOGIN/AUTHENTICATE, plus SELECT EXAMINE
                       CREATE DELETE RENAME SUBSCRIBE UNSUBSCRIBE LIST LSUB STATUS APPEND
                       NAMESPACE ENABLE IDLE GETQUOTA GETQUOTAROOT NOTIFY
    selected:          all of authenticated, plus CHECK CLOSE UNSELECT EXPUNGE SEARCH FETCH
                       STORE COPY MOVE SORT THREAD CANCELUPDATE and their UID forms

LOGIN and AUTHENTICATE are refused until STARTTLS (LOGINDISABLED): credentials never cross
the wire in clear. Replies are written only after the change they report is committed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

import enclave
from enclave.core import context
from enclave.core.errors import (
    AuthenticationFailed,
    Conflict,
    EnclaveError,
    Forbidden,
    Invalid,
    NotFound,
    QuotaExceeded,
)
from enclave.core.principal import Principal
from enclave.imap import appending
from enclave.imap.notifying import NotifyCommands, Watch
from enclave.imap.searching import SearchCommands
from enclave.imap.selected import SelectedCommands
from enclave.imap.sorting import SortCommands
from enclave.imap.view import View
from enclave.imap.wire import listing, mutf7, response
from enclave.imap.wire.commands import (
    ParseError,
    Request,
    TaggedParseError,
    UnknownCommand,
    parse,
)
from enclave.imap.wire.framing import (
    Command,
    CommandFramer,
    LineTooLong,
    LiteralBudget,
    NeedContinuation,
    Refused,
    tag_of,
)
from enclave.services import Services

log = structlog.get_logger("enclave.imap")

# Literal data one command may carry before login (LOGIN needs far less), and the budget for
# literal data held by all connections of the process ([imap] literal_budget_bytes).
UNAUTHENTICATED_LITERALS = 8 * 1024
LITERALS = LiteralBudget(256 * 1024 * 1024)

ANY_STATE = frozenset({"CAPABILITY", "NOOP", "LOGOUT", "ID"})
NOT_AUTHENTICATED = ANY_STATE | {"STARTTLS", "LOGIN", "AUTHENTICATE"}
AUTHENTICATED = ANY_STATE | {
    "SELECT", "EXAMINE", "CREATE", "DELETE", "RENAME", "SUBSCRIBE", "UNSUBSCRIBE", "LIST",
    "LSUB", "STATUS", "APPEND", "NAMESPACE", "ENABLE", "IDLE", "GETQUOTA", "GETQUOTAROOT",
    "NOTIFY",
}  # fmt: skip
SELECTED = AUTHENTICATED | {
    "CHECK", "CLOSE", "UNSELECT", "EXPUNGE", "SEARCH", "FETCH", "STORE", "COPY", "MOVE",
    "SORT", "THREAD", "CANCELUPDATE",
}  # fmt: skip

CAPABILITIES = (
    "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UNSELECT UIDPLUS MOVE "
    "SPECIAL-USE LIST-EXTENDED LIST-STATUS QUOTA CONDSTORE QRESYNC CHILDREN ESEARCH SEARCHRES "
    "CONTEXT=SEARCH STATUS=SIZE SORT SORT=DISPLAY THREAD=ORDEREDSUBJECT THREAD=REFERENCES ESORT "
    "BINARY MULTIAPPEND CATENATE NOTIFY"
).split()

# A client that leaves without TLS's close_notify (many do) would keep the connection for
# asyncio's default 30 s after LOGOUT.
TLS_SHUTDOWN_SECONDS = 2.0
# What ENABLE switches on (RFC 5161), by the upper-cased name, with its proper spelling.
ENABLEABLE = {"CONDSTORE": "CONDSTORE", "QRESYNC": "QRESYNC", "IMAP4REV2": "IMAP4rev2"}

# Core errors -> (status, response code), in one table.
ERRORS: dict[type[EnclaveError], tuple[str, str | None]] = {
    QuotaExceeded: ("NO", "OVERQUOTA"),
    NotFound: ("NO", "NONEXISTENT"),
    Conflict: ("NO", "ALREADYEXISTS"),
    Forbidden: ("NO", "NOPERM"),
    Invalid: ("NO", "CANNOT"),
    AuthenticationFailed: ("NO", "AUTHENTICATIONFAILED"),
}


def error_reply(exc: EnclaveError) -> tuple[str, str | None]:
    for cls in type(exc).__mro__:
        if cls in ERRORS:
            return ERRORS[cls]
    return ("NO", "SERVERBUG")


class Session(SelectedCommands, SearchCommands, SortCommands, NotifyCommands):
    def __init__(
        self,
        services: Services,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        tls: ssl.SSLContext,
    ) -> None:
        self.services = services
        self.reader = reader
        self.writer = writer
        self._tls_context = tls
        self.settings = services.settings.imap
        self.append_limit = services.settings.smtp.max_message_bytes
        LITERALS.limit = self.settings.literal_budget_bytes
        self.framer = self.new_framer()
        self.principal: Principal | None = None
        self.view: View | None = None
        self.condstore = False
        self.qresync = False
        self.rev2 = False  # ENABLE IMAP4rev2: RFC 9051 behaviour for this connection
        self.notify: Watch | None = None  # NOTIFY SET: what to tell between commands
        self.idling = False  # IDLE refreshes the selected mailbox itself
        self.secure = writer.get_extra_info("sslcontext") is not None
        peer = writer.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) else None
        self.closing = False

    def new_framer(self) -> CommandFramer:
        """Tight bounds until login; ``_login`` raises them to APPENDLIMIT."""
        return CommandFramer(
            max_line=self.settings.max_line_bytes,
            max_literal=UNAUTHENTICATED_LITERALS,
            max_literals=UNAUTHENTICATED_LITERALS,
            budget=LITERALS,
        )

    # --- bytes in and out ----------------------------------------------------------------

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def next_command(self) -> Command | None:
        """The next complete command, answering literal continuations on the way."""
        while True:
            event = self.framer.next_event()
            if event is None:
                timeout = (
                    self.settings.idle_timeout_seconds
                    if self.principal
                    else self.settings.login_timeout_seconds
                )
                try:
                    data = await self._receive(timeout)
                except TimeoutError:
                    await self.send(response.untagged("BYE Autologout; idle for too long"))
                    return None
                if not data:
                    return None
                self.framer.feed(data)
                continue
            if isinstance(event, NeedContinuation):
                await self.send(response.continuation())
            elif isinstance(event, Refused):
                if event.tag != b"*":
                    tag = event.tag.decode("ascii", "replace")
                    await self.send(response.tagged(tag, "NO", event.reason, event.code))
                if event.close:
                    await self.send(response.untagged("BYE literal too large even to skip"))
                    return None
            elif isinstance(event, LineTooLong):
                await self.send(
                    response.tagged(event.tag.decode("ascii", "replace"), "BAD", "line too long")
                )
            else:
                return event

    async def _receive(self, seconds: float) -> bytes:
        """The next bytes from the client; with NOTIFY on, what it asked to hear of is sent
        while it is quiet (RFC 5465 3)."""
        if self.notify is None:
            return await asyncio.wait_for(self.reader.read(65536), seconds)
        read = asyncio.ensure_future(self.reader.read(65536))
        try:
            while self.notify is not None:
                self.listen()
                woke = asyncio.ensure_future(self.notify.changed.wait())
                done, _ = await asyncio.wait(
                    {read, woke}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED
                )
                woke.cancel()
                if read in done:
                    return read.result()
                if not done:
                    raise TimeoutError
                await self.notified()
            return await asyncio.wait_for(read, seconds)
        finally:
            if not read.done():
                read.cancel()

    async def run(self) -> None:
        context.source_address.set(self.peer)
        await self.send(
            response.untagged(f"OK [CAPABILITY {self.capabilities()}] Enclave IMAP ready")
        )
        try:
            while not self.closing:
                command = await self.next_command()
                if command is None:
                    break
                await self.handle(command)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.stop_notify()
            self.framer.close()
            self.writer.close()
            if self.secure:  # no waiting for a close_notify the client may never send
                transport = self.writer.transport
                asyncio.get_running_loop().call_later(TLS_SHUTDOWN_SECONDS, transport.abort)

    async def handle(self, command: Command) -> None:
        try:
            request = parse(command)
        except UnknownCommand as exc:
            await self.send(response.tagged(exc.tag, "BAD", f"unknown command {exc.name}"))
            return
        except TaggedParseError as exc:
            await self.send(response.tagged(exc.tag, exc.status, str(exc), exc.code))
            return
        except Exception as exc:  # no tag could be read, or the parser failed: BAD anyway
            if not isinstance(exc, ParseError):
                log.warning("command parser failed", error=type(exc).__name__)
            tag = tag_of(command.chunks[0]).decode("ascii", "replace")
            if tag == "*" or tag.startswith("+"):
                await self.send(response.untagged("BAD malformed command"))
            else:
                await self.send(response.tagged(tag, "BAD", "malformed command"))
            return
        allowed = SELECTED if self.view else AUTHENTICATED if self.principal else NOT_AUTHENTICATED
        if request.name not in allowed:
            state = (
                "selected"
                if self.view
                else "authenticated"
                if self.principal
                else "not authenticated"
            )
            await self.send(
                response.tagged(request.tag, "BAD", f"{request.name} not allowed when {state}")
            )
            return
        handler: Callable[[Request], Awaitable[None]] = getattr(self, f"do_{request.name}")
        try:
            await handler(request)
        except EnclaveError as exc:
            status, code = error_reply(exc)
            await self.send(response.tagged(request.tag, status, str(exc) or request.name, code))
        except Exception:
            log.exception("command failed", command=request.name)
            await self.send(response.tagged(request.tag, "NO", "internal error", "SERVERBUG"))

    async def ok(self, request: Request, text: str | None = None, code: str | None = None) -> None:
        await self.send(
            response.tagged(request.tag, "OK", text or f"{request.name} completed", code)
        )

    # --- any state -----------------------------------------------------------------------

    def capabilities(self) -> str:
        caps = [*CAPABILITIES, f"APPENDLIMIT={self.append_limit}"]
        if not self.secure:
            caps += ["STARTTLS", "LOGINDISABLED"]
        elif not self.principal:
            caps.append("AUTH=PLAIN")
        return " ".join(caps)

    async def do_CAPABILITY(self, request: Request) -> None:
        await self.send(response.untagged(f"CAPABILITY {self.capabilities()}"))
        await self.ok(request)

    async def do_NOOP(self, request: Request) -> None:
        if self.view:
            await self.refresh(allow_expunge=True)
        await self.ok(request)

    async def do_LOGOUT(self, request: Request) -> None:
        await self.send(response.untagged("BYE Enclave IMAP closing the connection"))
        await self.ok(request)
        self.closing = True

    async def do_ID(self, request: Request) -> None:
        fields = b'("name" "Enclave" "version" ' + response.string(enclave.__version__) + b")"
        await self.send(response.untagged(b"ID " + fields))
        await self.ok(request)

    # --- not authenticated ---------------------------------------------------------------

    async def do_STARTTLS(self, request: Request) -> None:
        if self.secure:
            await self.send(response.tagged(request.tag, "BAD", "TLS is already active"))
            return
        # Stop reading before the OK goes out: a client's ClientHello that arrived before the
        # handshake began would land in the plain-text buffer and be lost (seen under load).
        # start_tls resumes reading on the TLS layer.
        self.writer.transport.pause_reading()  # type: ignore[attr-defined]
        await self.ok(request, "Begin TLS negotiation now")
        await self.writer.start_tls(self._tls_context)
        self.secure = True
        self.framer.close()
        self.framer = self.new_framer()

    async def _login(self, request: Request, user: bytes, password: bytes) -> None:
        if not self.secure:
            await self.send(
                response.tagged(request.tag, "NO", "use STARTTLS first", "PRIVACYREQUIRED")
            )
            return
        try:
            self.principal = await self.services.auth.login_protocol(
                user.decode("utf-8"), password.decode("utf-8"), self.peer, protocol="imap"
            )
        except (AuthenticationFailed, UnicodeDecodeError):
            await self.send(
                response.tagged(request.tag, "NO", "authentication failed", "AUTHENTICATIONFAILED")
            )
            return
        # Signed in: a command may carry messages now (several, for MULTIAPPEND).
        limit = 4 * self.append_limit
        self.framer.set_limits(max_literal=self.append_limit, max_literals=limit, max_discard=limit)
        await self.ok(request, "signed in", f"CAPABILITY {self.capabilities()}")

    async def do_LOGIN(self, request: Request) -> None:
        await self._login(request, request.args["user"], request.args["password"])

    async def do_AUTHENTICATE(self, request: Request) -> None:
        if request.args["mechanism"] != "PLAIN":
            await self.send(response.tagged(request.tag, "NO", "only PLAIN is supported", "CANNOT"))
            return
        if not self.secure:
            await self.send(
                response.tagged(request.tag, "NO", "use STARTTLS first", "PRIVACYREQUIRED")
            )
            return
        answer: bytes | None = request.args["initial"]
        if answer is None:
            await self.send(b"+ \r\n")
            line = await self.next_command()
            if line is None:
                return
            answer = b"".join(line.chunks)
        if answer.strip() == b"*":
            await self.send(response.tagged(request.tag, "BAD", "authentication cancelled"))
            return
        try:
            parts = base64.b64decode(answer.strip(), validate=True).split(b"\x00")
        except (binascii.Error, ValueError):
            parts = []
        if len(parts) != 3:
            await self.send(response.tagged(request.tag, "BAD", "malformed PLAIN response"))
            return
        await self._login(request, parts[1], parts[2])

    # --- authenticated -------------------------------------------------------------------

    @property
    def user(self) -> Principal:
        assert self.principal is not None
        return self.principal

    def mailbox_name(self, raw: bytes) -> str:
        """A name from the client: modified UTF-7, or UTF-8 once IMAP4rev2 is enabled
        (RFC 9051 5.1)."""
        try:
            return _utf8_name(raw) if self.rev2 else mutf7.decode(raw)
        except ValueError as exc:
            raise Invalid(str(exc)) from None

    def wire_name(self, name: str) -> bytes:
        """A name as this client is sent it (a quoted string or literal)."""
        return response.string(name.encode() if self.rev2 else mutf7.encode(name))

    async def do_ENABLE(self, request: Request) -> None:
        enabled = [c for c in dict.fromkeys(request.args["capabilities"]) if c in ENABLEABLE]
        if "QRESYNC" in enabled:  # implies CONDSTORE (RFC 7162 3.2.3)
            self.qresync = True
        self.rev2 = self.rev2 or "IMAP4REV2" in enabled
        if set(enabled) & {"CONDSTORE", "QRESYNC"}:
            await self.enable_condstore()
        if enabled:
            names = (ENABLEABLE[name] for name in enabled)
            await self.send(response.untagged("ENABLED " + " ".join(names)))
        await self.ok(request)

    async def do_NAMESPACE(self, request: Request) -> None:
        await self.send(response.untagged('NAMESPACE (("" "/")) NIL NIL'))
        await self.ok(request)

    async def do_CREATE(self, request: Request) -> None:
        await self.services.mailboxes.create(self.user, self.mailbox_name(request.args["mailbox"]))
        await self.ok(request)

    async def do_DELETE(self, request: Request) -> None:
        name = self.mailbox_name(request.args["mailbox"])
        await self.services.mailboxes.delete(self.user, name)
        if self.view and self.view.mailbox.name == name:
            self.view = None
        await self.ok(request)

    async def do_RENAME(self, request: Request) -> None:
        await self.services.mailboxes.rename(
            self.user,
            self.mailbox_name(request.args["old"]),
            self.mailbox_name(request.args["new"]),
        )
        await self.ok(request)

    async def do_SUBSCRIBE(self, request: Request) -> None:
        await self.services.mailboxes.subscribe(
            self.user, self.mailbox_name(request.args["mailbox"]), True
        )
        await self.ok(request)

    async def do_UNSUBSCRIBE(self, request: Request) -> None:
        await self.services.mailboxes.subscribe(
            self.user, self.mailbox_name(request.args["mailbox"]), False
        )
        await self.ok(request)

    async def do_STATUS(self, request: Request) -> None:
        name = self.mailbox_name(request.args["mailbox"])
        if "HIGHESTMODSEQ" in request.args["items"]:
            await self.enable_condstore()
        await self.send(await self._status_line(name, request.args["items"]))
        await self.ok(request)

    async def _status_line(self, name: str, items: list[str]) -> bytes:
        status = await self.services.mailboxes.status(self.user, name)
        values = b" ".join(item.encode() + b" %d" % status[item] for item in items)
        return response.untagged(b"STATUS " + self.wire_name(name) + b" (" + values + b")")

    async def do_LIST(self, request: Request) -> None:
        await self._list(request, lsub=False)

    async def do_LSUB(self, request: Request) -> None:
        await self._list(request, lsub=True)

    async def _list(self, request: Request, *, lsub: bool) -> None:
        args: dict[str, Any] = request.args
        try:  # patterns are not names: an '&' that is no canonical sequence is just text
            decode = _utf8_name if self.rev2 else mutf7.decode_pattern
            reference = decode(args["reference"])
            patterns = [reference + decode(p) for p in args["patterns"]]
        except ValueError as exc:
            raise Invalid(str(exc)) from None
        if patterns == [""] and not lsub:  # the hierarchy delimiter query
            await self.send(response.untagged(b'LIST (\\Noselect) "/" ""'))
            await self.ok(request)
            return
        mailboxes = self.services.mailboxes
        hierarchy = listing.Hierarchy(
            (listing.Box(b.name, b.noselect, b.special_use) for b in await mailboxes.list_all(self.user)),
            await mailboxes.subscriptions(self.user),
        )  # fmt: skip
        if lsub:
            found = hierarchy.lsub(patterns)
        else:
            query = listing.Query(patterns, set(args["selection"]), set(args["returns"]))
            found = hierarchy.matching(query)
        verb = b"LSUB" if lsub else b"LIST"
        for entry in found:
            line = (
                verb + b" (" + " ".join(entry.attributes).encode() + b') "/" '
                + self.wire_name(entry.name)
            )  # fmt: skip
            if entry.childinfo:
                line += b' (CHILDINFO ("SUBSCRIBED"))'
            await self.send(response.untagged(line))
            if args["status"] and not lsub and entry.selectable:
                await self.send(await self._status_line(entry.name, args["status"]))
        await self.ok(request)

    async def do_GETQUOTAROOT(self, request: Request) -> None:
        name = self.mailbox_name(request.args["root"])
        await self.services.mailboxes.get(self.user, name)
        await self.send(response.untagged(b"QUOTAROOT " + self.wire_name(name) + b' ""'))
        await self._quota()
        await self.ok(request)

    async def do_GETQUOTA(self, request: Request) -> None:
        if request.args["root"] != b"":
            raise NotFound("no such quota root")
        await self._quota()
        await self.ok(request)

    async def _quota(self) -> None:
        used, limit = await self.services.mailboxes.quota(self.user)
        if limit is None:
            await self.send(response.untagged('QUOTA "" ()'))
        else:
            await self.send(
                response.untagged(f'QUOTA "" (STORAGE {(used + 1023) // 1024} {limit // 1024})')
            )

    async def do_APPEND(self, request: Request) -> None:
        """APPEND, MULTIAPPEND, CATENATE and literal8 messages: see ``appending``."""
        await appending.append(self, request)

    async def do_IDLE(self, request: Request) -> None:
        await self.send(response.continuation("idling"))
        topic = self.view.mailbox.id if self.view else None
        self.idling = True
        with self.services.mailboxes.bus.watch(topic or "-") as changed:
            if self.view:
                await self.refresh(allow_expunge=True)
            line = asyncio.ensure_future(self.next_command())
            try:
                while True:
                    waiter = asyncio.ensure_future(changed.wait())
                    done, _ = await asyncio.wait(
                        {line, waiter}, return_when=asyncio.FIRST_COMPLETED
                    )
                    if waiter in done:
                        changed.clear()
                        if self.view:
                            await self.refresh(allow_expunge=True)
                    else:
                        waiter.cancel()
                        break
            finally:
                self.idling = False
                if not line.done():
                    line.cancel()
        command = line.result() if line.done() and not line.cancelled() else None
        if command is None:
            self.closing = True
            return
        if b"".join(command.chunks).strip().upper() != b"DONE":
            await self.send(response.tagged(request.tag, "BAD", "expected DONE"))
            return
        await self.ok(request, "IDLE terminated")


def _utf8_name(raw: bytes) -> str:
    """IMAP4rev2 sends names as UTF-8 (RFC 9051 5.1): no control characters in them."""
    name = raw.decode("utf-8")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise ValueError("control character in mailbox name")
    return name


async def serve_connection(
    services: Services,
    tls: ssl.SSLContext,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    await Session(services, reader, writer, tls).run()
