"""Text extraction for the search index: real PDF, DOCX, ODT and HTML files built here, and
hostile ones (bombs, encryption, garbage) that must give "" quickly instead of raising."""

from __future__ import annotations

import io
import time
import zipfile
import zlib

import docx
import pytest
from pypdf import PdfWriter

from enclave.core.documents import extract
from enclave.core.documents.extract import text_of

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
ODT = "application/vnd.oasis.opendocument.text"


def pdf_bytes(*pages: str) -> bytes:
    """A minimal valid PDF, one Helvetica text line per page, with a correct xref table."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b""]  # pages dict filled in below
    kids = []
    font = 3
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for text in pages:
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        content = len(objects)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R"
            b" /Resources << /Font << /F1 %d 0 R >> >> >>" % (content, font)
        )
        kids.append(b"%d 0 R" % len(objects))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), len(kids))
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def encrypted(pdf: bytes, user_password: str) -> bytes:
    writer = PdfWriter(clone_from=io.BytesIO(pdf))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def docx_bytes() -> bytes:
    document = docx.Document()
    document.core_properties.title = "Procurement policy"
    document.add_heading("Quarterly procurement", level=1)
    document.add_paragraph("The tender for Zürich closes in March.")
    table = document.add_table(rows=1, cols=2)
    table.cell(0, 0).text = "supplier"
    table.cell(0, 1).text = "Ångström Optics"
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def odt_bytes(content_xml: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("mimetype", ODT, compress_type=zipfile.ZIP_STORED)
        archive.writestr("content.xml", content_xml, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


ODT_CONTENT = """<?xml version="1.0" encoding="UTF-8"?>
<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
    xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0">
  <office:body><office:text>
    <text:tracked-changes><text:changed-region><text:deletion>
      <text:p>removed draft wording</text:p>
    </text:deletion></text:changed-region></text:tracked-changes>
    <text:h>Minutes</text:h>
    <text:p>Budget<text:s text:c="3"/>approved <text:span>by the board</text:span>.</text:p>
    <text:p>Next<text:tab/>meeting<text:line-break/>in Kraków</text:p>
  </office:text></office:body>
</office:document-content>""".encode()


def test_pdf_text_from_every_page() -> None:
    text = text_of("report.pdf", "application/pdf", pdf_bytes("Quarterly figures", "Page two"))
    assert "Quarterly figures" in text and "Page two" in text
    # Recognised by its magic bytes even when misnamed and undeclared.
    assert "Quarterly" in text_of("blob", None, pdf_bytes("Quarterly figures"))


def test_pdf_encrypted_only_opens_without_a_user_password() -> None:
    pdf = pdf_bytes("Sealed contents")
    assert "Sealed contents" in text_of("a.pdf", "application/pdf", encrypted(pdf, ""))
    assert text_of("a.pdf", "application/pdf", encrypted(pdf, "secret")) == ""


def test_docx_paragraphs_tables_and_title() -> None:
    text = text_of("policy.docx", DOCX, docx_bytes())
    for expected in ("Procurement policy", "Quarterly procurement", "Zürich", "Ångström Optics"):
        assert expected in text
    assert "Zürich" in text_of("policy.docx", None, docx_bytes())  # by name alone


def test_odt_paragraphs_spaces_and_tabs_without_deleted_text() -> None:
    text = text_of("minutes.odt", ODT, odt_bytes(ODT_CONTENT))
    assert "Minutes" in text
    assert "Minutes\nBudget   approved by the board.\n" in text  # layout whitespace ignored
    assert "Next\tmeeting\nin Kraków" in text
    assert "removed draft" not in text


def test_html_drops_scripts_and_styles_and_decodes_entities() -> None:
    page = (
        b"<html><head><title>Intranet news</title><style>body{color:red}</style>"
        b"<script>var secret = 'tracking';</script></head>"
        b"<body><p>Caf&eacute; opens&nbsp;Monday</p><div>Second&#x20;block</div></body></html>"
    )
    text = text_of("news.html", "text/html", page)
    assert "Intranet news" in text and "Café opens\xa0Monday" in text
    assert "Second block" in text
    assert "tracking" not in text and "color" not in text
    latin = b'<meta charset="iso-8859-1"><p>Gr\xfc\xdfe</p>'
    assert "Grüße" in text_of("x.htm", None, latin)


@pytest.mark.parametrize(
    ("data", "content_type", "expected"),
    [
        ("naïve café".encode(), "text/plain", "naïve café"),
        ("naïve café".encode("latin-1"), "text/plain", "naïve café"),  # not UTF-8: latin-1
        ("naïve".encode("cp1252"), "text/plain; charset=windows-1252", "naïve"),
        ("naïve".encode("utf-16"), "text/plain", "naïve"),  # BOM
        (b"tab\tkept\x00\x07gone", "text/plain", "tab\tkept gone"),
        (b"line\r\nbreaks\rnormalised", "text/plain", "line\nbreaks\nnormalised"),
    ],
)
def test_plain_text_charsets(data: bytes, content_type: str, expected: str) -> None:
    assert text_of("notes.txt", content_type, data) == expected


def test_unknown_types() -> None:
    assert text_of("notes", None, b"plain words") == "plain words"  # clean UTF-8: text
    assert text_of("photo.png", "image/png", b"\x89PNG\r\n\x1a\n" + bytes(200)) == ""
    assert text_of("blob.bin", None, b"\xff\xfe\x00\x01binary") == ""


def test_input_and_output_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extract, "MAX_INPUT_BYTES", 1000)
    monkeypatch.setattr(extract, "MAX_TEXT_CHARS", 100)
    data = b"word " * 250 + b"LATE"
    text = text_of("long.txt", "text/plain", data)
    assert len(text) <= 100 and "LATE" not in text
    monkeypatch.setattr(extract, "MAX_TEXT_CHARS", 10_000)
    assert "LATE" not in text_of("long.txt", "text/plain", data)  # beyond the input bound


def zip_bomb(name_in_zip: str) -> bytes:
    """A small archive declaring one member larger than the extraction limit."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("mimetype", ODT)
        with archive.open(name_in_zip, "w", force_zip64=True) as bomb:
            chunk = bytes(1024 * 1024)
            for _ in range(extract.MAX_ZIP_MEMBER // len(chunk) + 1):
                bomb.write(chunk)
    return out.getvalue()


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
    xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0">
<text:p>&lol4;</text:p></office:document-content>"""


def docx_with_document_xml(xml: bytes) -> bytes:
    """A real DOCX whose main part is replaced."""
    source, out = zipfile.ZipFile(io.BytesIO(docx_bytes())), io.BytesIO()
    with source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = xml if info.filename == "word/document.xml" else source.read(info)
            target.writestr(info.filename, data)
    return out.getvalue()


def flate_bomb_pdf() -> bytes:
    """A page whose 200 MiB content stream deflates to a few hundred KiB."""
    body = zlib.compress(b"BT /F1 12 Tf 72 720 Td (x) Tj ET\n" + b" " * (200 << 20), 9)
    pdf = pdf_bytes("placeholder")
    start, end = pdf.index(b"<< /Length"), pdf.index(b"endstream") + len(b"endstream")
    stream = b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(body), body)
    return pdf[:start] + stream + pdf[end:]


def zipfile_without_content() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("mimetype", ODT)
    return out.getvalue()


EXTERNAL_ENTITY = (
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
)
LOOP_PDF = (
    b"%PDF-1.4\n1 0 obj << /Type /Pages /Kids [1 0 R] /Count 1 >> endobj\n"
    b"trailer << /Root << /Pages 1 0 R >> >>\n%%EOF"
)
HOSTILE = [
    ("bomb.docx", DOCX, lambda: zip_bomb("word/document.xml")),
    ("bomb.odt", ODT, lambda: zip_bomb("content.xml")),
    ("laughs.docx", DOCX, lambda: docx_with_document_xml(BILLION_LAUGHS)),
    ("flate-bomb.pdf", "application/pdf", flate_bomb_pdf),
    ("laughs.odt", ODT, lambda: odt_bytes(BILLION_LAUGHS)),
    ("external.odt", ODT, lambda: odt_bytes(EXTERNAL_ENTITY)),
    ("deep.odt", ODT, lambda: odt_bytes(b"<a>" * 50_000 + b"</a>" * 50_000)),
    ("notzip.docx", DOCX, lambda: b"PK\x03\x04 this is not really a zip"),
    ("empty.docx", DOCX, lambda: b""),
    ("nocontent.odt", ODT, zipfile_without_content),
    ("garbage.pdf", "application/pdf", lambda: b"%PDF-1.7\n" + bytes(range(256)) * 64),
    ("truncated.pdf", "application/pdf", lambda: pdf_bytes("cut short")[:150]),
    ("nested.pdf", "application/pdf", lambda: b"%PDF-1.4\n1 0 obj\n" + b"[" * 200_000),
    ("loop.pdf", "application/pdf", lambda: LOOP_PDF),
    ("script.html", "text/html", lambda: b"<p>shown</p><script>" + b"x" * 100_000),
    ("deep.html", "text/html", lambda: b"<div>" * 200_000 + b"deep"),
    ("comment.html", "text/html", lambda: b"<!--" + b"-" * 500_000),
]


@pytest.mark.parametrize(("name", "content_type", "make"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_files_give_nothing_quickly(name: str, content_type: str, make: object) -> None:
    assert callable(make)
    data = make()
    started = time.monotonic()
    text = text_of(name, content_type, data)
    assert time.monotonic() - started < 5
    assert "root:" not in text and "lol" * 100 not in text
    if name in ("bomb.docx", "bomb.odt", "notzip.docx", "empty.docx", "nocontent.odt"):
        assert text == ""
    if name == "script.html":
        assert text == "shown"
    assert len(text) <= extract.MAX_TEXT_CHARS
