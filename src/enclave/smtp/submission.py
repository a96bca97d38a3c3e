"""The submission handler (RFC 6409): STARTTLS first, then AUTH (PLAIN, LOGIN) with the user's
password or an app password, then mail from the user's own addresses to anyone."""

from __future__ import annotations

import binascii
from base64 import b64decode

import structlog
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from enclave.core import context
from enclave.core.errors import AuthenticationFailed, Forbidden, QuotaExceeded
from enclave.core.principal import Principal
from enclave.smtp import replies
from enclave.smtp.handler import HandlerBase, dsn_request, envelope_list, peer_address

log = structlog.get_logger("enclave.smtp")
LOCAL = "enclave_local"
REMOTE = "enclave_remote"


def _malformed() -> AuthResult:
    # handled=False: aiosmtpd sends the message only then (its default, handled=True, means
    # "already answered", which left the client waiting for a reply that never came).
    return AuthResult(success=False, handled=False, message=replies.BAD_BASE64)


class SubmissionHandler(HandlerBase):
    advertise_auth = True
    dsn = True

    async def _login(self, server: SMTP, login: bytes, password: bytes) -> AuthResult:
        try:
            principal = await self.services.auth.login_protocol(
                login.decode("utf-8"),
                password.decode("utf-8"),
                peer_address(server.session) if server.session else None,
                protocol="smtp",
            )
        except (AuthenticationFailed, UnicodeDecodeError):
            return AuthResult(success=False, handled=False, message=replies.AUTH_FAILED)
        return AuthResult(success=True, auth_data=principal)

    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) == 1:
            answer = await server.challenge_auth("")
            if not isinstance(answer, bytes):
                return AuthResult(success=False, handled=True)
            blob = answer
        else:
            try:
                blob = b64decode(args[1], validate=True)
            except (binascii.Error, ValueError):
                return _malformed()
        parts = blob.split(b"\x00")
        if len(parts) != 3:
            return _malformed()
        return await self._login(server, parts[1], parts[2])

    async def auth_LOGIN(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) == 1:
            login = await server.challenge_auth(server.AuthLoginUsernameChallenge)
        else:
            try:
                login = b64decode(args[1], validate=True)
            except (binascii.Error, ValueError):
                return _malformed()
        if not isinstance(login, bytes):
            return AuthResult(success=False, handled=True)
        password = await server.challenge_auth(server.AuthLoginPasswordChallenge)
        if not isinstance(password, bytes):
            return AuthResult(success=False, handled=True)
        return await self._login(server, login, password)

    async def check_sender(self, session: Session, address: str) -> str | None:
        principal: Principal = session.auth_data  # type: ignore[assignment]
        if not await self.services.outbox.may_send_as(principal, address):
            return replies.sender_not_owned(address)
        return None

    async def route_recipient(self, envelope: Envelope, address: str) -> str | None:
        router = self.services.mail_router
        if await router.is_local_domain(address.rpartition("@")[2]):
            recipient = await router.resolve(address)
            if recipient is None:
                return replies.unknown_user(address)
            envelope_list(envelope, LOCAL).append(recipient)
        else:
            envelope_list(envelope, REMOTE).append(address)
        return None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        refused = await self.refusal(session, envelope)
        if refused:
            return refused
        principal: Principal = session.auth_data  # type: ignore[assignment]
        context.source_address.set(peer_address(session))
        raw = self.trace(session, envelope, "submission") + (envelope.original_content or b"")
        try:
            sent = await self.services.outbox.submit(
                principal,
                envelope.mail_from or "",
                envelope_list(envelope, LOCAL),
                envelope_list(envelope, REMOTE),
                raw,
                dsn_request(envelope),
            )
        except Forbidden as refused:
            return replies.sender_refused(str(refused))
        except QuotaExceeded:
            return replies.NO_MAILBOX_FULL
        except Exception:
            log.exception("submission failed", user=principal.name)
            return replies.TRY_AGAIN
        log.info("submitted", queue_id=sent.queue_id, local=sent.local, remote=sent.remote)
        return replies.queued(sent.queue_id)
