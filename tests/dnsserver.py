"""A tiny authoritative DNS server for tests (UDP and TCP on loopback), built on dnspython.

    zone = {("remote.example", "MX"): ["10 mx.remote.example."],
            ("mx.remote.example", "A"): ["127.0.0.1"],
            ("remote.example", "TXT"): ['"v=spf1 ip4:127.0.0.1 -all"']}
    with DnsServer(zone) as server: ...  # server.port

Names not in the zone get NXDOMAIN; known names without the asked type get an empty answer.
"""

from __future__ import annotations

import socket
import socketserver
import struct
import threading
from typing import Any

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

Zone = dict[tuple[str, str], list[str]]


def _answer(zone: Zone, wire: bytes) -> bytes:
    query = dns.message.from_wire(wire)
    response = dns.message.make_response(query)
    response.flags |= 0x0400  # authoritative
    question = query.question[0]
    name = question.name.to_text().rstrip(".").lower()
    rdtype = dns.rdatatype.to_text(question.rdtype)
    known = {n for n, _ in zone}
    if name not in known:
        response.set_rcode(dns.rcode.NXDOMAIN)
    elif (name, rdtype) in zone:
        response.answer.append(
            dns.rrset.from_text_list(
                question.name, 60, dns.rdataclass.IN, rdtype, zone[(name, rdtype)]
            )
        )
    return response.to_wire()


class DnsServer:
    def __init__(self, zone: Zone) -> None:
        self.zone = {(n.rstrip(".").lower(), t.upper()): v for (n, t), v in zone.items()}
        self._udp: socketserver.UDPServer | None = None
        self._tcp: socketserver.TCPServer | None = None
        self.port = 0

    def __enter__(self) -> DnsServer:
        zone = self.zone

        class Udp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                sock.sendto(_answer(zone, data), self.client_address)

        class Tcp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                size = struct.unpack("!H", self.request.recv(2))[0]
                reply = _answer(zone, self.request.recv(size))
                self.request.sendall(struct.pack("!H", len(reply)) + reply)

        self._udp = socketserver.ThreadingUDPServer(("127.0.0.1", 0), Udp)
        self.port = self._udp.server_address[1]
        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self._tcp = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Tcp)
        for server in (self._udp, self._tcp):
            threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        for server in (self._udp, self._tcp):
            if server is not None:
                server.shutdown()
                server.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
