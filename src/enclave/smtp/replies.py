"""SMTP replies, with enhanced status codes (RFC 3463), in one place. Pure."""

from __future__ import annotations

OK_SENDER = "250 2.1.0 Sender OK"
OK_RECIPIENT = "250 2.1.5 Recipient OK"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
BARE_LINE_ENDING = (
    "550 5.6.11 Message contains a bare CR or LF; only CRLF line endings are accepted"
)
NO_MAILBOX_FULL = "552 5.2.2 Mailbox full"
AUTH_FAILED = "535 5.7.8 Authentication credentials invalid"
BAD_BASE64 = "501 5.5.2 Cannot decode the AUTH argument"
AUTH_SYNTAX = "501 5.5.4 Syntax: AUTH mechanism [initial-response]"
TLS_FAILED = "454 4.7.0 TLS handshake failed"  # never sent: the connection is closed
INTERNAL_ERROR = "451 4.3.0 Internal error; try again later"
TRY_AGAIN = "451 4.3.0 Temporary failure while storing the message; try again later"


OK = "250 2.0.0 OK"
HELO_FIRST = "503 5.5.1 Send EHLO first"
AUTH_REQUIRED = "530 5.7.0 Authentication required"
NEED_MAIL = "503 5.5.1 Need MAIL command"
NEED_RCPT = "503 5.5.1 Need RCPT command"
NOT_IMPLEMENTED = "502 5.5.1 Command not implemented"
BDAT_SYNTAX = "501 5.5.4 Syntax: BDAT size [LAST]; closing the connection"
DATA_AFTER_BDAT = "503 5.5.1 This transaction takes BDAT, not DATA (CHUNKING or BINARYMIME)"
TOO_MUCH_DATA = "552 5.3.4 Message too big; transaction cancelled"
START_DATA = "354 End data with <CR><LF>.<CR><LF>"
DATA_SYNTAX = "501 5.5.4 Syntax: DATA"
LINE_TOO_LONG = "500 5.5.2 Line too long (RFC 5321 4.5.3.1.6)"


def header_too_large(limit: int) -> str:
    return f"552 5.3.4 Message header too large (at most {limit} octets)"


def chunk_received(size: int, total: int) -> str:
    return f"250 2.0.0 {size} octets received ({total} in all)"


def queued(queue_id: str) -> str:
    return f"250 2.0.0 OK: queued as {queue_id}"


def relay_denied(address: str) -> str:
    return f"554 5.7.1 <{address}>: Relay access denied"


def unknown_user(address: str) -> str:
    return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"


def mailbox_full(address: str) -> str:
    return f"452 4.2.2 <{address}>: Mailbox full"


def bad_address(address: str) -> str:
    return f"501 5.1.3 <{address}>: Bad recipient address syntax"


def sender_not_owned(address: str) -> str:
    return f"553 5.7.1 <{address}>: Sender address rejected: not owned by the authenticated user"


def dmarc_rejected(domain: str) -> str:
    return f"550 5.7.1 Rejected by the DMARC policy of {domain}"


def bad_sender(address: str) -> str:
    return f"501 5.1.7 <{address}>: Bad sender address syntax"


def sender_refused(reason: str) -> str:
    return f"553 5.7.1 Sender refused: {reason}"
