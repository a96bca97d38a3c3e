"""The web app's pages in a real browser: Playwright driving Debian's Chromium against a real
``enclave serve``, mail delivered over SMTP to the real MX listener. Screenshots of every page
go to ``test-output/screenshots/``. Skipped where Chromium or Playwright is missing."""

from __future__ import annotations

import hashlib
import http.server
import imaplib
import json
import re
import shutil
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import httpx
import pyotp
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, sync_playwright

from tests.frontends.mailserver import MailServer
from tests.frontends.webserver import cli, cli_chains, set_option

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed")

PASSWORD = "correct horse battery"
ALICE, BOB, MIA = "alice@acme.example", "bob@acme.example", "mia@acme.example"
NED = "ned@acme.example"  # signs in while the tenant requires a second factor
OPERATOR = "op1"
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
XSS = "<img src=x onerror=window.__xss=1>"
ATTACHMENT = bytes(range(256)) * 40


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailServer]:
    data = tmp_path_factory.mktemp("pages") / "deployment"
    cli(data, "init")
    set_option(data, "operators.policy", "citizenship", '["US"]')
    set_option(data, "operators.policy", "min_check_level", '"tier3"')
    cli(data, "tenant", "create", "acme", "--domain", "acme.example")
    recent = (datetime.now(UTC).date() - timedelta(days=30)).isoformat()
    added = cli(data, "operator", "add", OPERATOR, "--password-stdin", stdin=PASSWORD + "\n")
    cli(data, "operator", "screen", OPERATOR, "--citizenship", "US", "--check-level", "tier3",
        "--check-date", recent, "--training-date", recent)  # fmt: skip
    match = re.search(r"otpauth://\S+", added)
    assert match, added
    (data / "operator-totp.txt").write_text(match.group(0))
    cli_chains(
        data,
        [
            [(("user", "add", ALICE, "--admin", "--password-stdin"), PASSWORD + "\n")],
            [(("user", "add", BOB, "--password-stdin"), PASSWORD + "\n")],
            [(("user", "add", MIA, "--password-stdin"), PASSWORD + "\n")],
            [(("user", "add", NED, "--password-stdin"), PASSWORD + "\n")],
        ],
    )
    served = MailServer(data).start()
    try:
        yield served
    finally:
        served.stop()


def deliver(server: MailServer, subject: str, *, html: str | None = None) -> None:
    message = EmailMessage()
    message["From"] = f'"{XSS} Alice" <{ALICE}>'
    message["To"] = BOB
    message["Subject"] = subject
    message.set_content(f"Hello Bob,\n{XSS}<script>window.__xss=2</script>\nthe plan is attached.")
    if html is not None:
        message.add_alternative(html, subtype="html")
    message.add_attachment(
        ATTACHMENT, maintype="application", subtype="octet-stream", filename="plan.bin"
    )
    with server.mx() as client:
        client.send_message(message)


class _Remote(http.server.BaseHTTPRequestHandler):
    """A remote site an HTML mail loads images from: it only counts who asked."""

    hits: list[str] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/gif")
        self.end_headers()
        self.wfile.write(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture()
def remote_site() -> Iterator[tuple[str, list[str]]]:
    """(a URL on another origin, the paths it was asked for)."""
    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Remote)
    _Remote.hits = []
    threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
        yield f"http://localhost:{site.server_address[1]}/pixel.gif", _Remote.hits
    finally:
        site.shutdown()
        site.server_close()


@pytest.fixture()
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield launched
        finally:
            launched.close()


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, server: MailServer, email: str, password: str = PASSWORD) -> None:
    page.goto(server.url + "/")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_sign_in_read_mail_and_download_its_attachment(
    server: MailServer, browser: Browser, remote_site: tuple[str, list[str]]
) -> None:
    """Bob signs in, sees the message in his INBOX (its hostile subject and sender shown as
    text), reads it, and downloads the attachment byte for byte; no script of the message
    ever runs and its remote image is not fetched until he allows it."""
    tracker, tracked = remote_site
    deliver(
        server,
        f"{XSS} Quarterly plan",
        html=f'<p>Hello <b>Bob</b></p><img src="{tracker}">'
        '<script>window.__xss=3</script><a href="javascript:window.__xss=4">x</a>',
    )
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    page.goto(server.url + "/")
    assert page.url.endswith("/signin")
    shot(page, "signin")
    sign_in(page, server, BOB, "not the password")
    assert page.get_by_role("alert").inner_text().startswith("The address, password")
    sign_in(page, server, BOB)
    page.wait_for_url("**/mail")
    shot(page, "mail-inbox")
    row = page.locator("table.messages tbody tr").first
    assert XSS in row.locator("td.subject a").inner_text()  # shown literally
    assert XSS in row.locator("td.from").inner_text()
    assert "unread" in (row.get_attribute("class") or "")

    row.locator("td.subject a").click()
    page.wait_for_url("**/mail/message?*")
    assert page.get_by_role("heading", level=1).inner_text() == f"{XSS} Quarterly plan"
    frame = page.frame_locator("iframe.body")
    assert frame.locator("b").inner_text() == "Bob"
    assert page.get_by_text("Remote images in this message are blocked").is_visible()
    shot(page, "mail-message")
    with page.expect_download() as downloading:
        page.get_by_role("link", name="plan.bin").click()
    saved = downloading.value.path()
    assert hashlib.sha256(Path(saved).read_bytes()).digest() == hashlib.sha256(ATTACHMENT).digest()

    assert page.evaluate("window.__xss") is None
    assert not dialogs
    assert tracked == []  # blocked by the frame's policy: never asked for
    page.get_by_role("link", name="Show them for this message").click()
    page.frame_locator("iframe.body").locator("b").wait_for()
    page.wait_for_load_state("networkidle")
    assert tracked == ["/pixel.gif"]  # now fetched, once

    page.get_by_role("link", name="INBOX").first.click()
    assert "unread" not in (
        page.locator("table.messages tbody tr").first.get_attribute("class") or ""
    )
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/signin")
    page.goto(server.url + "/mail")
    assert page.url.endswith("/signin")  # the session is gone
    context.close()


def test_new_mail_appears_without_a_reload(server: MailServer, browser: Browser) -> None:
    """The INBOX page open, a message arrives over SMTP: it shows up in the list, and the
    unread count changes, with no navigation (the live channel, fed by the change bus)."""
    page = browser.new_page()
    sign_in(page, server, BOB)
    page.wait_for_url("**/mail")
    page.evaluate("window.__same_page = true")
    before = page.locator("table.messages tbody tr").count()
    deliver(server, "Arrived while you were looking")
    page.get_by_text("Arrived while you were looking").wait_for(timeout=10_000)
    assert page.locator("table.messages tbody tr").count() == before + 1
    assert page.evaluate("window.__same_page") is True  # not reloaded
    shot(page, "mail-live")
    page.close()


def test_alice_sends_bob_an_attachment_and_he_replies(server: MailServer, browser: Browser) -> None:
    """Alice writes to Bob with an attachment; Bob, his INBOX open, sees it arrive without a
    reload, downloads the attachment byte for byte and replies; the reply reaches Alice
    (threaded: In-Reply-To) and both Sent folders keep a copy."""
    payload = bytes(range(256)) * 4000 + b"end"
    bob = browser.new_context(accept_downloads=True).new_page()
    sign_in(bob, server, BOB)
    bob.wait_for_url("**/mail")
    bob.evaluate("window.__same_page = true")

    alice = browser.new_page()
    sign_in(alice, server, ALICE)
    alice.wait_for_url("**/mail")
    alice.get_by_role("link", name="New message").click()
    alice.get_by_label("To", exact=True).fill(BOB)
    alice.get_by_label("Subject").fill("Budget 2027")
    alice.get_by_label("Message", exact=True).fill("Bob, the budget is attached.\nAlice")
    alice.get_by_label("Attachments").set_input_files(
        files=[{"name": "budget.bin", "mimeType": "application/octet-stream", "buffer": payload}]
    )
    shot(alice, "mail-compose")
    alice.get_by_role("button", name="Send").click()
    alice.wait_for_url("**/mail?sent=1")
    assert alice.get_by_role("status").filter(has_text="Message sent").is_visible()

    bob.get_by_role("link", name="Budget 2027").wait_for(timeout=10_000)
    assert bob.evaluate("window.__same_page") is True
    bob.get_by_role("link", name="Budget 2027").click()
    assert "the budget is attached" in bob.locator("pre.body").inner_text()
    with bob.expect_download() as downloading:
        bob.get_by_role("link", name="budget.bin").click()
    assert Path(downloading.value.path()).read_bytes() == payload
    bob.get_by_role("link", name="Reply", exact=True).click()
    assert bob.get_by_label("To", exact=True).input_value() == ALICE
    assert bob.get_by_label("Subject").input_value() == "Re: Budget 2027"
    assert "> Bob, the budget is attached." in bob.get_by_label("Message", exact=True).input_value()
    bob.get_by_label("Message", exact=True).press("Control+Home")
    bob.get_by_label("Message", exact=True).type("Thanks, approved. ")
    bob.get_by_role("button", name="Send").click()
    bob.wait_for_url("**/mail?sent=1")

    alice.goto(server.url + "/mail")
    alice.get_by_role("link", name="Re: Budget 2027").click()
    assert alice.locator("pre.body").inner_text().startswith("Thanks, approved.")
    for page in (alice, bob):
        page.goto(server.url + "/mail?folder=Sent")
        assert page.locator("table.messages tbody tr").count() >= 1
    alice.close()
    bob.context.close()


def test_flag_move_and_delete_from_the_message_page(server: MailServer, browser: Browser) -> None:
    deliver(server, "Sort me out")
    page = browser.new_page()
    sign_in(page, server, BOB)
    page.wait_for_url("**/mail")
    page.get_by_role("link", name="Sort me out").click()
    page.get_by_role("button", name="Flag", exact=True).click()
    assert page.get_by_role("button", name="Unflag").is_visible()
    page.get_by_label("Move to folder").select_option("Archive")
    page.get_by_role("button", name="Move", exact=True).click()
    assert page.get_by_role("link", name="Sort me out").count() == 0  # gone from INBOX
    page.goto(server.url + "/mail?folder=Archive")
    row = page.locator("table.messages tbody tr", has_text="Sort me out")
    assert "flagged" in (row.get_attribute("class") or "")
    row.get_by_role("link", name="Sort me out").click()
    page.get_by_role("button", name="Delete").click()
    page.goto(server.url + "/mail?folder=Trash")
    page.get_by_role("link", name="Sort me out").click()
    page.get_by_role("button", name="Delete").click()  # from the Trash: gone for good
    page.goto(server.url + "/mail?folder=Trash")
    assert page.get_by_role("link", name="Sort me out").count() == 0
    page.close()


def test_enrol_an_authenticator_then_sign_in_with_it_and_an_app_password_for_imap(
    server: MailServer, browser: Browser
) -> None:
    """Mia turns on TOTP from her account page (QR code and key), keeps the recovery codes
    shown once, is signed out, signs in again with password and code; an app password made
    on the page signs an IMAP client in."""
    page = browser.new_page()
    sign_in(page, server, MIA)
    page.wait_for_url("**/mail")
    page.get_by_role("link", name="Account").click()
    shot(page, "account")
    page.get_by_role("button", name="Set up an authenticator app").click()
    page.get_by_role("img", name="QR code for your authenticator app").wait_for()
    totp = pyotp.TOTP(page.locator("code.secret").inner_text())
    page.get_by_label("Code from the app").fill(totp.now())
    page.get_by_role("button", name="Turn on").click()
    codes = page.locator(".recovery-codes code").all_inner_texts()
    assert len(codes) >= 8 and len(set(codes)) == len(codes)
    shot(page, "account-recovery-codes")
    page.goto(server.url + "/mail")
    assert page.url.endswith("/signin")  # every session ended

    sign_in(page, server, MIA)
    assert "authenticator" in page.get_by_role("alert").inner_text()
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Code from your authenticator app").fill(totp.now())
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/mail")

    page.get_by_role("link", name="Account").click()
    page.get_by_label("New app password for").fill("Thunderbird")
    page.get_by_role("button", name="Create").click()
    secret = page.locator("code.new-app-password").inner_text()
    context = ssl.create_default_context(cafile=str(server.data / "tls" / "cert.pem"))
    with imaplib.IMAP4_SSL("localhost", server.imaps_port, ssl_context=context) as imap:
        assert imap.login(MIA, secret)[0] == "OK"
    page.goto(server.url + "/account")
    assert page.get_by_role("cell", name="Thunderbird", exact=True).count() == 1
    assert page.locator("code.new-app-password").count() == 0  # shown once
    page.get_by_role("button", name="Revoke Thunderbird").click()
    with imaplib.IMAP4_SSL("localhost", server.imaps_port, ssl_context=context) as imap:
        with pytest.raises(imaplib.IMAP4.error):
            imap.login(MIA, secret)
    page.close()


def test_a_tenant_that_requires_a_second_factor_sends_people_to_enrol(
    server: MailServer, browser: Browser
) -> None:
    with httpx.Client(base_url=server.url) as admin:
        token = admin.post("/api/login", json={"email": ALICE, "password": PASSWORD}).json()
        headers = {"authorization": f"Bearer {token['token']}"}
        policy = admin.put("/api/tenant/policy", json={"require_mfa": True}, headers=headers)
        assert policy.status_code == 200, policy.text
        try:
            page = browser.new_page()
            sign_in(page, server, NED)
            page.wait_for_url("**/account")
            assert page.get_by_text("your organisation requires it").is_visible()
            page.goto(server.url + "/mail")
            assert page.url.endswith("/account")
            page.close()
        finally:
            admin.put("/api/tenant/policy", json={"require_mfa": False}, headers=headers)


def test_upload_20_mb_with_progress_then_restore_an_older_version(
    server: MailServer, browser: Browser
) -> None:
    """Bob uploads a 20 MB file on the files page (the progress bar moves), makes a folder,
    uploads a second version, downloads both versions byte for byte and restores the first."""
    first = bytes(range(256)) * (20 * 1024 * 1024 // 256)
    second = b"second version\n" * 1000
    page = browser.new_context(accept_downloads=True).new_page()
    sign_in(page, server, BOB)
    page.wait_for_url("**/mail")
    page.get_by_role("link", name="Files").click()
    page.get_by_label("New folder").fill("Reports")
    page.get_by_role("button", name="Create").click()
    page.get_by_role("link", name="Reports/").click()
    page.evaluate(
        """() => { const bar = document.querySelector("progress"), seen = [];
        new MutationObserver(() => { seen.push(bar.value);
            sessionStorage.setItem("progress", JSON.stringify(seen)); }
        ).observe(bar, {attributes: true}); }"""
    )
    page.get_by_label("Files to upload").set_input_files(
        files=[{"name": "big.bin", "mimeType": "application/octet-stream", "buffer": first}]
    )
    with page.expect_navigation():
        page.get_by_role("button", name="Upload", exact=True).click()
    page.get_by_role("link", name="big.bin", exact=True).wait_for()
    seen = json.loads(page.evaluate("sessionStorage.getItem('progress')") or "[]")
    assert seen and seen[-1] == 100 and seen == sorted(seen), seen  # it moved, up to 100
    shot(page, "files-folder")
    page.get_by_label("Files to upload").set_input_files(
        files=[{"name": "big.bin", "mimeType": "application/octet-stream", "buffer": second}]
    )
    page.get_by_role("button", name="Upload", exact=True).click()
    page.wait_for_load_state()
    page.get_by_role("link", name="big.bin", exact=True).click()
    page.get_by_role("button", name="Restore version 1").wait_for()
    shot(page, "files-document")
    with page.expect_download() as downloading:
        page.get_by_role("link", name="Download version 1").click()
    assert Path(downloading.value.path()).read_bytes() == first
    with page.expect_download() as downloading:
        page.get_by_role("link", name="Download version 2").click()
    assert Path(downloading.value.path()).read_bytes() == second
    page.get_by_role("button", name="Restore version 1").click()
    page.wait_for_url("**/Reports/big.bin")
    assert "version 3" in page.locator("p.summary").inner_text()
    with page.expect_download() as downloading:
        page.get_by_role("link", name="Download", exact=True).click()
    assert Path(downloading.value.path()).read_bytes() == first
    page.context.close()


def test_an_admin_adds_a_person_who_signs_in_and_the_audit_chain_verifies(
    server: MailServer, browser: Browser
) -> None:
    page = browser.new_page()
    sign_in(page, server, ALICE)
    page.wait_for_url("**/mail")
    page.get_by_role("link", name="Administration").click()
    page.wait_for_url("**/admin/people")
    shot(page, "admin-people")
    page.get_by_label("Address", exact=True).first.fill("olga@acme.example")
    page.get_by_label("Name", exact=True).fill("Olga <b>New</b>")
    page.get_by_label("First password (at least 10 characters)").fill("olga's first password")
    page.locator("#confirm-password-add").fill("not my password")
    page.get_by_role("button", name="Add").click()
    assert "authentication failed" in page.get_by_role("alert").inner_text().lower()
    page.get_by_label("Address", exact=True).first.fill("olga@acme.example")
    page.get_by_label("Name", exact=True).fill("Olga <b>New</b>")
    page.get_by_label("First password (at least 10 characters)").fill("olga's first password")
    page.locator("#confirm-password-add").fill(PASSWORD)
    page.get_by_role("button", name="Add").click()
    assert page.get_by_role("cell", name="olga@acme.example").is_visible()
    assert page.get_by_role("cell", name="Olga <b>New</b>").is_visible()  # as text

    olga = browser.new_page()
    sign_in(olga, server, "olga@acme.example", "olga's first password")
    olga.wait_for_url("**/mail")
    assert olga.get_by_role("link", name="Administration").count() == 0  # not an admin
    olga.goto(server.url + "/admin/people")
    assert olga.get_by_role("alert").is_visible()  # refused by the core
    olga.close()

    page.get_by_role("link", name="Audit log").click()
    page.get_by_role("button", name="Verify the whole chain").click()
    verdict = page.get_by_role("status").filter(has_text="Verified").inner_text()
    assert "Nothing was changed" in verdict
    assert page.get_by_role("cell", name="user.add").count() >= 1
    shot(page, "admin-audit")
    page.close()


def test_the_operator_console_manages_tenants_and_shows_no_content(
    server: MailServer, browser: Browser
) -> None:
    totp = pyotp.parse_uri((server.data / "operator-totp.txt").read_text())
    deliver(server, "Operator must never see this")
    page = browser.new_page()
    page.goto(server.url + "/operator/signin")
    page.get_by_label("Operator name").fill(OPERATOR)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Authenticator code").fill(totp.now())
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/operator")
    assert page.get_by_role("cell", name="acme", exact=True).is_visible()
    page.get_by_label("New tenant").fill("globex")
    page.get_by_label("Domains").fill("globex.example")
    page.get_by_role("button", name="Create").click()
    page.get_by_role("button", name="Suspend globex").click()
    page.get_by_role("button", name="Resume globex").wait_for()
    shot(page, "operator-console")
    content = page.content()
    assert "Operator must never see this" not in content
    assert not [email for email in (ALICE, BOB, MIA) if email in content]
    page.goto(server.url + "/mail")
    assert page.get_by_role("alert").is_visible()  # mail is not an operator's
    page.goto(server.url + "/admin/people")
    assert page.get_by_role("alert").is_visible()
    page.close()


def test_a_draft_to_nobody_comes_back_with_the_reason(server: MailServer, browser: Browser) -> None:
    page = browser.new_page()
    sign_in(page, server, ALICE)
    page.wait_for_url("**/mail")
    page.goto(server.url + "/mail/compose")
    page.get_by_label("To", exact=True).fill("nobody@acme.example")
    page.get_by_label("Subject").fill("Kept as typed")
    page.get_by_role("button", name="Send").click()
    assert "there is no nobody@acme.example here" in page.get_by_role("alert").inner_text()
    assert page.get_by_label("Subject").input_value() == "Kept as typed"
    page.close()


def test_pages_send_strict_headers_and_refuse_forms_without_the_token(
    server: MailServer,
) -> None:
    with httpx.Client(base_url=server.url) as client:
        signin = client.get("/signin")
        policy = signin.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy.split("style-src")[0]
        cookie = signin.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        token = client.cookies["enclave_csrf"]
        form = {"email": BOB, "password": PASSWORD}
        assert client.post("/signin", data=form).status_code == 403  # no token
        assert client.post("/signin", data=form | {"csrf": "forged"}).status_code == 403
        cross = client.post(
            "/signin", data=form | {"csrf": token}, headers={"sec-fetch-site": "cross-site"}
        )
        assert cross.status_code == 403
        signed = client.post("/signin", data=form | {"csrf": token})
        assert signed.status_code == 303 and signed.headers["location"] == "/mail"
        session = signed.headers["set-cookie"].lower()
        assert "httponly" in session and "samesite=strict" in session
        assert client.get("/mail").status_code == 200
        assert client.post("/signout", data={}).status_code == 403  # still signed in
        assert client.get("/mail").status_code == 200


def test_every_page_passes_an_accessibility_scan(server: MailServer, browser: Browser) -> None:
    """axe-core on each kind of page: no serious or critical violations."""
    deliver(server, "Accessible", html="<p>An <b>HTML</b> message</p>")
    context = browser.new_context(bypass_csp=True)  # axe is injected as a script
    page = context.new_page()
    axe = Axe()
    found: dict[str, list[str]] = {}

    def scan(name: str) -> None:
        results = axe.run(page)
        found[name] = [
            f"{v['id']} ({v['impact']}): {v['help']}"
            for v in results.response["violations"]
            if v["impact"] in ("serious", "critical")
        ]

    page.goto(server.url + "/signin")
    scan("signin")
    sign_in(page, server, BOB)
    page.wait_for_url("**/mail")
    scan("mail")
    page.get_by_role("link", name="Accessible").first.click()
    page.wait_for_url("**/mail/message?*")
    scan("message")
    page.goto(server.url + "/mail/compose")
    scan("compose")
    page.goto(server.url + "/account")
    scan("account")
    page.goto(server.url + "/files")
    scan("files")
    page.goto(server.url + "/signin")
    context.clear_cookies()
    sign_in(page, server, ALICE)
    page.goto(server.url + "/admin/people")
    scan("admin-people")
    page.goto(server.url + "/admin/audit")
    scan("admin-audit")
    page.goto(server.url + "/mail/message?folder=INBOX&uid=999999")
    scan("error")
    context.close()
    assert all(not problems for problems in found.values()), found
