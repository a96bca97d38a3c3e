"""Operator eligibility: the policy, checked at login and at every action."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pyotp
import pytest

from enclave.core.errors import AuthenticationFailed, Forbidden
from enclave.core.operators import EligibilityPolicy, Operator
from enclave.core.principal import Principal
from enclave.services import Services

TODAY = date(2026, 11, 28)
POLICY = EligibilityPolicy(
    citizenship=("US",),
    min_check_level="tier3",
    max_check_age_days=730,
    max_training_age_days=365,
    require_mfa=True,
)
GOOD = Operator(
    id="o", username="op", display_name="Op", status="active", citizenship="US",
    check_level="tier4", check_date=TODAY - timedelta(days=100),
    training_date=TODAY - timedelta(days=10), has_mfa=True, created_at=None,  # type: ignore[arg-type]
)  # fmt: skip


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"citizenship": "FR"}, "citizenship FR"),
        ({"citizenship": None}, "citizenship unknown"),
        ({"check_level": "tier2"}, "below tier3"),
        ({"check_level": "secret-ish"}, "below tier3"),
        ({"check_date": TODAY - timedelta(days=731)}, "older than 730"),
        ({"check_date": None}, "older than 730"),
        ({"training_date": TODAY - timedelta(days=400)}, "training older"),
        ({"has_mfa": False}, "second factor"),
        ({"status": "suspended"}, "suspended"),
    ],
)
def test_each_rule_names_its_reason(change: dict, problem: str) -> None:
    assert POLICY.problems(GOOD, TODAY) == []
    problems = POLICY.problems(replace(GOOD, **change), TODAY)
    assert len(problems) == 1 and problem in problems[0]


def test_boundaries() -> None:
    assert POLICY.problems(replace(GOOD, check_date=TODAY - timedelta(days=730)), TODAY) == []
    assert POLICY.problems(replace(GOOD, check_level="tier3"), TODAY) == []
    assert EligibilityPolicy().problems(replace(GOOD, citizenship=None), TODAY) == []


async def test_login_and_every_action_check_the_policy(
    services: Services, console: Principal
) -> None:
    object.__setattr__(services.operators, "policy", POLICY)
    _, uri = await services.operators.add(console, "op1", "Op One", "operator password")
    totp = pyotp.parse_uri(uri)
    with pytest.raises(AuthenticationFailed):  # not screened yet
        await services.auth.login_operator("op1", "operator password", totp.now())
    today = date.today()
    await services.operators.screen(
        console, "op1", citizenship="us", check_level="tier3",
        check_date=today - timedelta(days=30), training_date=today,
    )  # fmt: skip
    with pytest.raises(AuthenticationFailed):
        await services.auth.login_operator("op1", "operator password", "000000")
    signed = await services.auth.login_operator("op1", "operator password", totp.now())
    operator = await services.auth.resolve(signed.token)
    tenant = await services.tenants.create(operator, "initech", ["initech.example"])
    assert tenant.status == "active"
    assert (await services.health.report(operator))["tenants"]["total"] == 1
    await services.operators.screen(console, "op1", citizenship="FR")
    with pytest.raises(Forbidden):  # the same session, refused at the next use
        await services.tenants.set_status(operator, "initech", "suspended")
    platform = await services.audit_access.entries(console, None, 0, 1000)
    refusals = [r for r in platform if r["outcome"] == "denied" and r["actor"] == "op1"]
    assert refusals and "citizenship FR" in refusals[-1]["reason"]
    logins = [r for r in platform if r["action"] == "login.operator"]
    assert [r["outcome"] for r in logins] == ["denied", "failure", "success"]
    assert "not eligible" in logins[0]["reason"]
    # The tenant sees the operator's action on it (access transparency).
    tenant_log = await services.audit_access.entries(console, "initech", 0, 100)
    assert [(r["realm"], r["actor"], r["action"]) for r in tenant_log][:1] == [
        ("operator", "op1", "tenant.create")
    ]
