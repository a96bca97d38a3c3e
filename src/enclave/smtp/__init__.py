"""SMTP front end (aiosmtpd): the inbound MX listener, later submission and the outbound queue."""
