"""DNS lookups (dnspython). ``configure`` also sets dnspython's default resolver, which the
DKIM, SPF and DMARC libraries use, so one setting steers every lookup the process makes."""

from __future__ import annotations

import ipaddress

import dns.asyncresolver
import dns.exception
import dns.resolver


class DnsClient:
    def __init__(self, nameservers: list[str], port: int, timeout: float) -> None:
        self._resolver = dns.asyncresolver.Resolver(configure=not nameservers)
        sync = dns.resolver.Resolver(configure=not nameservers)
        for resolver in (self._resolver, sync):
            if nameservers:
                resolver.nameservers = list(nameservers)
            resolver.port = port
            resolver.lifetime = timeout
            resolver.timeout = timeout
        dns.resolver.default_resolver = sync

    async def mx(self, domain: str) -> list[str]:
        """Mail exchangers by preference; the domain itself when it has no MX (RFC 5321 5.1).
        Raises LookupError when the domain does not exist or has a null MX (RFC 7505)."""
        try:
            answer = await self._resolver.resolve(domain, "MX")
        except dns.resolver.NXDOMAIN:
            raise LookupError(f"{domain} does not exist") from None
        except dns.resolver.NoAnswer:
            return [domain]
        records = sorted(answer, key=lambda r: r.preference)
        hosts = [str(r.exchange).rstrip(".") for r in records]
        if hosts == [""]:
            raise LookupError(f"{domain} accepts no mail (null MX)")
        return hosts

    async def mail_exchangers(self, domain: str) -> list[str]:
        """The IP addresses to try for a domain's mail, in MX preference order."""
        found: list[str] = []
        for host in await self.mx(domain):
            try:
                ipaddress.ip_address(host)
                found.append(host)
            except ValueError:
                found += await self.addresses(host)
        if not found:
            raise dns.exception.DNSException(f"no address for the mail hosts of {domain}")  # type: ignore[no-untyped-call]
        return list(dict.fromkeys(found))

    async def addresses(self, host: str) -> list[str]:
        found: list[str] = []
        for rdtype in ("A", "AAAA"):
            try:
                found += [r.to_text() for r in await self._resolver.resolve(host, rdtype)]
            except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
                continue
        return found


TemporaryDnsError = dns.exception.DNSException
