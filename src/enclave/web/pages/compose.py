"""Writing mail: a new message, a reply, a reply to all, a forward (its text quoted), with
attachments; sent by the core ``Composer`` through the submission path. A refused draft comes
back with what was typed and the reason."""

from __future__ import annotations

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from enclave.core.bounds import INT64_MAX, parse_int
from enclave.core.errors import Invalid, NotFound, QuotaExceeded
from enclave.core.mail.compose import Attached, Draft
from enclave.core.mail.reading import Reading
from enclave.core.principal import Principal
from enclave.web.common import services
from enclave.web.pages.common import checked_upload, page, person, redirect, render

FORM_OVERHEAD = 1024 * 1024  # the fields and multipart framing around the attachments


def _prefix(prefix: str, subject: str) -> str:
    return subject if subject.lower().startswith(prefix.lower()) else f"{prefix} {subject}"


def _quoted(reading: Reading) -> str:
    when = reading.sent.strftime("%Y-%m-%d %H:%M") if reading.sent else "an earlier date"
    lines = (reading.text or "").splitlines()
    return f"\n\nOn {when}, {reading.sender} wrote:\n" + "\n".join(f"> {line}" for line in lines)


def _prefilled(who: Principal, mode: str, reading: Reading) -> Draft:
    if mode == "forward":
        header = f"\n\n---------- Forwarded message ----------\nFrom: {reading.sender}\n"
        header += f"Subject: {reading.subject}\n\n"
        return Draft(
            to="", subject=_prefix("Fwd:", reading.subject), text=header + (reading.text or "")
        )
    others = [a for a in [*reading.to, *reading.cc] if a.lower() != who.name.lower()]
    return Draft(
        to=reading.reply_address,
        cc=", ".join(others) if mode == "reply-all" else "",
        subject=_prefix("Re:", reading.subject),
        text=_quoted(reading),
        in_reply_to=reading.message_id,
        references=reading.references,
    )


@page
async def compose_form(request: Request) -> Response:
    who = await person(request)
    mode = request.query_params.get("mode", "new")
    draft = Draft(to=request.query_params.get("to", ""))
    if mode in ("reply", "reply-all", "forward"):
        uid = parse_int(request.query_params.get("uid", ""), "uid", 1, INT64_MAX)
        folder = request.query_params.get("folder", "INBOX")
        draft = _prefilled(who, mode, await services(request).mail_reader.read(who, folder, uid))
    return render(request, "compose.html", draft=draft, problem=None)


def _attachments(form: FormData) -> list[Attached]:
    found = []
    for value in form.getlist("attachments"):
        if isinstance(value, UploadFile) and value.filename:
            data = value.file.read()
            kind = value.content_type or "application/octet-stream"
            found.append(Attached(value.filename, kind, data))
    return found


@page
async def send(request: Request) -> Response:
    who = await person(request)
    svc = services(request)
    limit = svc.settings.smtp.max_message_bytes
    form = await checked_upload(request, limit + FORM_OVERHEAD)
    text = {name: str(form.get(name) or "") for name in ("to", "cc", "bcc", "subject", "body")}
    draft = Draft(
        to=text["to"], cc=text["cc"], bcc=text["bcc"], subject=text["subject"],
        text=text["body"].replace("\r\n", "\n"), attachments=_attachments(form),
        in_reply_to=str(form.get("in_reply_to") or "") or None,
        references=str(form.get("references") or "") or None,
    )  # fmt: skip
    try:
        await svc.composer.send(who, draft)
    except (Invalid, NotFound, QuotaExceeded) as refused:
        return render(request, "compose.html", status=422, draft=draft, problem=str(refused))
    return redirect("/mail?sent=1")


routes = [
    Route("/mail/compose", compose_form),
    Route("/mail/compose", send, methods=["POST"]),
]
