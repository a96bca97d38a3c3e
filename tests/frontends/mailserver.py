"""A test server (``webserver.Server``) with smtplib clients for its mail listeners. Extra
settings go in through ``env`` (``ENCLAVE_QUEUE__MX_PORT``, ``ENCLAVE_DNS__PORT``, ...)."""

from __future__ import annotations

import smtplib

from tests.frontends.webserver import HOST, Server


class MailServer(Server):
    """A test server with clients for its submission and MX listeners."""

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
