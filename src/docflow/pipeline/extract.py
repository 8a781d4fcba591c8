"""Turn a validated file into plain text, page by page where the format has pages."""

from __future__ import annotations

import io
import re
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as SafeET
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_raw
from bs4 import BeautifulSoup, CData, Tag
from bs4.element import NavigableString, PageElement
from docx import Document as load_docx
from docx.document import Document as DocxDocument
from docx.table import Table
from docx.text.paragraph import Paragraph
from PIL import Image, UnidentifiedImageError

from docflow.pipeline import _source, ocr
from docflow.pipeline._text import decode_text, normalize_text
from docflow.pipeline.pdfguard import check_pdf_streams
from docflow.pipeline.types import Extraction, FileKind, ProgressCallback, StageError
from docflow.pipeline.validate import check_zip_safety

MAX_PDF_PAGES = 2_000
# A PDF larger than this is reopened after each share of its pages worth about this many bytes.
PDF_REOPEN_BYTES = 32 * 1024 * 1024
# Pages OCR'd per PDF; text-less pages past this are skipped and counted in the metadata.
MAX_OCR_PAGES = 100
OCR_DPI = 300
# Keeps a rendered page (and Tesseract's memory) bounded whatever size the page claims.
MAX_OCR_PIXELS_PER_SIDE = 6_000
MAX_IMAGE_PIXELS = 80_000_000
# Beyond this the text is cut (and the metadata says `text_truncated`); analysis and search gain
# nothing from more. A text file is read only this far.
MAX_TEXT_CHARS = 5_000_000
# HTML is mostly markup, and its parse tree takes some 25 times its size: an HTML file is read
# up to this many bytes per character of text allowed, and never beyond MAX_HTML_BYTES.
HTML_BYTES_PER_CHAR = 4
MAX_HTML_BYTES = 8 * 1024 * 1024
# A page with fewer non-space characters than this is treated as having no text layer.
MIN_PAGE_TEXT_CHARS = 3

NO_TEXT = "No text could be found in this document."
NO_TEXT_LAYER_NO_OCR = "This document has no text layer and OCR is unavailable on this server."
PDF_PASSWORD = "This PDF is password-protected."
PDF_DAMAGED = "This PDF is damaged or incomplete and cannot be read."


def extract_text(
    data: bytes | Path,
    kind: FileKind,
    on_progress: ProgressCallback,
    *,
    max_chars: int = MAX_TEXT_CHARS,
) -> Extraction:
    """Extract the text of a file whose kind `validate` decided.

    `on_progress(done, total)` is called after each PDF page, and once at the end otherwise.
    At most `max_chars` of text are kept; a text or HTML file is read only as far as needed.
    """
    truncated = False
    if kind is FileKind.PDF:
        extraction = _extract_pdf(data, on_progress)
    else:
        if kind in _PLAIN_KINDS:
            extraction, truncated = _extract_plain(data, max_chars)
        elif kind is FileKind.HTML:
            html_bytes = min(max_chars * HTML_BYTES_PER_CHAR, MAX_HTML_BYTES)
            extraction, truncated = _extract_html(data, html_bytes)
        else:
            extraction = _EXTRACTORS[kind](data)
        on_progress(1, 1)
    text = _tidy(extraction.text)
    if not text.strip():
        raise StageError(NO_TEXT)
    metadata = dict(extraction.metadata)
    if len(text) > max_chars:
        text, truncated = text[:max_chars], True
    if truncated:
        metadata["text_truncated"] = True
    return Extraction(text=text, page_count=extraction.page_count, metadata=metadata)


def _tidy(text: str) -> str:
    text = normalize_text(text)
    # Each regex only where it can match: a substring test is a C scan, a regex over a long
    # text is not (the two were a quarter of our cost over PDFium's on text-heavy PDFs).
    if " \n" in text or "\t\n" in text or "\u00a0\n" in text:
        text = re.sub(r"[ \t\u00a0]+\n", "\n", text)
    if "\n\n\n" in text:
        text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


# --- PDF -------------------------------------------------------------------------------------


def _extract_pdf(data: bytes | Path, on_progress: ProgressCallback) -> Extraction:
    check_pdf_streams(data)  # before PDFium, which aborts the process on a bomb
    document = _open_pdf(data)
    try:
        total = len(document)
        if total == 0:
            raise StageError(PDF_DAMAGED)
        if total > MAX_PDF_PAGES:
            raise StageError(
                f"This PDF has {total:,} pages; documents of up to {MAX_PDF_PAGES:,} pages "
                "can be processed."
            )
        metadata = _pdf_metadata(document)
        pages: list[str] = []
        without_text: list[int] = []
        ocr_done = 0
        ocr_skipped = 0
        tesseract = ocr.tesseract_path()
        # PDFium keeps what each page loaded (a scan's images) until the document is closed; a
        # large file is reopened every so many pages, so it never holds much more than a slice.
        size = _source.size(data)
        per_open = total if size <= PDF_REOPEN_BYTES else max(1, total * PDF_REOPEN_BYTES // size)
        for index in range(total):
            if index and index % per_open == 0:
                document.close()
                document = _open_pdf(data)
            text = _pdf_page_text(document, index)
            if _is_blank(text):
                if tesseract is not None and ocr_done < MAX_OCR_PAGES:
                    text = ocr.ocr_image(_render_page(document, index))
                    ocr_done += 1
                elif tesseract is not None:
                    ocr_skipped += 1
                if _is_blank(text):
                    without_text.append(index + 1)
            pages.append(text.strip())
            on_progress(index + 1, total)
    finally:
        document.close()
    if len(without_text) == total:
        raise StageError(NO_TEXT_LAYER_NO_OCR if tesseract is None else NO_TEXT)
    if ocr_done:
        metadata["ocr_pages"] = ocr_done
    if ocr_skipped:
        metadata["ocr_skipped_pages"] = ocr_skipped
    if without_text:
        metadata["pages_without_text"] = without_text
        if tesseract is None:
            metadata["ocr"] = "unavailable"
    return Extraction(text="\n\n".join(p for p in pages if p), page_count=total, metadata=metadata)


def _open_pdf(data: bytes | Path) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if getattr(exc, "err_code", None) == pdfium_raw.FPDF_ERR_PASSWORD:
            raise StageError(PDF_PASSWORD) from exc
        raise StageError(PDF_DAMAGED) from exc


def _is_blank(text: str) -> bool:
    # This runs on every page. A page with text mostly shows enough of it in its first few
    # dozen characters (a prefix never counts more than the whole); str.split, not a regex.
    if sum(len(part) for part in text[:64].split()) >= MIN_PAGE_TEXT_CHARS:
        return False
    return sum(len(part) for part in text.split()) < MIN_PAGE_TEXT_CHARS


def _pdf_page_text(document: pdfium.PdfDocument, index: int) -> str:
    try:
        page = document[index]
    except pdfium.PdfiumError as exc:
        raise StageError(PDF_DAMAGED) from exc
    try:
        textpage = page.get_textpage()
        try:
            return str(textpage.get_text_range())
        finally:
            textpage.close()
    finally:
        page.close()


def _render_page(document: pdfium.PdfDocument, index: int) -> bytes:
    page = document[index]
    try:
        width, height = page.get_size()
        scale = min(OCR_DPI / 72, MAX_OCR_PIXELS_PER_SIDE / max(width, height, 1.0))
        bitmap = page.render(scale=scale, grayscale=True)
        buffer = io.BytesIO()
        bitmap.to_pil().save(buffer, format="PNG")
        return buffer.getvalue()
    finally:
        page.close()


_PDF_METADATA_KEYS = {
    "Title": "title",
    "Author": "author",
    "Subject": "subject",
    "Producer": "producer",
    "Creator": "creator",
    "CreationDate": "created",
}


# Values PDF producers write when they know nothing (reportlab: "untitled", "anonymous").
_PLACEHOLDER_VALUES = frozenset({"untitled", "anonymous", "unspecified", "unknown", "none"})


def _pdf_metadata(document: pdfium.PdfDocument) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    try:
        raw: dict[str, str] = document.get_metadata_dict(skip_empty=True)
    except pdfium.PdfiumError:
        return metadata
    for key, name in _PDF_METADATA_KEYS.items():
        value = raw.get(key, "").strip()
        if value and value.lower() not in _PLACEHOLDER_VALUES:
            metadata[name] = _pdf_date(value) if key == "CreationDate" else value
    return metadata


_PDF_DATE = re.compile(
    r"^D:(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:(Z)|([+-])(\d{2})'?(\d{2})?'?)?"
)


def _pdf_date(value: str) -> str:
    """PDF dates look like D:20240115103000+01'00'; give ISO 8601, or the raw value."""
    match = _PDF_DATE.match(value)
    if not match:
        return value
    year, month, day, hour, minute, second, zulu, sign, tz_hour, tz_minute = match.groups()
    iso = f"{year}-{month or '01'}-{day or '01'}"
    if hour:
        iso += f"T{hour}:{minute or '00'}:{second or '00'}"
        if zulu:
            iso += "Z"
        elif sign:
            iso += f"{sign}{tz_hour}:{tz_minute or '00'}"
    return iso


# --- Word (DOCX) ----------------------------------------------------------------------------


def _extract_docx(data: bytes | Path) -> Extraction:
    try:
        with _source.opened(data) as fh, zipfile.ZipFile(fh) as archive:
            check_zip_safety(archive, _source.size(data))
            page_count = _docx_page_count(archive)
            document = load_docx(_without_binary_parts(archive))
    except StageError:
        raise
    except Exception as exc:  # python-docx raises many kinds of errors on broken files
        raise StageError("This Word document is damaged and cannot be read.") from exc
    lines: list[str] = []
    seen_parts: set[int] = set()
    for section in document.sections:
        for part in (section.first_page_header, section.even_page_header, section.header):
            if not part.is_linked_to_previous and id(part.part) not in seen_parts:
                seen_parts.add(id(part.part))
                lines.extend(_docx_blocks(part.iter_inner_content()))
    lines.extend(_docx_blocks(document.iter_inner_content()))
    seen_parts.clear()
    for section in document.sections:
        for footer in (section.first_page_footer, section.even_page_footer, section.footer):
            if not footer.is_linked_to_previous and id(footer.part) not in seen_parts:
                seen_parts.add(id(footer.part))
                lines.extend(_docx_blocks(footer.iter_inner_content()))
    return Extraction(
        text="\n".join(lines), page_count=page_count, metadata=_docx_metadata(document)
    )


# Binary parts (images, fonts, embedded files) this large are emptied before python-docx
# opens a package: it reads every part into memory, and text lives in the XML parts only.
_KEPT_BINARY_PART_BYTES = 64 * 1024


# Style sheets, which no text, table, header, footer or property read here depends on. python-
# docx parses every XML part it has a class for, and Word's style sheet (300+ KB) is most of a
# small document's extraction time; an empty one parses in microseconds. The copy Word keeps
# for older versions (stylesWithEffects) is never parsed, only carried.
_UNREAD_PARTS = {
    "word/styles.xml": (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:styles xmlns:w='
        b'"http://schemas.openxmlformats.org/wordprocessingml/2006/main"/>'
    ),
    "word/stylesWithEffects.xml": b"",
}


def _without_binary_parts(archive: zipfile.ZipFile) -> io.BytesIO:
    """A copy of the package with its large non-XML parts and its style sheets emptied,
    uncompressed, in memory."""
    slim = io.BytesIO()
    with zipfile.ZipFile(slim, "w", zipfile.ZIP_STORED) as out:
        for entry in archive.infolist():
            unread = _UNREAD_PARTS.get(entry.filename)
            if unread is not None:
                out.writestr(entry.filename, unread)
                continue
            binary = not entry.filename.lower().endswith((".xml", ".rels"))
            if binary and entry.file_size > _KEPT_BINARY_PART_BYTES:
                out.writestr(entry.filename, b"")
                continue
            with archive.open(entry) as src, out.open(entry.filename, "w") as dst:
                shutil.copyfileobj(src, dst, _source.CHUNK_BYTES)
    slim.seek(0)
    return slim


def _docx_blocks(blocks: Iterator[Paragraph | Table]) -> Iterator[str]:
    for block in blocks:
        if isinstance(block, Paragraph):
            yield block.text
        else:
            yield from _docx_table(block)


def _docx_table(table: Table) -> Iterator[str]:
    for row in table.rows:
        cells: list[str] = []
        for cell in row.cells:
            text = " ".join(line for line in _docx_blocks(cell.iter_inner_content()) if line)
            # Merged cells repeat the same cell object across the row.
            if not cells or text != cells[-1]:
                cells.append(text)
        yield "\t".join(cells)


def _docx_metadata(document: DocxDocument) -> dict[str, Any]:
    properties = document.core_properties
    metadata: dict[str, Any] = {}
    if properties.title:
        metadata["title"] = properties.title
    if properties.author:
        metadata["author"] = properties.author
    if properties.created is not None:
        metadata["created"] = properties.created.isoformat()
    return metadata


def _docx_page_count(archive: zipfile.ZipFile) -> int:
    """The page count Word saved in docProps/app.xml, or 1 when it did not."""
    try:
        root = SafeET.fromstring(archive.read("docProps/app.xml"))
    except (KeyError, SafeET.ParseError, ValueError):
        return 1
    for element in root.iter():
        if element.tag.endswith("}Pages") and (element.text or "").strip().isdigit():
            return max(1, int((element.text or "1").strip()))
    return 1


# --- OpenDocument text (ODT) ----------------------------------------------------------------

_TEXT_NS = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
_TABLE_NS = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
_OFFICE_NS = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
_META_NS = "urn:oasis:names:tc:opendocument:xmlns:meta:1.0"
_DC_NS = "http://purl.org/dc/elements/1.1/"


def _extract_odt(data: bytes | Path) -> Extraction:
    try:
        with _source.opened(data) as fh, zipfile.ZipFile(fh) as archive:
            check_zip_safety(archive, _source.size(data))
            content = SafeET.fromstring(archive.read("content.xml"))
            try:
                meta = SafeET.fromstring(archive.read("meta.xml"))
            except KeyError:
                meta = None
    except StageError:
        raise
    except Exception as exc:  # zipfile, expat and defusedxml errors alike
        raise StageError("This OpenDocument file is damaged and cannot be read.") from exc
    body = content.find(f"{{{_OFFICE_NS}}}body")
    lines = list(_odt_blocks(body if body is not None else content))
    metadata, page_count = _odt_metadata(meta)
    return Extraction(text="\n".join(lines), page_count=page_count, metadata=metadata)


def _odt_blocks(element: Any) -> Iterator[str]:
    for child in element:
        if child.tag in (f"{{{_TEXT_NS}}}p", f"{{{_TEXT_NS}}}h"):
            yield _odt_inline(child)
        elif child.tag == f"{{{_TABLE_NS}}}table-row":
            cells = [" ".join(_odt_blocks(cell)).strip() for cell in child]
            yield "\t".join(cells)
        else:
            yield from _odt_blocks(child)


def _odt_inline(element: Any) -> str:
    parts: list[str] = [element.text or ""]
    for child in element:
        tag = child.tag
        if tag == f"{{{_TEXT_NS}}}s":
            parts.append(" " * int(child.get(f"{{{_TEXT_NS}}}c", "1")))
        elif tag == f"{{{_TEXT_NS}}}tab":
            parts.append("\t")
        elif tag == f"{{{_TEXT_NS}}}line-break":
            parts.append("\n")
        elif tag != f"{{{_TEXT_NS}}}note":
            parts.append(_odt_inline(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _odt_metadata(meta: Any) -> tuple[dict[str, Any], int]:
    metadata: dict[str, Any] = {}
    page_count = 1
    if meta is None:
        return metadata, page_count
    for name, tag in (
        ("title", f"{{{_DC_NS}}}title"),
        ("author", f"{{{_DC_NS}}}creator"),
        ("author", f"{{{_META_NS}}}initial-creator"),
        ("created", f"{{{_META_NS}}}creation-date"),
    ):
        element = meta.find(f".//{tag}")
        if element is not None and (element.text or "").strip() and name not in metadata:
            metadata[name] = element.text.strip()
    stats = meta.find(f".//{{{_META_NS}}}document-statistic")
    if stats is not None and stats.get(f"{{{_META_NS}}}page-count", "").isdigit():
        page_count = max(1, int(stats.get(f"{{{_META_NS}}}page-count")))
    return metadata, page_count


# --- HTML -----------------------------------------------------------------------------------

_INVISIBLE_TAGS = [
    "script",
    "style",
    "template",
    "noscript",
    "iframe",
    "object",
    "embed",
    "svg",
    "canvas",
    "head",
    "meta",
    "link",
]
_BLOCK_TAGS = [
    "p",
    "div",
    "section",
    "article",
    "header",
    "footer",
    "main",
    "aside",
    "nav",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "li",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "tr",
    "table",
    "thead",
    "tbody",
    "blockquote",
    "pre",
    "figure",
    "figcaption",
    "form",
    "fieldset",
    "address",
    "hr",
    "caption",
]
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)


def _extract_html(data: bytes | Path, max_bytes: int) -> tuple[Extraction, bool]:
    """The visible text of (the first `max_bytes` of) a page, and whether the page was cut."""
    markup = _source.head(data, max_bytes + 1)
    truncated = len(markup) > max_bytes
    if truncated:
        # Cut before a tag, not inside one or inside a multi-byte character.
        cut = markup.rfind(b"<", 0, max_bytes)
        markup = markup[: cut if cut > 0 else max_bytes]
    soup = BeautifulSoup(markup, "lxml")
    metadata: dict[str, Any] = {}
    if soup.title is not None and soup.title.get_text(strip=True):
        metadata["title"] = soup.title.get_text(strip=True)
    for name in ("author", "description"):
        meta = soup.find("meta", attrs={"name": name})
        if isinstance(meta, Tag) and str(meta.get("content") or "").strip():
            metadata[name] = str(meta.get("content")).strip()
    for element in soup.find_all(_INVISIBLE_TAGS):
        element.decompose()
    hidden = soup.find_all(_is_hidden)
    for element in hidden:
        if not element.decomposed:
            element.decompose()
    lines = (re.sub(r"[^\S\n]+", " ", line).strip() for line in _broken_text(soup).split("\n"))
    text = "\n".join(line for line in lines if line)
    return Extraction(text=text, page_count=1, metadata=metadata), truncated


_BLOCKS = frozenset(_BLOCK_TAGS)
_CELLS = frozenset({"td", "th"})
_TEXT_STRINGS = (NavigableString, CData)  # what get_text() keeps: no comments, doctypes, ...


def _broken_text(root: Tag) -> str:
    """The text under `root`, with a line break for each <br> and around each block, and a tab
    after each table cell. One pass over the tree: inserting the breaks into the tree instead
    costs a scan of the siblings per insert, quadratic on a long flat page."""
    parts: list[str] = []
    stack: list[tuple[Iterator[PageElement], str]] = [(iter(root.contents), "")]
    while stack:
        children, after = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            parts.append(after)
        elif isinstance(child, Tag):
            if child.name == "br":
                parts.append("\n")
                continue
            block = child.name in _BLOCKS
            if block:
                parts.append("\n")
            closing = ("\n" if block else "") + ("\t" if child.name in _CELLS else "")
            stack.append((iter(child.contents), closing))
        elif type(child) in _TEXT_STRINGS:
            parts.append(str(child))
    return "".join(parts)


def _is_hidden(tag: Tag) -> bool:
    if tag.has_attr("hidden"):
        return True
    if str(tag.get("aria-hidden", "")).lower() == "true":
        return True
    if tag.name == "input" and str(tag.get("type", "")).lower() == "hidden":
        return True
    return bool(_HIDDEN_STYLE.search(str(tag.get("style", ""))))


# --- Plain text, Markdown, CSV --------------------------------------------------------------


_PLAIN_KINDS = frozenset({FileKind.TEXT, FileKind.MARKDOWN, FileKind.CSV})


def _extract_plain(data: bytes | Path, max_chars: int) -> tuple[Extraction, bool]:
    """The first `max_chars` of a text file, and whether it held more."""
    decoded = decode_text(data, max_chars)
    if decoded is None:
        raise StageError("The text encoding of this file could not be recognised.")
    text, truncated = decoded
    return Extraction(text=text, page_count=1), truncated


# --- Images ---------------------------------------------------------------------------------


def _extract_image(data: bytes | Path) -> Extraction:
    if ocr.tesseract_path() is None:
        raise StageError("OCR is unavailable on this server, so text cannot be read from images.")
    try:
        # Pillow reads only the header here; Tesseract reads a file on disk itself.
        with Image.open(data if isinstance(data, Path) else io.BytesIO(data)) as image:
            width, height = image.size
            frames = int(getattr(image, "n_frames", 1))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise StageError("This image is damaged and cannot be read.") from exc
    if width * height > MAX_IMAGE_PIXELS:
        raise StageError(f"This image is too large to read ({width:,} x {height:,} pixels).")
    text = ocr.ocr_image(data)
    return Extraction(
        text=text,
        page_count=max(frames, 1),
        metadata={"ocr": True, "width": width, "height": height},
    )


_EXTRACTORS = {
    FileKind.DOCX: _extract_docx,
    FileKind.ODT: _extract_odt,
    FileKind.IMAGE: _extract_image,
}
