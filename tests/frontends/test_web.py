"""The HTTP front end, end to end: a real ``enclave serve`` process on a loopback port,
deployments prepared and changed with the real ``enclave`` CLI, spoken to with httpx.

One deployment (``template``) is prepared once and never served; each server runs on its own
copy. Most tests share the module's main server (``main``): they use distinct accounts, so
they do not interfere. The rate-limit and shutdown tests get servers of their own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.frontends.webserver import (
    Server,
    cli,
    cli_chains,
    copy_deployment,
    port_is_free,
    set_option,
)

PASSWORD = "correct horse battery"
OP_PASSWORD = "operator staple battery"
AUTH_FAILED = {"error": "authentication_failed", "message": "authentication failed"}

ALICE = "alice@acme.example"  # tenant admin
BOB = "bob@acme.example"  # user: app passwords, tenant MFA policy
CAROL = "carol@acme.example"  # tenant auditor
DAVE = "dave@acme.example"  # disabled
MIA = "mia@acme.example"  # enrols a second factor
SAM = "sam@acme.example"  # sessions


@dataclass(frozen=True)
class Deployment:
    data: Path
    op1_totp: pyotp.TOTP  # unscreened at first
    op2_totp: pyotp.TOTP  # screened and eligible


def _totp_from(output: str) -> pyotp.TOTP:
    match = re.search(r"otpauth://\S+", output)
    assert match, f"no otpauth URI in the CLI output:\n{output}"
    totp = pyotp.parse_uri(match.group(0))
    assert isinstance(totp, pyotp.TOTP)
    return totp


def _recent(days: int = 30) -> str:
    return (datetime.now(UTC).date() - timedelta(days=days)).isoformat()


def _screen_args(operator: str, citizenship: str) -> tuple[str, ...]:
    return (
        "operator",
        "screen",
        operator,
        "--citizenship",
        citizenship,
        "--check-level",
        "tier3",
        "--check-date",
        _recent(),
        "--training-date",
        _recent(),
    )


def _add_user(email: str, *flags: str) -> tuple[tuple[str, ...], str]:
    return ("user", "add", email, *flags, "--password-stdin"), PASSWORD + "\n"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    """A deployment prepared with the CLI only: tenant acme, its users, two operators."""
    data = tmp_path_factory.mktemp("web") / "template"
    cli(data, "init")
    set_option(data, "auth", "failure_delay_ms", "50")
    # Every request comes from 127.0.0.1: keep the shared server's per-address limit out of
    # the way (the rate-limit test has its own server with low limits).
    set_option(data, "auth", "address_failures", "1000")
    set_option(data, "operators.policy", "citizenship", '["US"]')
    set_option(data, "operators.policy", "min_check_level", '"tier3"')
    set_option(data, "operators.policy", "max_check_age_days", "730")
    cli(data, "tenant", "create", "acme", "--domain", "acme.example")
    outputs = cli_chains(
        data,
        [
            [(("operator", "add", "op1", "--password-stdin"), OP_PASSWORD + "\n")],
            [
                (("operator", "add", "op2", "--password-stdin"), OP_PASSWORD + "\n"),
                (_screen_args("op2", "US"), None),
            ],
            [_add_user(ALICE, "--admin")],
            [_add_user(BOB)],
            [_add_user(CAROL, "--auditor")],
            [_add_user(DAVE), (("user", "disable", DAVE), None)],
            [_add_user(MIA)],
            [_add_user(SAM)],
        ],
    )
    assert "NOT eligible" not in outputs[1][1], outputs[1][1]
    return Deployment(data, _totp_from(outputs[0][0]), _totp_from(outputs[1][0]))


def _serve_copy(template: Deployment, name: str, **auth: int) -> Server:
    data = copy_deployment(template.data, template.data.parent / name)
    for key, value in auth.items():
        set_option(data, "auth", key, str(value))
    return Server(data).start()


@pytest.fixture(scope="module")
def main(template: Deployment) -> Iterator[Server]:
    server = _serve_copy(template, "main")
    try:
        yield server
    finally:
        server.stop()


# --- helpers ---------------------------------------------------------------------------


def login(
    client: httpx.Client, email: str, password: str = PASSWORD, code: str | None = None
) -> httpx.Response:
    payload: dict[str, Any] = {"email": email, "password": password}
    if code is not None:
        payload["code"] = code
    return client.post("/api/login", json=payload)


def token_for(server: Server, email: str, password: str = PASSWORD) -> str:
    with server.client() as client:
        reply = login(client, email, password)
    assert reply.status_code == 200, reply.text
    token: str = reply.json()["token"]
    return token


def bearer(server: Server, token: str) -> httpx.Client:
    return server.client(headers={"Authorization": f"Bearer {token}"})


def operator_login(server: Server, username: str, totp: pyotp.TOTP) -> httpx.Response:
    with server.client() as client:
        return client.post(
            "/api/operator/login",
            json={"username": username, "password": OP_PASSWORD, "code": totp.now()},
        )


def all_audit(client: httpx.Client) -> list[dict[str, Any]]:
    """Every entry of the caller's tenant log, paging with ``after``."""
    entries: list[dict[str, Any]] = []
    after = 0
    while True:
        reply = client.get("/api/audit", params={"after": after, "limit": 1000})
        assert reply.status_code == 200, reply.text
        page = reply.json()
        if not page:
            return entries
        entries += page
        after = page[-1]["seq"]


def metric(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


# --- 1. health and metrics --------------------------------------------------------------
# First in the file on purpose: later tests add tenants to the shared server.


def test_healthz_and_metrics(main: Server) -> None:
    with main.client() as client:
        health = client.get("/healthz")
        assert health.status_code == 200
        assert health.json()["status"] == "ok"

        before = client.get("/metrics")
        assert before.status_code == 200
        assert before.headers["content-type"].startswith("text/plain")
        assert "enclave_http_requests_total" in before.text
        assert 'enclave_tenants{status="active"} 1.0' in before.text
        assert 'enclave_tenants{status="suspended"} 0.0' in before.text
        logins_before = (
            metric(before.text, "enclave_logins_total", realm="tenant", outcome="success") or 0.0
        )

        assert login(client, ALICE).status_code == 200

        after = client.get("/metrics")
        assert after.status_code == 200
        assert "enclave_logins_total" in after.text
        assert (
            metric(after.text, "enclave_logins_total", realm="tenant", outcome="success")
            == logins_before + 1
        )
        # The /healthz request above was counted as a 200 GET.
        assert (
            metric(after.text, "enclave_http_requests_total", method="GET", status="200") or 0
        ) >= 2


# --- 2. sign-in, cookie, bearer, logout -------------------------------------------------


def test_login_sets_cookie_and_session_works_by_cookie_and_bearer(main: Server) -> None:
    with main.client() as client:
        reply = login(client, ALICE)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        token = body["token"]
        assert isinstance(token, str) and len(token) >= 32
        assert body["email"] == ALICE
        assert body["restricted"] is False

        cookies = reply.headers.get_list("set-cookie")
        assert len(cookies) == 1
        cookie = cookies[0]
        assert cookie.startswith(f"enclave_session={token};")
        attributes = [part.strip().lower() for part in cookie.split(";")[1:]]
        assert "httponly" in attributes
        assert "samesite=strict" in attributes
        assert "secure" not in attributes  # plain HTTP on loopback
        assert client.cookies.get("enclave_session") == token

        me = client.get("/api/me")  # by cookie
        assert me.status_code == 200, me.text
        assert me.json()["email"] == ALICE
        assert me.json()["role"] == "admin"

    with bearer(main, token) as api:  # no cookie at all
        me = api.get("/api/me")
        assert me.status_code == 200, me.text
        assert me.json()["email"] == ALICE
        assert me.json()["role"] == "admin"

    with main.client() as anonymous:
        assert anonymous.get("/api/me").status_code == 401

    with main.client() as client:
        assert login(client, ALICE).status_code == 200
        cookie_token = client.cookies["enclave_session"]
        out = client.post("/api/logout")
        assert out.status_code == 200
        assert client.get("/api/me").status_code == 401
    with bearer(main, cookie_token) as api:  # the session is revoked, not just forgotten
        gone = api.get("/api/me")
        assert gone.status_code == 401
        assert gone.json()["error"] == "authentication_failed"
    with bearer(main, token) as api:  # the other session is untouched
        assert api.get("/api/me").status_code == 200
        assert api.post("/api/logout").status_code == 200
        assert api.get("/api/me").status_code == 401


# --- 3. uniform failures, bad bodies ----------------------------------------------------


def test_failed_logins_are_indistinguishable(main: Server) -> None:
    with main.client() as client:
        replies = {
            "wrong password": login(client, ALICE, "not the password at all"),
            "unknown account": login(client, "nobody@acme.example"),
            "unknown domain": login(client, "nobody@nowhere.example"),
            "disabled user": login(client, DAVE),
        }
    for why, reply in replies.items():
        assert reply.status_code == 401, why
        assert reply.json() == AUTH_FAILED, why
        assert "set-cookie" not in reply.headers, why
    bodies = {reply.content for reply in replies.values()}
    assert len(bodies) == 1, bodies


def test_login_rejects_bad_bodies(main: Server) -> None:
    with main.client() as client:
        form = client.post("/api/login", data={"email": ALICE, "password": PASSWORD})
        assert form.status_code == 400
        assert form.json()["error"] == "invalid"

        plain = client.post(
            "/api/login",
            content=json.dumps({"email": ALICE, "password": PASSWORD}),
            headers={"content-type": "text/plain"},
        )
        assert plain.status_code == 400
        assert plain.json()["error"] == "invalid"

        broken = client.post(
            "/api/login",
            content=b'{"email": "alice@acme.example", "password": ',
            headers={"content-type": "application/json"},
        )
        assert broken.status_code == 400
        assert broken.json()["error"] == "invalid"

        not_object = client.post("/api/login", json=[ALICE, PASSWORD])
        assert not_object.status_code == 400

        missing = client.post("/api/login", json={"email": ALICE})
        assert missing.status_code == 400
        assert "password" in missing.json()["message"]
        assert "set-cookie" not in missing.headers


# --- 5. sessions ------------------------------------------------------------------------


def test_sessions_list_and_revoke_one(main: Server) -> None:
    first = token_for(main, SAM)
    second = token_for(main, SAM)
    assert first != second
    with bearer(main, first) as one, bearer(main, second) as two:
        listed = one.get("/api/sessions")
        assert listed.status_code == 200, listed.text
        sessions = listed.json()
        assert len(sessions) == 2
        assert all(s["source"] == "127.0.0.1" for s in sessions)
        ids = {s["id"] for s in sessions}
        assert len(ids) == 2
        # The listing never shows the bearer tokens themselves.
        assert first not in listed.text and second not in listed.text

        # The listing does not say which id is which token: revoke one of them from the
        # first session, then exactly one of the two tokens must be dead.
        target = sorted(ids)[0]
        gone = one.delete(f"/api/sessions/{target}")
        assert gone.status_code == 204
        me_one, me_two = one.get("/api/me"), two.get("/api/me")
        assert sorted([me_one.status_code, me_two.status_code]) == [200, 401]
        survivor = one if me_one.status_code == 200 else two
        dead = two if survivor is one else one
        assert dead.get("/api/sessions").status_code == 401
        remaining = survivor.get("/api/sessions").json()
        assert [s["id"] for s in remaining] == sorted(ids)[1:]

        assert survivor.delete("/api/sessions/abc").status_code == 404  # prefix too short
        assert survivor.delete("/api/sessions/0123456789abcdef").status_code == 404

        # Sessions are one's own: even a tenant admin cannot end someone else's by its id.
        with bearer(main, token_for(main, ALICE)) as admin:
            assert admin.delete(f"/api/sessions/{remaining[0]['id']}").status_code == 404
        assert survivor.get("/api/me").status_code == 200


# --- 6. second factor -------------------------------------------------------------------


def test_mfa_enrolment_and_logins(main: Server) -> None:
    token = token_for(main, MIA)
    with bearer(main, token) as api:
        enrol = api.post("/api/mfa/enroll")
        assert enrol.status_code == 200, enrol.text
        secret = enrol.json()["secret"]
        uri = enrol.json()["uri"]
        assert uri.startswith("otpauth://totp/") and f"secret={secret}" in uri
        totp = pyotp.TOTP(secret)

        wrong = api.post(
            "/api/mfa/confirm", json={"code": "000000" if totp.now() != "000000" else "111111"}
        )
        assert wrong.status_code == 400
        assert api.get("/api/me").json()["mfa"] is False

        confirm = api.post("/api/mfa/confirm", json={"code": totp.now()})
        assert confirm.status_code == 200, confirm.text
        codes = confirm.json()["recovery_codes"]
        assert len(codes) == 10 and len(set(codes)) == 10
        assert confirm.json()["signed_out"] is True

        # The password-only session from before the factor existed has ended.
        assert api.get("/api/me").status_code == 401

    with main.client() as client:
        needs = login(client, MIA)
        assert needs.status_code == 401
        assert needs.json()["error"] == "second_factor_required"
        assert "set-cookie" not in needs.headers

        bad_code = login(client, MIA, code="123456" if totp.now() != "123456" else "654321")
        assert bad_code.status_code == 401
        assert bad_code.json() == AUTH_FAILED

        wrong_password = login(client, MIA, "not the password at all", code=totp.now())
        assert wrong_password.status_code == 401
        assert wrong_password.json() == AUTH_FAILED

        with_totp = login(client, MIA, code=totp.now())
        assert with_totp.status_code == 200, with_totp.text
        me = client.get("/api/me")
        assert me.status_code == 200
        assert me.json()["mfa"] is True

        with_recovery = login(client, MIA, code=codes[0])
        assert with_recovery.status_code == 200, with_recovery.text
        again = login(client, MIA, code=codes[0])
        assert again.status_code == 401
        assert again.json() == AUTH_FAILED
        other = login(client, MIA, code=codes[1].upper())  # codes are case-insensitive
        assert other.status_code == 200, other.text


# --- 7. app passwords -------------------------------------------------------------------


def test_app_password_management(main: Server) -> None:
    with bearer(main, token_for(main, BOB)) as api:
        assert api.get("/api/app-passwords").json() == []

        created = api.post("/api/app-passwords", json={"name": "phone mail"})
        assert created.status_code == 201, created.text
        secret = created.json()["password"]
        app_id = created.json()["id"]
        assert created.json()["name"] == "phone mail"
        assert re.fullmatch(r"[a-z2-9]{5}(-[a-z2-9]{5}){3}", secret), secret

        listed = api.get("/api/app-passwords")
        assert listed.status_code == 200
        assert [(a["id"], a["name"]) for a in listed.json()] == [(app_id, "phone mail")]
        assert listed.json()[0]["last_used_at"] is None
        assert "password" not in listed.json()[0]
        assert secret not in listed.text and secret.replace("-", "") not in listed.text

        assert api.post("/api/app-passwords", json={"name": "  "}).status_code == 400
        assert api.post("/api/app-passwords", json={}).status_code == 400

        revoked = api.delete(f"/api/app-passwords/{app_id}")
        assert revoked.status_code == 204
        assert api.get("/api/app-passwords").json() == []
        assert api.delete(f"/api/app-passwords/{app_id}").status_code == 404

    with main.client() as anonymous:
        assert anonymous.get("/api/app-passwords").status_code == 401


# --- 8. tenant policy: second factor required --------------------------------------------


def test_tenant_mfa_policy_restricts_sessions(main: Server) -> None:
    cli(main.data, "tenant", "require-mfa", "acme", "--on")
    try:
        with main.client() as client:
            reply = login(client, BOB)
            assert reply.status_code == 200, reply.text
            assert reply.json()["restricted"] is True
            me = client.get("/api/me")
            assert me.status_code == 200
            assert me.json()["restricted"] is True

            enrol = client.post("/api/mfa/enroll")
            assert enrol.status_code == 200, enrol.text
            assert enrol.json()["secret"]

            refused = client.post("/api/app-passwords", json={"name": "laptop"})
            assert refused.status_code == 403
            assert refused.json()["error"] == "forbidden"
            assert client.get("/api/app-passwords").status_code == 403
    finally:
        cli(main.data, "tenant", "require-mfa", "acme", "--off")


# --- 9. audit API -----------------------------------------------------------------------


def test_audit_api_roles_and_tenant_isolation(main: Server) -> None:
    cli(main.data, "tenant", "create", "globex", "--domain", "globex.example")
    cli(main.data, *_add_user("gina@globex.example", "--admin")[0], stdin=PASSWORD + "\n")
    with main.client() as client:
        assert login(client, "gina@globex.example", "not the password at all").status_code == 401
        assert login(client, "gina@globex.example").status_code == 200
        gina_entries = all_audit(client)
    assert any(
        e["action"] == "login.web" and e["actor"] == "gina@globex.example" for e in gina_entries
    )
    assert "acme" not in json.dumps(gina_entries)

    with main.client() as client:
        assert login(client, ALICE, "not the password at all").status_code == 401
        assert login(client, ALICE).status_code == 200
        entries = all_audit(client)
    mine = [e for e in entries if e["action"] == "login.web" and e["target"] == f"tenant:{ALICE}"]
    assert any(e["outcome"] == "success" and e["actor"] == ALICE for e in mine)
    failures = [e for e in mine if e["outcome"] == "failure"]
    assert failures and all(e["reason"] == "wrong password" for e in failures)
    assert all(e["source"] == "127.0.0.1" for e in mine)
    assert all(e["log"] == entries[0]["log"] for e in entries)
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert "globex" not in json.dumps(entries)

    with bearer(main, token_for(main, CAROL)) as auditor:
        reply = auditor.get("/api/audit")
        assert reply.status_code == 200
        assert reply.json()[0] == entries[0]

    with bearer(main, token_for(main, SAM)) as user:
        refused = user.get("/api/audit")
        assert refused.status_code == 403
        assert refused.json()["error"] == "forbidden"


# --- 10. operators ----------------------------------------------------------------------


def test_operator_screening_tenants_and_eligibility_at_every_use(
    main: Server, template: Deployment
) -> None:
    unscreened = operator_login(main, "op1", template.op1_totp)
    assert unscreened.status_code == 401
    assert unscreened.json() == AUTH_FAILED

    verdict = cli(main.data, *_screen_args("op1", "US"))
    assert "op1: eligible" in verdict, verdict

    with main.client() as client:
        wrong_code = client.post(
            "/api/operator/login",
            json={"username": "op1", "password": OP_PASSWORD, "code": "00000"},
        )
        assert wrong_code.status_code == 401
    signed_in = operator_login(main, "op1", template.op1_totp)
    assert signed_in.status_code == 200, signed_in.text
    token = signed_in.json()["token"]
    assert "enclave_session=" in signed_in.headers["set-cookie"]

    with bearer(main, token) as op:
        health = op.get("/api/platform/health")
        assert health.status_code == 200, health.text
        before = health.json()
        assert before["database"] == "ok"
        assert before["tenants"]["total"] >= 1
        assert before["tenants"]["active"] >= 1
        assert before["operators"] == 2
        assert before["users"] >= 6

        created = op.post(
            "/api/platform/tenants", json={"name": "initech", "domains": ["initech.example"]}
        )
        assert created.status_code == 201, created.text
        assert created.json()["name"] == "initech"
        assert created.json()["status"] == "active"
        assert created.json()["domains"] == ["initech.example"]
        assert (
            op.post(
                "/api/platform/tenants", json={"name": "initech", "domains": ["other.example"]}
            ).status_code
            == 409
        )
        assert op.post("/api/platform/tenants", json={"name": "x2"}).status_code == 400

        listed = op.get("/api/platform/tenants")
        assert listed.status_code == 200
        assert "initech" in [t["name"] for t in listed.json()]

        after = op.get("/api/platform/health").json()
        assert after["tenants"]["total"] == before["tenants"]["total"] + 1
        assert after["tenants"]["active"] == before["tenants"]["active"] + 1

        cli(main.data, *_add_user("ivan@initech.example")[0], stdin=PASSWORD + "\n")
        ivan = token_for(main, "ivan@initech.example")

        suspended = op.post("/api/platform/tenants/initech/suspend")
        assert suspended.status_code == 200, suspended.text
        assert suspended.json()["status"] == "suspended"
        assert op.get("/api/platform/health").json()["tenants"]["suspended"] == (
            before["tenants"]["suspended"] + 1
        )

        with main.client() as client:
            refused = login(client, "ivan@initech.example")
            assert refused.status_code == 401
            assert refused.json() == AUTH_FAILED
        with bearer(main, ivan) as api:  # the open session ends with the suspension
            assert api.get("/api/me").status_code == 401

        # Screening changes while the session is open: the next use is refused.
        verdict = cli(main.data, *_screen_args("op1", "FR"))
        assert "NOT eligible" in verdict and "citizenship FR not in policy" in verdict, verdict
        denied = op.get("/api/platform/health")
        assert denied.status_code == 403, denied.text
        assert denied.json()["error"] == "forbidden"
        assert "citizenship FR not in policy" in denied.json()["message"]
        assert op.post("/api/platform/tenants/initech/resume").status_code == 403
        assert op.get("/api/platform/tenants").status_code == 403

    assert operator_login(main, "op1", template.op1_totp).status_code == 401

    export = main.data / "platform-audit.jsonl"
    cli(main.data, "audit", "export", "-o", str(export))
    records = [json.loads(line) for line in export.read_text().splitlines() if line.strip()]
    entries = [r for r in records if r["type"] == "entry"]
    refusals = [
        e
        for e in entries
        if e["actor"] == "op1"
        and e["realm"] == "operator"
        and e["action"] == "platform.health"
        and e["outcome"] == "denied"
    ]
    assert refusals, entries[-10:]
    assert "citizenship FR not in policy" in refusals[-1]["reason"]
    assert any(
        e["action"] == "login.operator"
        and e["outcome"] == "denied"
        and "not eligible" in (e["reason"] or "")
        for e in entries
    )
    assert any(
        e["action"] == "tenant.suspend" and e["actor"] == "op1" and e["outcome"] == "success"
        for e in entries
    )


def test_operator_session_reads_no_tenant_data(main: Server, template: Deployment) -> None:
    signed_in = operator_login(main, "op2", template.op2_totp)
    assert signed_in.status_code == 200, signed_in.text
    with bearer(main, signed_in.json()["token"]) as op:
        tenants = op.get("/api/platform/tenants")
        assert tenants.status_code == 200
        assert "acme" in [t["name"] for t in tenants.json()]
        assert "@" not in tenants.text  # counts and domains, never user addresses

        for path in ("/api/me", "/api/app-passwords"):
            reply = op.get(path)
            assert reply.status_code in (400, 403, 404), (path, reply.text)
            assert "@acme.example" not in reply.text

        # Operators hold no tenant rights; the tenant audit endpoint must not hand them a log.
        audit = op.get("/api/audit")
        leaked = sorted(set(re.findall(r"[\w.+-]+@acme\.example", audit.text)))
        assert audit.status_code == 403, (
            f"an operator session got {audit.status_code} from /api/audit: the platform log, "
            f"naming tenant users {leaked}"
        )
        assert audit.json()["error"] == "forbidden"


def test_tenant_admin_gets_no_platform_api(main: Server) -> None:
    with bearer(main, token_for(main, ALICE)) as admin:
        assert admin.get("/api/platform/tenants").status_code == 403
        created = admin.post(
            "/api/platform/tenants", json={"name": "rogue", "domains": ["rogue.example"]}
        )
        assert created.status_code == 403
        assert created.json()["error"] == "forbidden"
        assert admin.get("/api/platform/health").status_code == 403
        assert admin.post("/api/platform/tenants/acme/suspend").status_code == 403
        assert admin.get("/api/me").status_code == 200  # acme is still active


# --- 4. failure limits (own server: low limits) -------------------------------------------


def test_failure_limits_per_account_and_per_address(template: Deployment) -> None:
    server = _serve_copy(template, "ratelimit", account_failures=3, address_failures=8)
    try:
        with server.client() as client:
            for _ in range(3):  # address failures: 3
                assert login(client, BOB, "not the password at all").json() == AUTH_FAILED
            locked = login(client, BOB)  # the right password, refused: 4
            assert locked.status_code == 401
            assert locked.json() == AUTH_FAILED

            assert login(client, ALICE).status_code == 200  # another account is unaffected

            for n in range(3):  # unknown accounts, once each: 7
                assert login(client, f"ghost{n}@acme.example").status_code == 401
            assert login(client, CAROL).status_code == 200  # still under the address limit
            assert login(client, "ghost3@acme.example").status_code == 401  # 8

            blocked = login(client, CAROL)  # the right password, but the address is blocked
            assert blocked.status_code == 401
            assert blocked.json() == AUTH_FAILED
            assert login(client, ALICE).status_code == 401
    finally:
        assert server.stop() == 0


# --- 11. clean shutdown -----------------------------------------------------------------


def test_sigterm_stops_cleanly(template: Deployment) -> None:
    server = _serve_copy(template, "shutdown")
    try:
        with server.client() as client:
            assert client.get("/healthz").status_code == 200
            assert login(client, ALICE).status_code == 200
        started = datetime.now(UTC)
        code = server.terminate(timeout=5)
        assert code == 0, server.output()
        assert (datetime.now(UTC) - started).total_seconds() < 5
        assert port_is_free(server.port)
        with pytest.raises(httpx.TransportError), server.client() as client:
            client.get("/healthz")
        assert "stopped" in server.output()
    finally:
        server.stop()
