"""Mail client autoconfiguration (Thunderbird's config-v1.1.xml, also read by K-9, FairEmail
and Evolution): the servers, ports and security for a domain this deployment hosts, implicit
TLS first (RFC 8314), then STARTTLS. Answers only for hosted domains; anything else is 404.

Clients ask ``https://autoconfig.DOMAIN/mail/config-v1.1.xml?emailaddress=ADDRESS`` and
``https://DOMAIN/.well-known/autoconfig/mail/config-v1.1.xml``; the domain comes from the
address if given, else from the Host header.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from enclave.config import Settings
from enclave.web.common import services

PATHS = ("/.well-known/autoconfig/mail/config-v1.1.xml", "/mail/config-v1.1.xml")


def _server(parent: ET.Element, tag: str, kind: str, host: str, port: int, socket: str) -> None:
    server = ET.SubElement(parent, tag, type=kind)
    for name, value in (
        ("hostname", host),
        ("port", str(port)),
        ("socketType", socket),
        ("authentication", "password-cleartext"),  # over TLS only: the server insists
        ("username", "%EMAILADDRESS%"),
    ):
        ET.SubElement(server, name).text = value


def client_config(settings: Settings, domain: str) -> bytes:
    """The document for ``domain``: every enabled listener, implicit TLS first."""
    listen = settings.listen
    host = settings.deployment.hostnames[0]
    root = ET.Element("clientConfig", version="1.1")
    provider = ET.SubElement(root, "emailProvider", id=domain)
    ET.SubElement(provider, "domain").text = domain
    ET.SubElement(provider, "displayName").text = f"{domain} ({settings.deployment.name})"
    ET.SubElement(provider, "displayShortName").text = domain
    incoming = [("SSL", listen.imaps_port), ("STARTTLS", listen.imap_port)]
    outgoing = [("SSL", listen.submissions_port), ("STARTTLS", listen.submission_port)]
    for socket, port in incoming:
        if port:
            _server(provider, "incomingServer", "imap", host, port, socket)
    for socket, port in outgoing:
        if port:
            _server(provider, "outgoingServer", "smtp", host, port, socket)
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def _domain(request: Request) -> str:
    address = request.query_params.get("emailaddress", "")
    if "@" in address:
        return address.rpartition("@")[2].strip().lower()
    return (request.url.hostname or "").lower().removeprefix("autoconfig.")


async def autoconfig(request: Request) -> Response:
    svc = services(request)
    domain = _domain(request)
    if not domain or len(domain) > 255 or not await svc.mail_router.is_local_domain(domain):
        return Response("no mail service for this domain\n", 404, media_type="text/plain")
    body = client_config(svc.settings, domain)
    return Response(body, media_type="application/xml")


routes = [Route(path, autoconfig, methods=["GET"]) for path in PATHS]
