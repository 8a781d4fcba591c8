"""Hostile files for the upload tests: entity bombs, nested-Flate PDFs, spoofed types."""

from __future__ import annotations

import io
import zipfile
import zlib

from tests.fixtures.files import make_docx, make_odt

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def laughs_dtd(root: str) -> str:
    """The classic billion-laughs DTD: &lol9; expands to 10^9 "lol"s (3 GB)."""
    entities = ['<!ENTITY lol "lol">']
    for i in range(1, 10):
        previous = f"&lol{i - 1};" if i > 1 else "&lol;"
        entities.append(f'<!ENTITY lol{i} "{previous * 10}">')
    return f"<!DOCTYPE {root} [{''.join(entities)}]>"


def _replace_entry(archive_bytes: bytes, name: str, content: bytes) -> bytes:
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(archive_bytes)) as source,
        zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target,
    ):
        for item in source.infolist():
            data = content if item.filename == name else source.read(item.filename)
            target.writestr(item, data)
    return out.getvalue()


def billion_laughs_docx() -> bytes:
    xml = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f"{laughs_dtd('w:document')}"
        f'<w:document xmlns:w="{W_NS}"><w:body>'
        "<w:p><w:r><w:t>Laughing matters &lol9;</w:t></w:r></w:p>"
        "</w:body></w:document>"
    )
    return _replace_entry(make_docx(["placeholder"]), "word/document.xml", xml.encode())


def billion_laughs_odt() -> bytes:
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"{laughs_dtd('office:document-content')}"
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
        ' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
        "<office:body><office:text><text:p>Laughing matters &lol9;</text:p></office:text>"
        "</office:body></office:document-content>"
    )
    return _replace_entry(make_odt(["placeholder"]), "content.xml", xml.encode())


def billion_laughs_html() -> bytes:
    return (
        f"{laughs_dtd('html')}<html><head><title>Laughs</title></head>"
        "<body><p>Laughing matters &lol9;</p></body></html>"
    ).encode()


def _deflate_stream(size: int, rounds: int) -> bytes:
    """`size` bytes of a repeated text operator, deflated `rounds` times over."""
    unit = b" "
    compressor = zlib.compressobj(9)
    chunks, block = [], unit * (1024 * 1024 // len(unit))
    written = 0
    while written < size:
        chunks.append(compressor.compress(block))
        written += len(block)
    chunks.append(compressor.flush())
    data = b"".join(chunks)
    for _ in range(rounds - 1):
        data = zlib.compress(data, 9)
    return data


def nested_flate_pdf(expanded_mb: int = 512, rounds: int = 3) -> bytes:
    """A two-page PDF: an ordinary first page, then a content stream compressed `rounds` times
    that inflates to `expanded_mb` MB (a decompression bomb a few KB in size)."""
    text = b"BT /F1 18 Tf 72 720 Td (Quarterly figures, nested flate edition) Tj ET"
    bomb = _deflate_stream(expanded_mb * 1024 * 1024, rounds)
    filters = " ".join(["/FlateDecode"] * rounds)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 5 0 R"
        b" /Resources << /Font << /F1 7 0 R >> >> >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 6 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(text) + text + b"\nendstream",
        b"<< /Length %d /Filter [%s] >>\nstream\n" % (len(bomb), filters.encode())
        + bomb
        + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()
