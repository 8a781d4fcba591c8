"""validate(): the kind comes from the bytes, and refusals read well."""

from __future__ import annotations

import io
import zipfile

import pytest

from docflow.pipeline.types import FileKind, StageError
from docflow.pipeline.validate import (
    MAX_ZIP_COMPRESSION_RATIO,
    MAX_ZIP_ENTRIES,
    MAX_ZIP_UNCOMPRESSED_BYTES,
    validate,
)
from tests.fixtures.files import (
    make_docx,
    make_html,
    make_jpeg_text,
    make_odt,
    make_pdf,
    make_png_text,
    make_unsafe_path_docx,
    make_zip_bomb_docx,
)


@pytest.mark.parametrize(
    ("data", "filename", "kind", "content_type"),
    [
        (make_pdf(["Hello"]), "a.pdf", FileKind.PDF, "application/pdf"),
        (
            make_docx(["Hello"]),
            "a.docx",
            FileKind.DOCX,
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        (make_odt(["Hello"]), "a.odt", FileKind.ODT, "application/vnd.oasis.opendocument.text"),
        (make_html(["Hello"]), "a.html", FileKind.HTML, "text/html"),
        (make_png_text("Hello"), "a.png", FileKind.IMAGE, "image/png"),
        (make_jpeg_text("Hello"), "scan.jpeg", FileKind.IMAGE, "image/jpeg"),
        (b"II*\x00" + b"\x00" * 100, "scan.tif", FileKind.IMAGE, "image/tiff"),
        (b"Just some notes.\nSecond line.", "notes.txt", FileKind.TEXT, "text/plain"),
        (b"# Title\n\nSome *markdown*.", "readme.md", FileKind.MARKDOWN, "text/markdown"),
        (b"name,amount\nAda,10\nBob,12\n", "table.csv", FileKind.CSV, "text/csv"),
    ],
)
def test_recognises_each_allowed_kind(
    data: bytes, filename: str, kind: FileKind, content_type: str
) -> None:
    result = validate(data, filename, None)
    assert result.kind is kind
    assert result.content_type == content_type


def test_content_decides_when_the_name_has_no_known_extension() -> None:
    assert validate(make_pdf(["Hello"]), "upload", None).kind is FileKind.PDF
    assert validate(make_docx(["Hello"]), "upload.bin", None).kind is FileKind.DOCX
    assert validate(make_html(["Hello"]), "page", None).kind is FileKind.HTML
    assert validate(b"a;b;c\n1;2;3\n4;5;6\n", "export", None).kind is FileKind.CSV
    assert validate(b"# Notes\n\n- one\n- two\n", "notes", None).kind is FileKind.MARKDOWN
    assert validate(b"Plain words only.", "notes", None).kind is FileKind.TEXT


def test_declared_type_breaks_ties_between_text_formats_only() -> None:
    assert validate(b"hello world", "upload", "text/markdown").kind is FileKind.MARKDOWN
    # The client's claim never overrides the bytes.
    assert validate(make_pdf(["Hi"]), "upload", "text/plain").kind is FileKind.PDF


def test_the_claimed_mime_type_is_not_echoed_back() -> None:
    result = validate(b"plain text", "notes.txt", "application/pdf")
    assert result.content_type == "text/plain"


def test_non_utf8_text_is_still_text() -> None:
    data = "Съешь же ещё этих мягких французских булок, да выпей чаю.".encode("cp1251")
    assert validate(data, "note.txt", None).kind is FileKind.TEXT
    data = "日本語のテキストファイルです。文字コードはシフトJISです。".encode("shift_jis")
    assert validate(data, "note.txt", None).kind is FileKind.TEXT
    assert validate("Arabic: مرحبا بالعالم".encode("utf-16"), "a.txt", None).kind is FileKind.TEXT


@pytest.mark.parametrize("data", [b"", b"   \n\t  "])
def test_empty_file_is_refused(data: bytes) -> None:
    with pytest.raises(StageError, match=r"^The file is empty\.$"):
        validate(data, "a.txt", None)


@pytest.mark.parametrize(
    ("data", "label"),
    [
        (b"GIF89a" + bytes(range(256)) * 4, "GIF image"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(range(256)) * 4, "legacy Microsoft Office"),
        (b"\x7fELF\x02\x01\x01" + bytes(range(256)) * 4, "executable program"),
        (bytes(range(256)) * 8, "unrecognised binary data"),
    ],
)
def test_unknown_binary_is_refused_by_name(data: bytes, label: str) -> None:
    with pytest.raises(StageError, match=r"^This file type is not supported: ") as caught:
        validate(data, "upload", None)
    assert label in caught.value.message


def test_plain_zip_is_not_a_document() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("photo.txt", "not a document")
    with pytest.raises(StageError, match=r"not supported: ZIP archive\."):
        validate(buffer.getvalue(), "archive.zip", None)


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (
            make_png_text("x"),
            "report.pdf",
            "The file's content (PNG image) does not match its name (.pdf).",
        ),
        (
            make_pdf(["x"]),
            "notes.txt",
            "The file's content (PDF document) does not match its name (.txt).",
        ),
        (
            make_docx(["x"]),
            "photo.jpg",
            "The file's content (Word document) does not match its name (.jpg).",
        ),
        (
            b"just text",
            "contract.docx",
            "The file's content (plain text) does not match its name (.docx).",
        ),
    ],
)
def test_content_contradicting_the_name_is_refused(
    data: bytes, filename: str, message: str
) -> None:
    with pytest.raises(StageError) as caught:
        validate(data, filename, None)
    assert caught.value.message == message


def test_zip_bomb_is_refused_before_parsing() -> None:
    with pytest.raises(StageError, match="zip bomb"):
        validate(make_zip_bomb_docx(), "innocent.docx", None)


def test_archive_that_expands_past_the_size_limit_is_refused() -> None:
    expanded_mb = MAX_ZIP_UNCOMPRESSED_BYTES // (1024 * 1024) + 1
    with pytest.raises(StageError, match=r"zip bomb: it would expand to [\d,]+ MB"):
        validate(make_zip_bomb_docx(expanded_mb), "big.docx", None)


def test_zip_bomb_fixture_really_exceeds_the_ratio() -> None:
    data = make_zip_bomb_docx()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        expanded = sum(entry.file_size for entry in archive.infolist())
    assert expanded > MAX_ZIP_COMPRESSION_RATIO * len(data)


def test_path_traversal_in_entry_names_is_refused() -> None:
    with pytest.raises(StageError, match=r"unsafe archive.*outside the archive"):
        validate(make_unsafe_path_docx(), "a.docx", None)


def test_too_many_entries_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
        for index in range(MAX_ZIP_ENTRIES + 1):
            archive.writestr(f"word/media/{index}.xml", "")
    with pytest.raises(StageError, match=r"unsafe archive: it has [\d,]+ entries"):
        validate(buffer.getvalue(), "a.docx", None)


def test_damaged_zip_is_refused() -> None:
    data = make_docx(["hello"])
    with pytest.raises(StageError, match="damaged"):
        validate(data[: len(data) // 2], "a.docx", None)
