"""JSON API of the mail workload for the web app and scripts: folders, a folder's messages a
page at a time (newest first), a message with its parts, flags, move, delete, send. The same
core calls as the mail pages (``MailReader``, ``Composer``). A folder is named by the
``folder`` query parameter (INBOX when absent), a message by its UID in that folder."""

from __future__ import annotations

import base64
import binascii
from dataclasses import asdict
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from enclave.core.bounds import INT64_MAX, parse_int
from enclave.core.errors import Invalid
from enclave.core.mail.compose import Attached, Draft
from enclave.core.mail.reading import PAGE_MAX, Summary
from enclave.core.mail.store import INBOX
from enclave.web.api import openapi
from enclave.web.api.openapi import BOOL, INT, STR, TIME, nullable, obj, op, ref
from enclave.web.common import attachment, body, int_param, principal, services

JSON_OVERHEAD = 1024 * 1024  # the fields around base64 attachments (4/3 of their size)


def _folder(request: Request) -> str:
    return request.query_params.get("folder") or INBOX


def _uid(request: Request) -> int:
    return parse_int(request.path_params["uid"], "uid", 1, INT64_MAX)


def _summary(summary: Summary) -> dict[str, Any]:
    found = asdict(summary)
    found["sent"] = summary.sent.isoformat() if summary.sent else None
    found["received"] = summary.received.isoformat()
    return found


async def mail_folders(request: Request) -> Response:
    found = await services(request).mail_reader.folders(await principal(request))
    return JSONResponse([asdict(folder) for folder in found])


async def mail_messages(request: Request) -> Response:
    offset = int_param(request, "offset", 0)
    limit = int_param(request, "limit", 50, 1, PAGE_MAX)
    listed = await services(request).mail_reader.page(
        await principal(request), _folder(request), offset, limit
    )
    return JSONResponse(
        {
            "folder": listed.folder.name,
            "total": listed.total,
            "offset": listed.offset,
            "messages": [_summary(each) for each in listed.messages],
        }
    )


async def mail_message(request: Request) -> Response:
    reading = await services(request).mail_reader.read(
        await principal(request), _folder(request), _uid(request)
    )
    found = asdict(reading)
    found["sent"] = reading.sent.isoformat() if reading.sent else None
    return JSONResponse(found)


async def mail_part(request: Request) -> Response:
    index = parse_int(request.path_params["index"], "index", 0, 10_000)
    filename, content_type, data = await services(request).mail_reader.attachment(
        await principal(request), _folder(request), _uid(request), index
    )
    response = Response(data, media_type="application/octet-stream")
    response.headers["Content-Disposition"] = attachment(filename)
    response.headers["X-Content-Type"] = content_type  # the part's own type, for the caller
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


async def mail_change(request: Request) -> Response:
    data = await body(request)
    marks: dict[str, bool | None] = {}
    for name in ("seen", "flagged"):
        value = data.get(name)
        if value is not None and not isinstance(value, bool):
            raise Invalid(f"{name} must be true, false or absent")
        marks[name] = value
    await services(request).mail_reader.mark(
        await principal(request), _folder(request), _uid(request), **marks
    )
    return Response(status_code=204)


async def mail_move(request: Request) -> Response:
    data = await body(request, "target")
    await services(request).mail_reader.move(
        await principal(request), _folder(request), _uid(request), data["target"]
    )
    return Response(status_code=204)


async def mail_delete(request: Request) -> Response:
    await services(request).mail_reader.trash(
        await principal(request), _folder(request), _uid(request)
    )
    return Response(status_code=204)


def _attached(items: Any) -> list[Attached]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise Invalid("attachments must be a list")
    found = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("data"), str):
            raise Invalid("each attachment needs filename, content_type and base64 data")
        try:
            data = base64.b64decode(item["data"], validate=True)
        except (binascii.Error, ValueError):
            raise Invalid("attachment data is not base64") from None
        found.append(
            Attached(
                str(item.get("filename") or "attachment"),
                str(item.get("content_type") or "application/octet-stream"),
                data,
            )
        )
    return found


async def mail_send(request: Request) -> Response:
    svc = services(request)
    limit = svc.settings.smtp.max_message_bytes * 4 // 3 + JSON_OVERHEAD
    data = await body(request, "to", limit=limit)
    texts = {name: data.get(name) for name in ("cc", "bcc", "subject", "text", "in_reply_to")}
    if any(value is not None and not isinstance(value, str) for value in texts.values()):
        raise Invalid("cc, bcc, subject, text and in_reply_to must be strings")
    draft = Draft(
        to=data["to"], cc=texts["cc"] or "", bcc=texts["bcc"] or "",
        subject=texts["subject"] or "", text=texts["text"] or "",
        attachments=_attached(data.get("attachments")), in_reply_to=texts["in_reply_to"],
    )  # fmt: skip
    sent = await svc.composer.send(await principal(request), draft)
    return JSONResponse(
        {"queue_id": sent.queue_id, "local": sent.local, "remote": sent.remote}, status_code=201
    )


MESSAGE = "/api/mail/messages/{uid}"
FOLDER_QUERY = {"folder": STR}
openapi.SCHEMAS.update(
    {
        "MailFolder": obj(["name", "total", "unseen"], name=STR, special_use=nullable(STR),
                           total=INT, unseen=INT),
        "MailSummary": obj(
            ["uid", "subject", "sender", "received", "size", "seen", "flagged"],
            uid=INT, subject=STR, sender=STR, sent=nullable(TIME), received=TIME, size=INT,
            seen=BOOL, flagged=BOOL, attachments=BOOL,
        ),
        "MailPage": obj(["folder", "total", "offset", "messages"], folder=STR, total=INT,
                         offset=INT, messages={"type": "array", "items": ref("MailSummary")}),
        "MailMessage": obj(
            ["uid", "subject", "sender"], uid=INT, subject=STR, sender=STR,
            to={"type": "array", "items": STR}, cc={"type": "array", "items": STR},
            sent=nullable(TIME), text=nullable(STR), html=nullable(STR), remote=BOOL, flagged=BOOL,
            attachments={"type": "array", "items": obj(
                ["index", "filename", "content_type", "size"], index=INT, filename=STR,
                content_type=STR, size=INT)},
        ),
        "MailChange": obj([], seen=nullable(BOOL), flagged=nullable(BOOL)),
        "MailMove": obj(["target"], target=STR),
        "MailSend": obj(
            ["to"], to=STR, cc=STR, bcc=STR, subject=STR, text=STR, in_reply_to=STR,
            attachments={"type": "array", "items": obj(
                ["data"], filename=STR, content_type=STR, data=STR)},
        ),
        "MailSent": obj(["queue_id", "local", "remote"], queue_id=STR, local=INT, remote=INT),
    }
)  # fmt: skip
openapi.OPERATIONS.update(
    {
        ("/api/mail/folders", "GET"): op("Mail folders with counts", out="MailFolder", many=True),
        ("/api/mail/messages", "GET"): op(
            "A folder's messages, newest first", out="MailPage",
            query={"folder": STR, "offset": INT, "limit": INT},
        ),
        (MESSAGE, "GET"): op("A message, parsed (marks it read)", out="MailMessage",
                             query=FOLDER_QUERY),
        (MESSAGE, "PATCH"): op("Mark read or unread, flag or unflag", 204, body="MailChange",
                               query=FOLDER_QUERY),
        (MESSAGE, "DELETE"): op("To the Trash (from the Trash: for good)", 204,
                                query=FOLDER_QUERY),
        (MESSAGE + "/move", "POST"): op("Move to another folder", 204, body="MailMove",
                                        query=FOLDER_QUERY),
        (MESSAGE + "/parts/{index}", "GET"): op("An attachment", binary_out=True,
                                                query=FOLDER_QUERY),
        ("/api/mail/send", "POST"): op(
            "Send (the submission path: DKIM, Sent copy, queue)", 201, "MailSent",
            body="MailSend",
        ),
    }
)  # fmt: skip

routes = [
    Route("/api/mail/folders", mail_folders),
    Route("/api/mail/messages", mail_messages),
    Route(MESSAGE, mail_message),
    Route(MESSAGE, mail_change, methods=["PATCH"]),
    Route(MESSAGE, mail_delete, methods=["DELETE"]),
    Route(MESSAGE + "/move", mail_move, methods=["POST"]),
    Route(MESSAGE + "/parts/{index}", mail_part),
    Route("/api/mail/send", mail_send, methods=["POST"]),
]
