"""Decide what an uploaded file really is, by its content, against an allowlist."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path, PurePosixPath

from docflow.pipeline import _source
from docflow.pipeline._text import detect_encoding
from docflow.pipeline.types import FileKind, StageError, Validation

# Bounds for ZIP-based documents (DOCX, ODT), checked before anything parses them. Python's
# zipfile never inflates an entry past its declared size, so checking declared sizes suffices.
MAX_ZIP_ENTRIES = 2_000
MAX_ZIP_UNCOMPRESSED_BYTES = 256 * 1024 * 1024
MAX_ZIP_COMPRESSION_RATIO = 100
# The ratio check only applies once the archive expands to something sizeable: tiny XML parts
# compress extremely well and are harmless.
ZIP_RATIO_MIN_BYTES = 10 * 1024 * 1024
# How much of a text file is inspected to decide its encoding and kind.
TEXT_SNIFF_BYTES = 256 * 1024

ODT_MIMETYPE = b"application/vnd.oasis.opendocument.text"

CONTENT_TYPES: dict[FileKind, str] = {
    FileKind.PDF: "application/pdf",
    FileKind.DOCX: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    FileKind.ODT: "application/vnd.oasis.opendocument.text",
    FileKind.HTML: "text/html",
    FileKind.TEXT: "text/plain",
    FileKind.MARKDOWN: "text/markdown",
    FileKind.CSV: "text/csv",
}

_IMAGE_MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png", "PNG image"),
    (b"\xff\xd8\xff", "image/jpeg", "JPEG image"),
    (b"II*\x00", "image/tiff", "TIFF image"),
    (b"MM\x00*", "image/tiff", "TIFF image"),
)

# Formats we recognise only to name them in the refusal.
_UNSUPPORTED_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "GIF image"),
    (b"GIF89a", "GIF image"),
    (b"BM", "BMP image"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "legacy Microsoft Office document (.doc/.xls/.ppt)"),
    (b"{\\rtf", "RTF document"),
    (b"\x1f\x8b", "gzip archive"),
    (b"Rar!\x1a\x07", "RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip archive"),
    (b"\x7fELF", "executable program"),
    (b"MZ", "executable program"),
    (b"ID3", "MP3 audio"),
    (b"OggS", "Ogg media"),
    (b"\x00\x00\x01\xba", "MPEG video"),
)

_KIND_LABELS: dict[FileKind, str] = {
    FileKind.PDF: "PDF document",
    FileKind.DOCX: "Word document",
    FileKind.ODT: "OpenDocument text",
    FileKind.HTML: "HTML page",
    FileKind.TEXT: "plain text",
    FileKind.MARKDOWN: "Markdown text",
    FileKind.CSV: "CSV table",
    FileKind.IMAGE: "image",
}

_TEXT_FAMILY = frozenset({FileKind.TEXT, FileKind.MARKDOWN, FileKind.CSV})

# What each known extension promises. Unknown extensions defer to the content.
EXTENSION_KINDS: dict[str, frozenset[FileKind]] = {
    ".pdf": frozenset({FileKind.PDF}),
    ".docx": frozenset({FileKind.DOCX}),
    ".odt": frozenset({FileKind.ODT}),
    ".png": frozenset({FileKind.IMAGE}),
    ".jpg": frozenset({FileKind.IMAGE}),
    ".jpeg": frozenset({FileKind.IMAGE}),
    ".tif": frozenset({FileKind.IMAGE}),
    ".tiff": frozenset({FileKind.IMAGE}),
    ".html": frozenset({FileKind.HTML}) | _TEXT_FAMILY,
    ".htm": frozenset({FileKind.HTML}) | _TEXT_FAMILY,
    ".xhtml": frozenset({FileKind.HTML}) | _TEXT_FAMILY,
    ".txt": _TEXT_FAMILY | {FileKind.HTML},
    ".text": _TEXT_FAMILY | {FileKind.HTML},
    ".md": _TEXT_FAMILY | {FileKind.HTML},
    ".markdown": _TEXT_FAMILY | {FileKind.HTML},
    ".csv": _TEXT_FAMILY,
    ".tsv": _TEXT_FAMILY,
}

_HTML_START = re.compile(
    rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)\b",
    re.IGNORECASE | re.DOTALL,
)
_HTML_TAGS = re.compile(
    rb"<(?:head|body|title|meta|div|p|table|script|style)\b[^>]*>", re.IGNORECASE
)
_MARKDOWN_HINTS = re.compile(
    r"^(?:#{1,6} \S|```|[-*] \S.*\n[-*] \S|\d+\. \S)|\[[^\]]+\]\([^)]+\)", re.MULTILINE
)


def validate(data: bytes | Path, filename: str, declared_type: str | None) -> Validation:
    """Decide the file's kind from its content; refuse empty, unknown, unsafe or misnamed files.

    Only what the decision needs is read: the head, the tail, a ZIP's directory.
    `declared_type` (the client's MIME claim) is only a tie-breaker between text formats.
    """
    head = _source.head(data, TEXT_SNIFF_BYTES)
    if not head.strip() and _is_blank(data):
        raise StageError("The file is empty.")
    extension = PurePosixPath(filename.replace("\\", "/")).suffix.lower()
    kind, content_type, label = _sniff(data, head, extension, declared_type)
    expected = EXTENSION_KINDS.get(extension)
    if expected is not None and kind not in expected:
        raise StageError(f"The file's content ({label}) does not match its name ({extension}).")
    return Validation(kind=kind, content_type=content_type)


def _is_blank(data: bytes | Path) -> bool:
    return all(not chunk.strip() for chunk in _source.chunks(data))


def _sniff(
    data: bytes | Path, head: bytes, extension: str, declared_type: str | None
) -> tuple[FileKind, str, str]:
    pdf_at = head.find(b"%PDF-", 0, 1024)
    # Readers accept a few junk bytes before the header; require the trailer then.
    if pdf_at == 0 or (pdf_at > 0 and b"%%EOF" in _source.tail(data, 2048)):
        return FileKind.PDF, CONTENT_TYPES[FileKind.PDF], _KIND_LABELS[FileKind.PDF]
    if head.startswith(b"PK\x03\x04"):
        kind = zip_document_kind(data)
        return kind, CONTENT_TYPES[kind], _KIND_LABELS[kind]
    for magic, content_type, label in _IMAGE_MAGIC:
        if head.startswith(magic):
            return FileKind.IMAGE, content_type, label
    if head.startswith(b"PK"):
        raise StageError("This file type is not supported: ZIP archive.")
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        raise StageError("This file type is not supported: WebP image.")
    encoding = detect_encoding(head)
    if encoding is None:
        for magic, label in _UNSUPPORTED_MAGIC:
            if head.startswith(magic):
                raise StageError(f"This file type is not supported: {label}.")
        raise StageError("This file type is not supported: unrecognised binary data.")
    text = head.decode(encoding, errors="replace")
    kind = _text_kind(text, extension, declared_type)
    return kind, CONTENT_TYPES[kind], _KIND_LABELS[kind]


def _text_kind(text: str, extension: str, declared_type: str | None) -> FileKind:
    if extension in (".html", ".htm", ".xhtml"):
        return FileKind.HTML
    if extension in (".md", ".markdown"):
        return FileKind.MARKDOWN
    if extension in (".csv", ".tsv"):
        return FileKind.CSV
    if extension in (".txt", ".text"):
        return FileKind.TEXT
    head = text[:4096].encode("utf-8", errors="replace")
    if _HTML_START.search(head) or len(_HTML_TAGS.findall(head)) >= 3:
        return FileKind.HTML
    declared = (declared_type or "").split(";")[0].strip().lower()
    if declared == "text/html":
        return FileKind.HTML
    if declared in ("text/markdown", "text/x-markdown") or _looks_like_markdown(text):
        return FileKind.MARKDOWN
    if declared in ("text/csv", "text/tab-separated-values") or _looks_like_csv(text):
        return FileKind.CSV
    return FileKind.TEXT


def _looks_like_markdown(text: str) -> bool:
    return len(_MARKDOWN_HINTS.findall(text[:8192])) >= 2


def _looks_like_csv(text: str) -> bool:
    lines = [line for line in text[:8192].splitlines()[:20] if line.strip()]
    if len(lines) < 2:
        return False
    try:
        dialect = csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|")
    except csv.Error:
        return False
    rows = list(csv.reader(io.StringIO("\n".join(lines)), dialect))
    widths = {len(row) for row in rows}
    return len(widths) == 1 and widths.pop() >= 2


def zip_document_kind(data: bytes | Path) -> FileKind:
    """Check a ZIP container for safety, then say whether it is a DOCX or an ODT.

    Reads the central directory (and the ODT `mimetype` entry), never the other entries.
    """
    try:
        with _source.opened(data) as fh, zipfile.ZipFile(fh) as archive:
            check_zip_safety(archive, _source.size(data))
            names = set(archive.namelist())
            if "word/document.xml" in names:
                return FileKind.DOCX
            if "mimetype" in names and "content.xml" in names:
                if archive.read("mimetype").strip() == ODT_MIMETYPE:
                    return FileKind.ODT
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as exc:
        raise StageError("This archive is damaged and cannot be opened.") from exc
    raise StageError("This file type is not supported: ZIP archive.")


def check_zip_safety(archive: zipfile.ZipFile, compressed_size: int) -> None:
    """Refuse archives that could exhaust memory or escape their folder when unpacked."""
    entries = archive.infolist()
    if len(entries) > MAX_ZIP_ENTRIES:
        raise StageError(
            f"This document is an unsafe archive: it has {len(entries):,} entries "
            f"(the limit is {MAX_ZIP_ENTRIES:,})."
        )
    total = 0
    for entry in entries:
        if _unsafe_name(entry.filename):
            raise StageError(
                "This document is an unsafe archive: it contains a file path that points "
                "outside the archive."
            )
        total += entry.file_size
    if total > MAX_ZIP_UNCOMPRESSED_BYTES:
        raise StageError(
            "This document looks like a zip bomb: it would expand to "
            f"{total / 1024 / 1024:,.0f} MB (the limit is "
            f"{MAX_ZIP_UNCOMPRESSED_BYTES // 1024 // 1024} MB)."
        )
    if total >= ZIP_RATIO_MIN_BYTES and total > MAX_ZIP_COMPRESSION_RATIO * max(compressed_size, 1):
        raise StageError(
            "This document looks like a zip bomb: it expands to "
            f"{total // max(compressed_size, 1):,} times its size."
        )


def _unsafe_name(name: str) -> bool:
    normalized = name.replace("\\", "/")
    if normalized.startswith("/") or re.match(r"^[A-Za-z]:", normalized):
        return True
    return ".." in normalized.split("/")
