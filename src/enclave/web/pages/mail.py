"""The mail pages: folders with unread counts, a folder's messages a page at a time (newest
first), a message for reading. HTML mail is sanitised in core and shown in a sandboxed frame
whose own policy blocks remote images until the reader allows them for that message."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from enclave.core.bounds import INT64_MAX, parse_int
from enclave.core.errors import Invalid
from enclave.core.mail.store import INBOX
from enclave.web.common import attachment, services
from enclave.web.pages.common import checked_form, page, person, redirect, render
from enclave.web.pages.security import message_policy, secure_headers

PAGE_SIZE = 50
# The frame's own policy allows inline styles only (the message's were removed by nh3).
BODY_STYLE = "<style>body{font-family:system-ui,sans-serif;line-height:1.45;margin:.8rem}</style>"


def _folder(request: Request) -> str:
    return request.query_params.get("folder") or INBOX


def _uid(request: Request) -> int:
    return parse_int(request.query_params.get("uid", ""), "uid", 1, INT64_MAX)


def message_url(folder: str, uid: int, **extra: str) -> str:
    return "/mail/message?" + urlencode({"folder": folder, "uid": uid, **extra})


@page
async def folder(request: Request) -> Response:
    who = await person(request)
    reader = services(request).mail_reader
    name = _folder(request)
    offset = parse_int(request.query_params.get("offset") or "0", "offset", 0, INT64_MAX)
    folders = await reader.folders(who)
    listing = await reader.page(who, name, offset, PAGE_SIZE)
    return render(
        request, "mail.html", folders=folders, current=name, listing=listing,
        page_size=PAGE_SIZE, message_url=message_url, folder_url=_folder_url,
        sent=request.query_params.get("sent") == "1",
    )  # fmt: skip


def _folder_url(name: str, offset: int = 0) -> str:
    query = {"folder": name} | ({"offset": str(offset)} if offset else {})
    return "/mail?" + urlencode(query)


@page
async def message(request: Request) -> Response:
    who = await person(request)
    name, uid = _folder(request), _uid(request)
    svc = services(request)
    reading = await svc.mail_reader.read(who, name, uid)
    remote = request.query_params.get("remote") == "1" and reading.remote
    body_url = "/mail/message/body?" + urlencode(
        {"folder": name, "uid": uid, "remote": "1" if remote else "0"}
    )
    return render(
        request, "message.html", folders=await svc.mail_reader.folders(who), current=name,
        reading=reading, body_url=body_url, remote_allowed=remote,
        allow_remote_url=message_url(name, uid, remote="1"), folder_url=_folder_url,
        compose_url=lambda mode: "/mail/compose?"
        + urlencode({"mode": mode, "folder": name, "uid": uid}),
        part_url=lambda index: "/mail/message/part?"
        + urlencode({"folder": name, "uid": uid, "part": index}),
    )  # fmt: skip


@page
async def body(request: Request) -> Response:
    """The sanitised HTML of a message, for its sandboxed frame."""
    who = await person(request)
    reading = await services(request).mail_reader.read(who, _folder(request), _uid(request))
    remote = request.query_params.get("remote") == "1"
    markup = reading.html or ""
    document = f'<!doctype html><meta charset="utf-8"><base target="_blank">{BODY_STYLE}{markup}'
    response = Response(document, media_type="text/html; charset=utf-8")
    return secure_headers(response, message_policy(remote))


@page
async def part(request: Request) -> Response:
    """An attachment, always as a download (never shown in the app's origin)."""
    who = await person(request)
    index = parse_int(request.query_params.get("part", ""), "part", 0, 10_000)
    filename, _, data = await services(request).mail_reader.attachment(
        who, _folder(request), _uid(request), index
    )
    response = Response(data, media_type="application/octet-stream")
    response.headers["Content-Disposition"] = attachment(filename)
    return secure_headers(response, "default-src 'none'; sandbox")


@page
async def act(request: Request) -> Response:
    """The message page's buttons: read/unread, flag, move, delete (to the Trash)."""
    who = await person(request)
    form = await checked_form(request)
    name = str(form.get("folder") or INBOX)
    uid = parse_int(str(form.get("uid", "")), "uid", 1, INT64_MAX)
    reader = services(request).mail_reader
    action = form.get("action")
    if action == "unread":
        await reader.mark(who, name, uid, seen=False)
        return redirect(_folder_url(name))
    if action in ("flag", "unflag"):
        await reader.mark(who, name, uid, flagged=action == "flag")
        return redirect(message_url(name, uid))
    if action == "move":
        await reader.move(who, name, uid, str(form.get("target", "")))
    elif action == "delete":
        await reader.trash(who, name, uid)
    else:
        raise Invalid("unknown action")
    return redirect(_folder_url(name))


routes = [
    Route("/mail", folder),
    Route("/mail/message/act", act, methods=["POST"]),
    Route("/mail/message", message),
    Route("/mail/message/body", body),
    Route("/mail/message/part", part),
]
