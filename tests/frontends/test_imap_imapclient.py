"""Scenarios with IMAPClient, a widely used Python IMAP library: what its parsers make of
Enclave's replies (envelopes, body structures, modified UTF-7 names, ESEARCH-free SEARCH,
CONDSTORE modifiers) is what applications built on it will see.
"""

from __future__ import annotations

import base64
import email.header
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from imapclient.imapclient import ALL, ARCHIVE, DRAFTS, JUNK, SENT, TRASH
from imapclient.response_types import Address, BodyData, Envelope

import enclave
from tests.frontends.mailserver import MailServer
from tests.frontends.test_imap import PASSWORD, tls_context
from tests.frontends.webserver import cli, cli_chains, set_option

QUOTA_MIB = 20

MESSAGE = (
    b"From: =?utf-8?q?Zo=C3=AB_M=C3=BCller?= <zoe@remote.example>\r\n"
    b"To: Bob <bob@acme.example>, carol@acme.example\r\n"
    b'Cc: "Ops, Team" <ops@acme.example>\r\n'
    b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\r\n"
    b"Date: Sat, 28 Nov 2026 10:00:00 +0100\r\n"
    b"Message-ID: <c1@remote.example>\r\n"
    b"In-Reply-To: <c0@acme.example>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n'
    b"\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Gr=C3=BC=C3=9Fe aus K=C3=B6ln!\r\n"
    b"\r\n"
    b"--b1\r\n"
    b'Content-Type: application/pdf; name="r.pdf"\r\n'
    b'Content-Disposition: attachment; filename="r.pdf"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"JVBERi0xLjQK\r\n"
    b"--b1--\r\n"
)


def decoded(raw: bytes) -> str:
    """A header value with its RFC 2047 encoded words decoded, as a mail reader shows it."""
    return str(email.header.make_header(email.header.decode_header(raw.decode("ascii"))))


def plain(subject: str, body: str = "body") -> bytes:
    return f"From: a@remote.example\r\nSubject: {subject}\r\n\r\n{body}\r\n".encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailServer]:
    """alice and bob without a quota, carol with one (GETQUOTAROOT has numbers to show)."""
    data = tmp_path_factory.mktemp("imapclient") / "deployment"
    cli(data, "init")
    set_option(data, "auth", "failure_delay_ms", "50")
    cli(data, "tenant", "create", "acme", "--domain", "acme.example")
    add = ("user", "add")
    cli_chains(data, [
        [((*add, "alice@acme.example", "--password-stdin"), PASSWORD + "\n")],
        [((*add, "bob@acme.example", "--password-stdin"), PASSWORD + "\n")],
        [((*add, "carol@acme.example", "--quota", str(QUOTA_MIB), "--password-stdin"),
          PASSWORD + "\n")],
    ])  # fmt: skip
    running = MailServer(data).start()
    try:
        yield running
    finally:
        running.stop()


def connect(server: MailServer, user: str) -> IMAPClient:
    """Plain connection, STARTTLS with the deployment's certificate, LOGIN."""
    client = IMAPClient("localhost", port=server.imap_port, ssl=False, timeout=30)
    client.starttls(tls_context(server.data))
    client.login(f"{user}@acme.example", PASSWORD)
    client.normalise_times = False  # keep the time zones the server sent
    return client


@pytest.fixture
def alice(server: MailServer) -> Iterator[IMAPClient]:
    client = connect(server, "alice")
    yield client
    client.logout()


@pytest.fixture
def bob(server: MailServer) -> Iterator[IMAPClient]:
    client = connect(server, "bob")
    yield client
    client.logout()


def test_login_after_starttls_capabilities_namespace_and_id(server: MailServer) -> None:
    """Before TLS the library sees LOGINDISABLED and a refused login; after STARTTLS and
    LOGIN it has the post-login capabilities; NAMESPACE and ID parse."""
    client = IMAPClient("localhost", port=server.imap_port, ssl=False, timeout=30)
    try:
        assert client.has_capability("STARTTLS") and client.has_capability("LOGINDISABLED")
        with pytest.raises(IMAPClientError, match="PRIVACYREQUIRED"):
            client.login("alice@acme.example", PASSWORD)
        client.starttls(tls_context(server.data))
        assert client.has_capability("AUTH=PLAIN") and not client.has_capability("STARTTLS")
        with pytest.raises(IMAPClientError, match="AUTHENTICATIONFAILED"):
            client.login("alice@acme.example", "not the password")
        reply = client.login("alice@acme.example", PASSWORD)
        assert reply.startswith(b"[CAPABILITY IMAP4rev1 ") and reply.endswith(b"] signed in")
        caps = set(client.capabilities())
        assert {b"IDLE", b"UIDPLUS", b"MOVE", b"CONDSTORE", b"ESEARCH", b"SPECIAL-USE"} <= caps
        assert not caps & {b"STARTTLS", b"LOGINDISABLED", b"AUTH=PLAIN"}
        namespace = client.namespace()
        assert namespace.personal == (("", "/"),)
        assert namespace.other is None and namespace.shared is None
        [fields] = client.id_()
        assert dict(zip(fields[::2], fields[1::2], strict=True)) == {
            b"name": b"Enclave",
            b"version": enclave.__version__.encode(),
        }
    finally:
        client.logout()


def test_folders_special_use_and_non_ascii_names(alice: IMAPClient) -> None:
    """SPECIAL-USE attributes in LIST reach find_special_folder; XLIST (Gmail's forerunner)
    is not advertised, so the library does not send it; non-ASCII names survive create,
    rename and delete through IMAPClient's modified UTF-7 (RFC 3501 5.1.3)."""
    folders = {name: flags for flags, delimiter, name in alice.list_folders()}
    assert {"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"} <= set(folders)
    assert not {"Entwürfe", "日本語", "Ελληνικά & more"} & set(folders)
    assert folders["Sent"] == (b"\\HasNoChildren", b"\\Sent")
    assert folders["INBOX"] == (b"\\HasNoChildren",)
    assert {delimiter for _, delimiter, _ in alice.list_folders()} == {b"/"}
    for flag, name in [(SENT, "Sent"), (DRAFTS, "Drafts"), (TRASH, "Trash"), (JUNK, "Junk"),
                       (ARCHIVE, "Archive")]:  # fmt: skip
        assert alice.find_special_folder(flag) == name
    assert alice.find_special_folder(ALL) is None
    with pytest.raises(IMAPClientError, match="does not support XLIST"):  # not advertised
        alice.xlist_folders()
    assert alice.noop()[0] == b"NOOP completed"

    alice.create_folder("Entwürfe")
    alice.create_folder("Entwürfe/Übersicht")
    alice.create_folder("日本語")
    listed = alice.list_folders()
    assert ((b"\\HasChildren",), b"/", "Entwürfe") in listed
    assert ((b"\\HasNoChildren",), b"/", "Entwürfe/Übersicht") in listed
    assert alice.list_folders("Entwürfe/", "%") == [
        ((b"\\HasNoChildren",), b"/", "Entwürfe/Übersicht")
    ]
    assert alice.folder_exists("日本語") and not alice.folder_exists("日本")
    with pytest.raises(IMAPClientError, match="ALREADYEXISTS"):
        alice.create_folder("日本語")
    alice.rename_folder("日本語", "Ελληνικά & more")
    assert alice.folder_exists("Ελληνικά & more") and not alice.folder_exists("日本語")
    alice.append("Ελληνικά & more", plain("grc"))
    assert alice.select_folder("Ελληνικά & more")[b"EXISTS"] == 1
    assert alice.folder_status("Ελληνικά & more", ["MESSAGES", "UIDNEXT"]) == {
        b"MESSAGES": 1,
        b"UIDNEXT": 2,
    }
    alice.unselect_folder()
    # CREATE subscribes nothing (RFC 3501 6.3.6: subscriptions are the client's choice).
    assert "Entwürfe" not in {name for _, _, name in alice.list_sub_folders()}
    alice.subscribe_folder("Entwürfe")
    alice.subscribe_folder("Entwürfe/Übersicht")
    alice.unsubscribe_folder("Entwürfe/Übersicht")
    subscribed = {name for _, _, name in alice.list_sub_folders()}
    assert "Entwürfe" in subscribed and "Entwürfe/Übersicht" not in subscribed
    for name in ("Ελληνικά & more", "Entwürfe/Übersicht", "Entwürfe"):
        alice.delete_folder(name)
    assert {name for _, _, name in alice.list_folders()} == set(folders)
    with pytest.raises(IMAPClientError, match="NONEXISTENT"):
        alice.select_folder("Entwürfe")


def test_append_and_fetch_envelope_bodystructure_and_bytes(bob: IMAPClient) -> None:
    """APPEND with flags and a date; FETCH parsed by IMAPClient: an Envelope whose fields
    decode to the original header values, a BodyData tree, and RFC822 byte-identical."""
    bob.create_folder("Fetched")
    when = datetime(2026, 11, 5, 9, 30, tzinfo=UTC)
    reply = bob.append("Fetched", MESSAGE, flags=[b"\\Flagged", b"$Work"], msg_time=when)
    assert reply.startswith(b"[APPENDUID ") and reply.endswith(b" 1] APPEND completed")
    bob.append("Fetched", plain("second"))
    selected = bob.select_folder("Fetched")
    assert selected[b"EXISTS"] == 2 and selected[b"UIDNEXT"] == 3
    assert selected[b"UIDVALIDITY"] == int(reply.split()[1]) and selected[b"READ-WRITE"]
    assert selected[b"PERMANENTFLAGS"][-1] == b"\\*"

    items = ["ENVELOPE", "BODYSTRUCTURE", "RFC822.SIZE", "INTERNALDATE", "FLAGS"]
    fetched = bob.fetch([1], items)[1]
    assert fetched[b"SEQ"] == 1 and fetched[b"RFC822.SIZE"] == len(MESSAGE)
    # The first session to select the mailbox is the one told the messages are \\Recent.
    assert set(fetched[b"FLAGS"]) == {b"\\Flagged", b"$Work", b"\\Recent"}
    internal = fetched[b"INTERNALDATE"]
    assert internal.astimezone(UTC) == when

    envelope = fetched[b"ENVELOPE"]
    assert isinstance(envelope, Envelope)
    assert envelope.date == datetime.fromisoformat("2026-11-28T10:00:00+01:00")
    assert decoded(envelope.subject) == "Grüße aus Köln"
    assert envelope.message_id == b"<c1@remote.example>"
    assert envelope.in_reply_to == b"<c0@acme.example>"
    sender = Address(b"=?utf-8?q?Zo=C3=AB_M=C3=BCller?=", None, b"zoe", b"remote.example")
    assert envelope.from_ == envelope.sender == envelope.reply_to == (sender,)
    assert envelope.to is not None and [str(a) for a in envelope.to] == [
        "Bob <bob@acme.example>",
        "carol@acme.example",
    ]
    assert envelope.cc is not None and str(envelope.cc[0]) == '"Ops, Team" <ops@acme.example>'
    assert envelope.bcc is None
    assert decoded(sender.name) == "Zoë Müller"

    structure = fetched[b"BODYSTRUCTURE"]
    assert isinstance(structure, BodyData) and structure.is_multipart
    parts, subtype = structure[0], structure[1]
    assert subtype == b"MIXED" and structure[2] == (b"BOUNDARY", b"b1")
    text, pdf = parts
    assert text[:7] == (b"TEXT", b"PLAIN", (b"CHARSET", b"utf-8"), None, None,
                        b"QUOTED-PRINTABLE", 32)  # fmt: skip
    assert text[7] == 1  # lines
    assert pdf[:7] == (b"APPLICATION", b"PDF", (b"NAME", b"r.pdf"), None, None, b"BASE64", 12)
    assert pdf[8] == (b"ATTACHMENT", (b"FILENAME", b"r.pdf"))

    wanted = ["RFC822", "BODY.PEEK[1]", "BODY.PEEK[2]", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]",
              "BODY.PEEK[]<0.4>"]  # fmt: skip
    sections = bob.fetch([1], wanted)[1]
    assert sections[b"RFC822"] == MESSAGE
    assert sections[b"BODY[1]"] == b"Gr=C3=BC=C3=9Fe aus K=C3=B6ln!\r\n"
    assert sections[b"BODY[HEADER.FIELDS (SUBJECT)]"] == (
        b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\r\n\r\n"
    )
    assert sections[b"BODY[]<0>"] == b"From"
    assert base64.b64decode(sections[b"BODY[2]"]) == b"%PDF-1.4\n"
    # RFC822 is not a peek: the message is now \Seen.
    assert b"\\Seen" in bob.get_flags([1])[1]
    assert bob.fetch([2], ["BODY[TEXT]"])[2][b"BODY[TEXT]"] == b"body\r\n"


def test_flags_set_add_remove_get(bob: IMAPClient) -> None:
    """Each flag method sends its STORE form and reads the new flags back from the
    untagged FETCH replies; keywords are kept as sent."""
    bob.create_folder("Flagged")
    for n in range(3):
        bob.append("Flagged", plain(f"f{n}"))
    bob.select_folder("Flagged")
    r = b"\\Recent"  # this session selected first: the messages are recent for it alone
    assert bob.get_flags([1, 2, 3]) == {1: (r,), 2: (r,), 3: (r,)}
    assert bob.add_flags([1, 2], [b"\\Seen", b"$Label1"]) == {
        1: (b"$Label1", r, b"\\Seen"),
        2: (b"$Label1", r, b"\\Seen"),
    }
    assert bob.remove_flags([2], [b"$Label1"]) == {2: (r, b"\\Seen")}
    assert bob.set_flags([3], [b"\\Answered", b"\\Flagged"]) == {
        3: (b"\\Answered", b"\\Flagged", r)
    }
    assert bob.add_flags([1], [b"\\Draft"], silent=True) is None
    assert bob.get_flags([1, 2, 3]) == {
        1: (b"$Label1", b"\\Draft", r, b"\\Seen"),
        2: (r, b"\\Seen"),
        3: (b"\\Answered", b"\\Flagged", r),
    }
    assert bob.set_flags([1, 2, 3], []) == {1: (r,), 2: (r,), 3: (r,)}
    assert bob.get_flags([1, 2, 3]) == {1: (r,), 2: (r,), 3: (r,)}
    bob.select_folder("Flagged", readonly=True)
    with pytest.raises(IMAPClientError, match="READ-ONLY"):
        bob.add_flags([1], [b"\\Seen"])


def test_search_criteria_including_utf8(alice: IMAPClient) -> None:
    """IMAPClient's criteria lists (nested, dates, numbers, non-ASCII as a literal with
    CHARSET UTF-8) select the expected UIDs."""
    alice.create_folder("Searching")
    alice.append("Searching", MESSAGE)
    alice.append("Searching", plain("invoice 42", "please pay"), flags=[b"\\Seen"])
    alice.append("Searching", plain("Re: invoice 42", "paid"), flags=[b"\\Flagged"])
    alice.select_folder("Searching")
    assert alice.search() == [1, 2, 3]
    assert alice.search(["UNSEEN"]) == [1, 3]
    assert alice.search(["SUBJECT", "invoice"]) == [2, 3]
    assert alice.search(["FROM", "zoe", "LARGER", 100]) == [1]
    assert alice.search(["OR", "FLAGGED", "SEEN"]) == [2, 3]
    assert alice.search(["NOT", ["SUBJECT", "invoice", "SEEN"]]) == [1, 3]
    assert alice.search(["SENTON", datetime(2026, 11, 28).date()]) == [1]
    assert alice.search(["BODY", "pay"]) == [2]
    assert alice.search(["SUBJECT", "Grüße"], charset="UTF-8") == [1]
    assert alice.search(["TEXT", "Köln"], charset="UTF-8") == [1]
    assert alice.search(["SUBJECT", "Grüße", "SEEN"], charset="UTF-8") == []
    with pytest.raises(IMAPClientError, match="BADCHARSET"):
        alice.search(["SUBJECT", "x"], charset="KOI8-R")
    found = alice.search(["MODSEQ", 1])
    assert found == [1, 2, 3] and found.modseq is not None and found.modseq >= 3


def test_copy_move_expunge_and_uid_expunge(bob: IMAPClient) -> None:
    """COPY and MOVE report COPYUID; EXPUNGE returns the untagged EXPUNGE numbers, UID
    EXPUNGE removes only the named deleted messages (RFC 4315)."""
    bob.create_folder("From")
    bob.create_folder("To")
    for n in range(5):
        bob.append("From", plain(f"m{n}"))
    to_validity = bob.folder_status("To", ["UIDVALIDITY"])[b"UIDVALIDITY"]
    bob.select_folder("From")
    bob.copy([1, 2], "To")  # IMAPClient drops the response code; imaplib below keeps it
    assert bob._imap.response("COPYUID") == ("COPYUID", [b"%d 1:2 1:2" % to_validity])
    bob.move([3], "To")
    assert bob._imap.response("COPYUID") == ("COPYUID", [b"%d 3 3" % to_validity])
    assert bob.folder_status("To", ["MESSAGES"]) == {b"MESSAGES": 3}
    assert bob.search() == [1, 2, 4, 5]
    with pytest.raises(IMAPClientError, match="TRYCREATE"):
        bob.copy([1], "Nowhere")

    bob.add_flags([1, 2, 4], [b"\\Deleted"], silent=True)
    bob.uid_expunge([2])
    assert bob.search() == [1, 4, 5]
    bob.expunge([4])  # with messages: UID EXPUNGE again
    assert bob.search() == [1, 5]
    text, responses = bob.expunge()
    assert text == b"EXPUNGE completed" and responses == [(1, b"EXPUNGE")]
    assert bob.search() == [5]
    assert (
        bob.fetch([5], ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])[5][b"BODY[HEADER.FIELDS (SUBJECT)]"]
        == b"Subject: m4\r\n\r\n"
    )


def test_idle_check_sees_another_clients_append_within_a_second(
    server: MailServer, alice: IMAPClient
) -> None:
    """One client IDLEs on INBOX while another appends: the EXISTS arrives within a second,
    then flag changes by the other client arrive as FETCH with the new flags."""
    other = connect(server, "alice")
    try:
        alice.select_folder("INBOX")
        exists = alice.folder_status("INBOX", ["MESSAGES"])[b"MESSAGES"]
        alice.idle()
        assert alice.idle_check(timeout=0.2) == []
        appended: list[float] = []

        def append() -> None:
            appended.append(time.monotonic())
            other.append("INBOX", plain("wake up"))

        threading.Timer(0.2, append).start()
        responses = alice.idle_check(timeout=3)
        woke = time.monotonic()
        if len(responses) == 1:  # the RECENT that follows may come in a read of its own
            responses += alice.idle_check(timeout=1)
        assert responses[0] == (exists + 1, b"EXISTS") and responses[1][1] == b"RECENT"
        assert len(responses) == 2
        assert woke - appended[0] < 1.0
        other.select_folder("INBOX")
        other.add_flags([exists + 1], [b"\\Flagged"])
        responses = alice.idle_check(timeout=3)
        assert responses == [
            (exists + 1, b"FETCH", (b"UID", exists + 1, b"FLAGS", (b"\\Flagged", b"\\Recent")))
        ]
        text, rest = alice.idle_done()
        assert text == b"IDLE terminated" and rest == []
        assert alice.search(["FLAGGED"]) == [exists + 1]
    finally:
        other.logout()


def test_condstore_readonly_select_and_changedsince(server: MailServer, bob: IMAPClient) -> None:
    """EXAMINE returns HIGHESTMODSEQ; FETCH with the CHANGEDSINCE modifier returns only what
    another client changed after it, with MODSEQ values above it (RFC 7162)."""
    bob.create_folder("Synced")
    for n in range(4):
        bob.append("Synced", plain(f"s{n}"))
    assert bob.enable("CONDSTORE") == [b"CONDSTORE"]
    selected = bob.select_folder("Synced", readonly=True)
    assert b"READ-WRITE" not in selected and selected[b"PERMANENTFLAGS"] == ()
    base = selected[b"HIGHESTMODSEQ"]
    everything = bob.fetch([1, 2, 3, 4], ["FLAGS"])
    assert set(everything) == {1, 2, 3, 4}
    assert all(0 < item[b"MODSEQ"][0] <= base for item in everything.values())

    other = connect(server, "bob")
    try:
        other.select_folder("Synced")
        other.add_flags([2, 4], [b"\\Seen"])
    finally:
        other.logout()
    changed = bob.fetch([1, 2, 3, 4], ["FLAGS"], modifiers=[f"CHANGEDSINCE {base}"])
    assert set(changed) == {2, 4}
    # EXAMINE shows \\Recent without taking it (the other session selected after it).
    assert all(item[b"FLAGS"] == (b"\\Recent", b"\\Seen") for item in changed.values())
    assert all(item[b"MODSEQ"][0] > base for item in changed.values())
    newest = max(item[b"MODSEQ"][0] for item in changed.values())
    assert bob.fetch([1, 2, 3, 4], ["FLAGS"], modifiers=[f"CHANGEDSINCE {newest}"]) == {}
    assert bob.folder_status("Synced", ["HIGHESTMODSEQ"])[b"HIGHESTMODSEQ"] == newest


def test_quota_root_and_quota(server: MailServer) -> None:
    """GETQUOTAROOT names the user's single root ""; STORAGE usage is in KiB, rounded up,
    and grows with an APPEND (RFC 2087)."""
    carol = connect(server, "carol")
    try:
        roots, quotas = carol.get_quota_root("INBOX")
        assert roots.mailbox == "INBOX" and roots.quota_roots == [""]
        assert len(quotas) == 1
        before = quotas[0]
        assert (before.quota_root, before.resource) == ("", "STORAGE")
        assert before.limit == QUOTA_MIB * 1024
        carol.append("INBOX", plain("big", "x" * 50_000))
        after = carol.get_quota("INBOX")[0]
        assert after.usage - before.usage in (49, 50)
        assert after.limit == QUOTA_MIB * 1024
    finally:
        carol.logout()
    bob = connect(server, "bob")
    try:
        roots, quotas = bob.get_quota_root("Sent")
        assert roots.quota_roots == [""] and quotas == []  # no limit, no resources
    finally:
        bob.logout()


def test_imapclient_over_implicit_tls_with_the_newer_extensions(server: MailServer) -> None:
    """The IMAPS port (RFC 8314, usually 993) from IMAPClient: login at once, then ENABLE,
    SORT, THREAD and IDLE woken by a second IMAPS client."""

    def imaps() -> IMAPClient:
        client = IMAPClient(
            "localhost", port=server.imaps_port, ssl=True,
            ssl_context=tls_context(server.data), timeout=30,
        )  # fmt: skip
        client.login("alice@acme.example", PASSWORD)
        return client

    first, second = imaps(), imaps()
    try:
        caps = set(first.capabilities())
        assert {b"IMAP4REV2", b"QRESYNC", b"SORT", b"THREAD=REFERENCES", b"NOTIFY"} <= caps
        assert b"STARTTLS" not in caps
        assert first.enable("QRESYNC") == [b"QRESYNC"]
        first.create_folder("OverTLS")
        for subject in ("b", "a", "Re: a"):
            first.append("OverTLS", plain(subject))
        first.select_folder("OverTLS")
        assert first.sort(["SUBJECT"]) == [2, 3, 1]
        assert first.thread("REFERENCES") == ((1,), (2, 3))  # "Re: a" joins "a" by subject
        first.idle()
        second.append("OverTLS", plain("while idle"))
        responses = first.idle_check(timeout=5)
        first.idle_done()
        assert (4, b"EXISTS") in responses
    finally:
        first.logout()
        second.logout()
