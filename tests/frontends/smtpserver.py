"""``enclave serve`` with its inbound SMTP (MX) listener on a free loopback port.

``webserver.Server`` only chooses the HTTP port; this also gives every other listener a free
port (``--smtp-port``, ``--submission-port``, ``--imap-port``) and waits until the MX listener
greets (it starts after the HTTP listener, so /healthz alone is not enough).

The server keeps the test session's DNS settings (``ENCLAVE_DNS__*``, set by conftest to an
empty zone on loopback), which ``webserver._env`` would drop with every other ``ENCLAVE_*``
variable: without them, SPF/DKIM/DMARC checks would ask the host's resolver.
"""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import time
from pathlib import Path

import httpx

from tests.frontends.webserver import ENCLAVE, HOST, Server, _env, free_port


def _server_env() -> dict[str, str]:
    dns = {k: v for k, v in os.environ.items() if k.startswith("ENCLAVE_DNS__")}
    return _env() | dns


class SmtpServer(Server):
    """``enclave serve --http-port H --smtp-port S`` in a subprocess."""

    def __init__(self, data: Path) -> None:
        super().__init__(data)
        ports = {self.port}
        while len(ports) < 4:
            ports.add(free_port())
        self.smtp_port, self.submission_port, self.imap_port = sorted(ports - {self.port})

    def start(self, timeout: float = 30.0) -> SmtpServer:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                str(ENCLAVE),
                "serve",
                "--data",
                str(self.data),
                "--http-port",
                str(self.port),
                "--smtp-port",
                str(self.smtp_port),
                "--submission-port",
                str(self.submission_port),
                "--imap-port",
                str(self.imap_port),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_server_env(),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._close_log()
                raise RuntimeError(
                    f"enclave serve exited {self.process.returncode} during start-up:\n"
                    + self.output()
                )
            if self._http_ready() and self._smtp_ready():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"enclave serve did not start in {timeout}s:\n{self.output()}")

    def _http_ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False

    def _smtp_ready(self) -> bool:
        try:
            with smtplib.SMTP(HOST, self.smtp_port, timeout=2.0) as client:
                client.noop()
        except (OSError, smtplib.SMTPException):
            return False
        return True

    def smtp(self, timeout: float = 30.0) -> smtplib.SMTP:
        """A connected (not yet greeted with EHLO) smtplib client."""
        return smtplib.SMTP(HOST, self.smtp_port, local_hostname="client.test", timeout=timeout)

    def kill(self) -> int:
        """SIGKILL: no shutdown code runs (a crash, as far as the server can tell)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        code = self.process.wait(timeout=10)
        self._close_log()
        return code
