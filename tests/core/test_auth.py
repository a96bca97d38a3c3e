"""Authentication: uniform failures, constant-time path, limits, app passwords, MFA rules."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pyotp
import pytest

from enclave.core import clock
from enclave.core.errors import AuthenticationFailed, Forbidden, SecondFactorRequired
from enclave.core.passwords import verify_password
from enclave.core.principal import Principal
from enclave.services import Services
from tests.support import PASSWORD


async def audit_reasons(svc: Services, tenant: str | None, action: str) -> list[str]:
    rows = await svc.audit_access.entries(Principal.system("t"), tenant, 0, 1000)
    return [f"{r['outcome']}:{r['reason']}" for r in rows if r["action"] == action]


async def test_web_login_and_session(services: Services, two_tenants: dict) -> None:
    signed = await services.auth.login_web("Bob@ACME.example", PASSWORD, source="192.0.2.1")
    who = await services.auth.resolve(signed.token)
    assert who.name == "bob@acme.example" and who.tenant_id == two_tenants["bob"].tenant_id
    await services.auth.logout(signed.token)
    with pytest.raises(AuthenticationFailed):
        await services.auth.resolve(signed.token)


async def test_failures_are_uniform_and_audited(services: Services, two_tenants: dict) -> None:
    messages = set()
    for email, password in [
        ("bob@acme.example", "wrong password!"),
        ("nobody@acme.example", PASSWORD),
        ("nobody@unknown.example", PASSWORD),
    ]:
        with pytest.raises(AuthenticationFailed) as info:
            await services.auth.login_web(email, password, source="192.0.2.9")
        assert type(info.value) is AuthenticationFailed
        messages.add(str(info.value))
    assert messages == {"authentication failed"}
    reasons = await audit_reasons(services, "acme", "login.web")
    assert "failure:wrong password" in reasons
    assert "failure:unknown account" in reasons  # the tenant sees attempts on its domain
    platform = await audit_reasons(services, None, "login.web")
    assert platform == ["failure:unknown account"]  # no tenant owns unknown.example


async def test_failure_time_does_not_reveal_account_existence(
    services: Services, two_tenants: dict
) -> None:
    async def timed(email: str) -> float:
        started = time.perf_counter()
        with pytest.raises(AuthenticationFailed):
            await services.auth.login_web(email, "wrong password!", source=None)
        return time.perf_counter() - started

    known = sorted([await timed("alice@acme.example") for _ in range(3)])[1]
    unknown = sorted([await timed(f"ghost{i}@acme.example") for i in range(3)])[1]
    # Both pay one argon2 verification and the failure floor (50 ms in tests).
    assert known >= 0.05 and unknown >= 0.05
    assert abs(known - unknown) < 0.5 * max(known, unknown)


async def test_account_lockout_after_repeated_failures(
    services: Services, settings, two_tenants: dict
) -> None:
    for _ in range(settings.auth.account_failures):
        with pytest.raises(AuthenticationFailed):
            await services.auth.login_web("bob@acme.example", "wrong password!", source="10.9.9.9")
    with pytest.raises(AuthenticationFailed):  # the right password no longer helps
        await services.auth.login_web("bob@acme.example", PASSWORD, source="10.9.9.8")
    assert "failure:too many failures: temporarily locked" in await audit_reasons(
        services, "acme", "login.web"
    )
    # Another account from the same address is unaffected.
    await services.auth.login_web("alice@acme.example", PASSWORD, source="10.9.9.9")


async def test_address_limit_spans_accounts(
    services: Services, settings, two_tenants: dict
) -> None:
    for i in range(settings.auth.address_failures):
        with pytest.raises(AuthenticationFailed):
            await services.auth.login_web(f"spray{i}@acme.example", "x" * 12, source="203.0.113.5")
    with pytest.raises(AuthenticationFailed):
        await services.auth.login_web("alice@acme.example", PASSWORD, source="203.0.113.5")
    await services.auth.login_web("alice@acme.example", PASSWORD, source="203.0.113.6")


async def test_protocol_login_with_password_then_app_password_only_after_mfa(
    services: Services, two_tenants: dict
) -> None:
    bob = two_tenants["bob"]
    assert (await services.auth.login_protocol("bob@acme.example", PASSWORD)).id == bob.id
    app, secret = await services.users.add_app_password(bob, "bob@acme.example", "phone")
    assert (await services.auth.login_protocol("bob@acme.example", secret)).id == bob.id
    assert (await services.auth.login_protocol("bob@acme.example", secret.replace("-", ""))).id
    enrolment = await services.users.begin_mfa(bob, "bob@acme.example")
    codes = await services.users.confirm_mfa(
        bob, "bob@acme.example", pyotp.TOTP(enrolment.secret).now()
    )
    assert len(codes) == 10
    with pytest.raises(AuthenticationFailed):
        await services.auth.login_protocol("bob@acme.example", PASSWORD)
    assert (await services.auth.login_protocol("bob@acme.example", secret)).id == bob.id
    await services.users.revoke_app_password(bob, "bob@acme.example", app.id)
    with pytest.raises(AuthenticationFailed):
        await services.auth.login_protocol("bob@acme.example", secret)
    reasons = await audit_reasons(services, "acme", "login.protocol")
    assert any("use an app password" in r for r in reasons)


async def test_web_login_second_factor_and_recovery_codes(
    services: Services, two_tenants: dict
) -> None:
    bob = two_tenants["bob"]
    enrolment = await services.users.begin_mfa(bob, "bob@acme.example")
    totp = pyotp.TOTP(enrolment.secret)
    codes = await services.users.confirm_mfa(bob, "bob@acme.example", totp.now())
    with pytest.raises(SecondFactorRequired):
        await services.auth.login_web("bob@acme.example", PASSWORD)
    with pytest.raises(AuthenticationFailed):
        await services.auth.login_web("bob@acme.example", PASSWORD, code="000000")
    await services.auth.login_web("bob@acme.example", PASSWORD, code=totp.now())
    await services.auth.login_web("bob@acme.example", PASSWORD, code=codes[0])
    with pytest.raises(AuthenticationFailed):  # each recovery code works once
        await services.auth.login_web("bob@acme.example", PASSWORD, code=codes[0])


async def test_tenant_wide_mfa_requirement(
    services: Services, console: Principal, two_tenants: dict
) -> None:
    await services.tenants.require_mfa(two_tenants["alice"], "acme", True)
    signed = await services.auth.login_web("bob@acme.example", PASSWORD)
    assert signed.principal.restricted
    with pytest.raises(Forbidden):
        await services.users.add_app_password(signed.principal, "bob@acme.example", "x")
    with pytest.raises(AuthenticationFailed):  # protocol clients: app passwords only
        await services.auth.login_protocol("bob@acme.example", PASSWORD)
    enrolment = await services.users.begin_mfa(signed.principal, "bob@acme.example")
    await services.users.confirm_mfa(
        signed.principal, "bob@acme.example", pyotp.TOTP(enrolment.secret).now()
    )
    with pytest.raises(Forbidden):  # a plain user cannot change the tenant policy
        await services.tenants.require_mfa(two_tenants["bob"], "acme", False)


async def test_disabled_user_and_suspended_tenant_cannot_sign_in(
    services: Services, console: Principal, two_tenants: dict
) -> None:
    signed = await services.auth.login_web("bob@acme.example", PASSWORD)
    await services.users.set_status(console, "bob@acme.example", "disabled")
    with pytest.raises(AuthenticationFailed):
        await services.auth.resolve(signed.token)
    with pytest.raises(AuthenticationFailed):
        await services.auth.login_web("bob@acme.example", PASSWORD)
    alice = await services.auth.login_web("alice@acme.example", PASSWORD)
    await services.tenants.set_status(console, "acme", "suspended")
    with pytest.raises(AuthenticationFailed):
        await services.auth.resolve(alice.token)
    with pytest.raises(AuthenticationFailed):
        await services.auth.login_protocol("alice@acme.example", PASSWORD)
    await services.auth.login_web("gina@globex.example", PASSWORD)


async def test_password_change_ends_sessions(services: Services, two_tenants: dict) -> None:
    bob = two_tenants["bob"]
    signed = await services.auth.login_web("bob@acme.example", PASSWORD)
    await services.users.set_password(bob, "bob@acme.example", "a brand new password")
    with pytest.raises(AuthenticationFailed):
        await services.auth.resolve(signed.token)
    await services.auth.login_web("bob@acme.example", "a brand new password")


async def test_password_hashing_blocks_the_event_loop(
    services: Services, two_tenants: dict
) -> None:
    """While logins verify passwords (right, wrong, unknown accounts), the loop keeps
    turning: argon2 runs in threads. Measured as the longest pause of a 5 ms ticker, against
    the time one verification takes here: on the loop, a pause would last at least that long.
    The margin below it absorbs the scheduler on a busy two-core machine."""
    started = time.perf_counter()
    for _ in range(3):
        verify_password(None, "calibration")
    one_verify = (time.perf_counter() - started) / 3
    pauses: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            pauses.append(now - last - 0.005)
            last = now

    async def attempt(email: str, password: str) -> None:
        try:
            await services.auth.login_protocol(email, password, source=None)
        except AuthenticationFailed:
            pass

    ticking = asyncio.create_task(ticker())
    await asyncio.gather(
        *(attempt("alice@acme.example", PASSWORD) for _ in range(3)),
        *(attempt("bob@acme.example", "wrong password!") for _ in range(2)),
        *(attempt(f"ghost{i}@acme.example", PASSWORD) for i in range(3)),
        services.auth.login_web("gina@globex.example", PASSWORD),
    )
    done.set()
    await ticking
    assert max(pauses) < max(0.75 * one_verify, 0.03), (max(pauses), one_verify)


async def test_a_session_ends_when_unused_and_a_heartbeat_is_no_use(
    services: Services, two_tenants: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Idle expiry (60 minutes by default): a request counts as use, a live channel's
    heartbeat (``activity=False``) only checks."""
    signed = await services.auth.login_web("bob@acme.example", PASSWORD)
    start = clock.now()

    def at(minutes: float) -> None:
        monkeypatch.setattr(clock, "now", lambda: start + timedelta(minutes=minutes))

    at(50)
    await services.auth.resolve(signed.token)  # used: the idle time counts from here
    at(105)
    await services.auth.resolve(signed.token, activity=False)  # 55 minutes unused: alive
    at(111)
    with pytest.raises(AuthenticationFailed):  # 61 minutes since the last use
        await services.auth.resolve(signed.token)
    other = await services.auth.login_web("bob@acme.example", PASSWORD)
    for minutes in range(150, 111 + 12 * 60, 50):  # used every 50 minutes: alive for 12 h
        at(minutes)
        await services.auth.resolve(other.token)
    at(111 + 12 * 60)
    with pytest.raises(AuthenticationFailed):
        await services.auth.resolve(other.token)
