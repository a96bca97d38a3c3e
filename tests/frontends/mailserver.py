"""``enclave serve`` with every listener on a free loopback port and extra environment.

``webserver.Server`` only chooses the HTTP port and drops every ``ENCLAVE_*`` variable; the
mail tests need the SMTP and submission ports too, and settings given through the
environment (``ENCLAVE_DNS__PORT``, ``ENCLAVE_QUEUE__MX_PORT``, ...). The server is ready when
/healthz answers and the submission listener (the last one started) greets.
"""

from __future__ import annotations

import smtplib
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from tests.frontends.webserver import ENCLAVE, HOST, Server, _env, free_port


class MailServer(Server):
    """``enclave serve --http-port H --smtp-port S --submission-port P`` in a subprocess,
    with ``env`` added to the (ENCLAVE_*-free) environment. ``restart`` keeps the ports."""

    def __init__(self, data: Path, env: Mapping[str, str] | None = None) -> None:
        super().__init__(data)
        ports = {self.port}
        while len(ports) < 4:
            ports.add(free_port())
        self.smtp_port, self.submission_port, self.imap_port = sorted(ports - {self.port})
        self.env = dict(env or {})

    def start(self, timeout: float = 30.0) -> MailServer:
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
            env=_env() | self.env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._close_log()
                raise RuntimeError(
                    f"enclave serve exited {self.process.returncode} during start-up:\n"
                    + self.output()
                )
            if self._http_ready() and self._greets(self.submission_port):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"enclave serve did not start in {timeout}s:\n{self.output()}")

    def restart(self, env: Mapping[str, str] | None = None) -> MailServer:
        """SIGTERM (a clean stop, exit 0 expected), then start again, with ``env`` replacing
        the extra environment if given."""
        code = self.terminate()
        if code != 0:
            raise RuntimeError(f"enclave serve exited {code} on SIGTERM:\n{self.output()}")
        if env is not None:
            self.env = dict(env)
        return self.start()

    def _http_ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False

    @staticmethod
    def _greets(port: int) -> bool:
        try:
            with smtplib.SMTP(HOST, port, timeout=2.0) as client:
                client.noop()
        except (OSError, smtplib.SMTPException):
            return False
        return True

    def submission(self, host: str = "localhost", timeout: float = 30.0) -> smtplib.SMTP:
        """A connected client of the submission listener (no EHLO yet). ``host`` is also the
        name STARTTLS checks the certificate against (smtplib uses the host it connected to);
        "localhost" is in the deployment's self-signed certificate."""
        return smtplib.SMTP(
            host, self.submission_port, local_hostname="client.test", timeout=timeout
        )

    def mx(self, helo: str = "client.test", timeout: float = 30.0) -> smtplib.SMTP:
        """A connected client of the inbound (MX) listener (no EHLO yet)."""
        return smtplib.SMTP(HOST, self.smtp_port, local_hostname=helo, timeout=timeout)
