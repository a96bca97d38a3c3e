"""The files pages: the libraries a person can reach, a folder's contents, a document with its
versions. Downloads and JavaScript uploads (with a progress bar) go to the documents API,
which streams both ways; without JavaScript a form uploads through here (held in memory, so
smaller). Everything is a core ``Documents`` call: access, quotas, locks and labels are
decided there."""

from __future__ import annotations

from urllib.parse import quote

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from enclave.core.bounds import parse_int
from enclave.core.documents import paths
from enclave.web.common import services
from enclave.web.pages.common import checked_form, checked_upload, page, person, redirect, render

FORM_UPLOAD_BYTES = 32 * 1024 * 1024  # without JavaScript (in memory); with it, any size


def folder_url(library_id: str, path: str = "") -> str:
    return f"/files/{library_id}/{quote(path)}"


def content_url(library_id: str, path: str, version: int | None = None) -> str:
    url = f"/api/libraries/{library_id}/content/{quote(path)}"
    return url + (f"?version={version}" if version else "")


@page
async def files_home(request: Request) -> Response:
    who = await person(request)
    own = await services(request).libraries.personal(who)
    return redirect(folder_url(own.id))


@page
async def browse(request: Request) -> Response:
    who = await person(request)
    svc = services(request)
    library_id, path = request.path_params["library_id"], request.path_params.get("path", "")
    path = "/".join(paths.split(path))
    libraries = await svc.libraries.visible(who)
    library = next((lib for lib in libraries if lib.id == library_id), None)
    node = await svc.documents.stat(who, library_id, path)
    children = await svc.documents.children(who, library_id, path) if node.folder else []
    versions = [] if node.folder else await svc.documents.versions(who, library_id, path)
    parts = paths.split(path)
    crumbs = [(name, "/".join(parts[: i + 1])) for i, name in enumerate(parts)]
    return render(
        request, "files.html", section="files", libraries=libraries, library=library,
        library_id=library_id, node=node, children=sorted(
            children, key=lambda child: (not child.folder, child.name.lower())
        ), versions=versions, crumbs=crumbs, folder_url=folder_url, content_url=content_url,
        join=lambda name: f"{path}/{name}" if path else name, form_limit=FORM_UPLOAD_BYTES,
    )  # fmt: skip


def _back(form_library: str, path: str) -> Response:
    return redirect(folder_url(form_library, path))


@page
async def new_folder(request: Request) -> Response:
    who = await person(request)
    form = await checked_form(request)
    library_id, path = str(form.get("library", "")), str(form.get("path", ""))
    name = str(form.get("name", "")).strip()
    await services(request).documents.make_folder(
        who, library_id, paths.join([*paths.split(path), name])
    )
    return _back(library_id, path)


@page
async def delete(request: Request) -> Response:
    """To the library's trash (a folder with everything in it)."""
    who = await person(request)
    form = await checked_form(request)
    library_id, path = str(form.get("library", "")), str(form.get("path", ""))
    await services(request).documents.delete(who, library_id, path)
    return _back(library_id, "/".join(paths.split(path)[:-1]))


@page
async def restore_version(request: Request) -> Response:
    who = await person(request)
    form = await checked_form(request)
    library_id, path = str(form.get("library", "")), str(form.get("path", ""))
    number = parse_int(str(form.get("version", "")), "version", 1)
    await services(request).documents.restore_version(who, library_id, path, number)
    return _back(library_id, path)


@page
async def upload(request: Request) -> Response:
    """The upload form without JavaScript."""
    who = await person(request)
    form = await checked_upload(request, FORM_UPLOAD_BYTES, max_files=20)
    library_id, path = str(form.get("library", "")), str(form.get("path", ""))
    documents = services(request).documents
    for value in form.getlist("files"):
        if isinstance(value, UploadFile) and value.filename:
            target = paths.join([*paths.split(path), value.filename])
            await documents.write(who, library_id, target, value.file.read(), value.content_type)
    return _back(library_id, path)


routes = [
    Route("/files", files_home),
    Route("/files/folder", new_folder, methods=["POST"]),
    Route("/files/delete", delete, methods=["POST"]),
    Route("/files/restore-version", restore_version, methods=["POST"]),
    Route("/files/upload", upload, methods=["POST"]),
    Route("/files/{library_id}/{path:path}", browse),
]
