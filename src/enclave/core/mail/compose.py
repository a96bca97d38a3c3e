"""Mail written in the web app: a draft becomes an RFC 5322 message from the signed-in user
and goes out through the same path as SMTP submission (``Outbox.submit``: DKIM signature, the
Sent copy, local delivery, the outbound queue). Addresses are checked before anything is
built; header values cannot carry line breaks; the message's size is bounded like an SMTP
message's."""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, getaddresses, make_msgid

from enclave.core import clock, cpu, names
from enclave.core.errors import Invalid, QuotaExceeded
from enclave.core.identity import UserService
from enclave.core.mail.outbox import Outbox, Submitted
from enclave.core.mail.routing import MailRouter, Recipient
from enclave.core.principal import Principal

MAX_RECIPIENTS = 500


@dataclass(frozen=True)
class Attached:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Draft:
    to: str  # address lists as typed: "Bob <bob@x>, carol@y"
    cc: str = ""
    bcc: str = ""
    subject: str = ""
    text: str = ""
    attachments: list[Attached] = field(default_factory=list)
    in_reply_to: str | None = None
    references: str | None = None


def addresses(typed: str) -> list[str]:
    """The addresses of a typed list (commas or semicolons), each checked."""
    found = []
    for _, address in getaddresses([typed.replace(";", ",")]):
        if address:
            found.append(names.address(address))
    return found


def _one_line(value: str) -> str:
    return " ".join(value.split())


def build(
    sender: str, display_name: str, to: list[str], cc: list[str], draft: Draft, domain: str
) -> bytes:
    """The message's bytes (CRLF line ends). Bcc is not written: it is only the envelope."""
    message = EmailMessage()
    message["From"] = formataddr((_one_line(display_name), sender))
    if to:
        message["To"] = ", ".join(to)
    if cc:
        message["Cc"] = ", ".join(cc)
    message["Subject"] = _one_line(draft.subject)
    message["Date"] = format_datetime(clock.now())
    message["Message-ID"] = make_msgid(domain=domain)
    if draft.in_reply_to:
        message["In-Reply-To"] = _one_line(draft.in_reply_to)
        message["References"] = _one_line(f"{draft.references or ''} {draft.in_reply_to}")
    message.set_content(draft.text or "")
    for each in draft.attachments:
        maintype, _, subtype = each.content_type.partition("/")
        if not maintype or not subtype:
            maintype, subtype = "application", "octet-stream"
        message.add_attachment(
            each.data, maintype=maintype, subtype=subtype, filename=_one_line(each.filename)
        )
    return message.as_bytes(policy=SMTP)


class Composer:
    def __init__(
        self, outbox: Outbox, router: MailRouter, users: UserService, max_bytes: int
    ) -> None:
        self._outbox = outbox
        self._router = router
        self._users = users
        self._max_bytes = max_bytes

    async def send(self, principal: Principal, draft: Draft) -> Submitted:
        to, cc, bcc = addresses(draft.to), addresses(draft.cc), addresses(draft.bcc)
        everyone = list(dict.fromkeys(to + cc + bcc))
        if not everyone:
            raise Invalid("add at least one recipient")
        if len(everyone) > MAX_RECIPIENTS:
            raise Invalid(f"at most {MAX_RECIPIENTS} recipients")
        size = len(draft.text) + sum(len(each.data) for each in draft.attachments)
        if size > self._max_bytes:
            raise QuotaExceeded(f"a message may have at most {self._max_bytes} bytes")
        local: list[Recipient] = []
        remote: list[str] = []
        for address in everyone:
            if await self._router.is_local_domain(address.rpartition("@")[2]):
                recipient = await self._router.resolve(address)
                if recipient is None:
                    raise Invalid(f"there is no {address} here")
                local.append(recipient)
            else:
                remote.append(address)
        user = await self._users.get(principal, principal.name)
        domain = principal.name.rpartition("@")[2]
        raw = await cpu.run(
            build, principal.name, user.display_name, to, cc, draft, domain, size=size
        )
        if len(raw) > self._max_bytes:
            raise QuotaExceeded(f"a message may have at most {self._max_bytes} bytes")
        return await self._outbox.submit(principal, principal.name, local, remote, raw)
