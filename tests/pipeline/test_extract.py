# ruff: noqa: RUF001  # non-Latin scripts and typographic dashes are the point here
"""extract_text(): every kind, every refusal, and text in any script."""

from __future__ import annotations

import shutil

import pytest

from docflow.pipeline.extract import (
    NO_TEXT,
    NO_TEXT_LAYER_NO_OCR,
    PDF_DAMAGED,
    PDF_PASSWORD,
    _is_blank,
    extract_text,
)
from docflow.pipeline.types import Extraction, FileKind, StageError
from tests.fixtures.files import (
    make_docx,
    make_html,
    make_image_only_pdf,
    make_jpeg_text,
    make_odt,
    make_pdf,
    make_png_text,
    make_zip_bomb_docx,
    unicode_font_path,
)

requires_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract is not installed"
)
requires_unicode_font = pytest.mark.skipif(
    unicode_font_path() is None, reason="no Unicode TrueType font to draw non-Latin text"
)


class Progress:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, done: int, total: int) -> None:
        self.calls.append((done, total))


def extract(data: bytes, kind: FileKind) -> Extraction:
    return extract_text(data, kind, Progress())


@pytest.fixture
def no_tesseract(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")


# --- PDF -------------------------------------------------------------------------------------


def test_pdf_text_pages_and_progress() -> None:
    progress = Progress()
    data = make_pdf(
        ["First page about budgets.", "Second page about travel.", "Third."],
        title="Budget 2024",
        author="Ada Lovelace",
    )
    result = extract_text(data, FileKind.PDF, progress)
    assert result.page_count == 3
    assert progress.calls == [(1, 3), (2, 3), (3, 3)]
    assert "First page about budgets." in result.text
    assert result.text.index("budgets") < result.text.index("travel")
    assert result.metadata["title"] == "Budget 2024"
    assert result.metadata["author"] == "Ada Lovelace"
    assert "ReportLab" in result.metadata["producer"]
    assert result.metadata["created"].startswith("2000-01-01")


def test_pdf_placeholder_metadata_is_dropped() -> None:
    result = extract(make_pdf(["Text."]), FileKind.PDF)
    assert "title" not in result.metadata  # reportlab writes "untitled"
    assert "author" not in result.metadata  # and "anonymous"


def test_password_protected_pdf() -> None:
    with pytest.raises(StageError) as caught:
        extract(make_pdf(["Secret salary figures."], password="hunter2"), FileKind.PDF)
    assert caught.value.message == PDF_PASSWORD == "This PDF is password-protected."


@pytest.mark.parametrize("cut", [0.5, 0.2])
def test_truncated_pdf(cut: float) -> None:
    data = make_pdf(["Some text on a page. " * 30] * 4)
    with pytest.raises(StageError) as caught:
        extract(data[: int(len(data) * cut)], FileKind.PDF)
    assert caught.value.message == PDF_DAMAGED


def test_garbage_after_pdf_header() -> None:
    with pytest.raises(StageError, match="damaged or incomplete"):
        extract(b"%PDF-1.7\n" + bytes(range(256)) * 10, FileKind.PDF)


@requires_unicode_font
def test_pdf_with_cyrillic_and_greek_text() -> None:
    text = "Съешь же ещё этих мягких французских булок. Καλημέρα κόσμε."
    result = extract(make_pdf([text]), FileKind.PDF)
    assert "Съешь же ещё этих мягких французских булок." in result.text
    assert "Καλημέρα κόσμε." in result.text


@pytest.mark.usefixtures("no_tesseract")
def test_image_only_pdf_without_ocr_says_so() -> None:
    with pytest.raises(StageError) as caught:
        extract(make_image_only_pdf(), FileKind.PDF)
    assert caught.value.message == NO_TEXT_LAYER_NO_OCR
    assert caught.value.message == (
        "This document has no text layer and OCR is unavailable on this server."
    )


@pytest.mark.usefixtures("no_tesseract")
def test_mixed_pdf_without_ocr_keeps_the_text_it_has() -> None:
    from pypdfium2 import PdfDocument

    combined = PdfDocument(make_pdf(["Typed cover page with a text layer."]))
    scanned = PdfDocument(make_image_only_pdf("Scanned appendix"))
    combined.import_pages(scanned)
    import io

    buffer = io.BytesIO()
    combined.save(buffer)
    result = extract(buffer.getvalue(), FileKind.PDF)
    assert result.page_count == 2
    assert "Typed cover page" in result.text
    assert result.metadata["pages_without_text"] == [2]
    assert result.metadata["ocr"] == "unavailable"


@requires_tesseract
def test_image_only_pdf_is_read_by_ocr() -> None:
    progress = Progress()
    data = make_image_only_pdf("Scanned invoice total 120 EUR", pages=2)
    result = extract_text(data, FileKind.PDF, progress)
    assert "Scanned invoice total" in result.text
    assert result.metadata["ocr_pages"] == 2
    assert progress.calls == [(1, 2), (2, 2)]


@requires_tesseract
def test_blank_pdf_with_ocr_has_no_text() -> None:
    with pytest.raises(StageError) as caught:
        extract(make_pdf([" "]), FileKind.PDF)
    assert caught.value.message == NO_TEXT


def test_pdf_page_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    from docflow.pipeline import extract as module

    monkeypatch.setattr(module, "MAX_PDF_PAGES", 2)
    with pytest.raises(StageError, match="This PDF has 3 pages; documents of up to 2 pages"):
        extract(make_pdf(["a", "b", "c"]), FileKind.PDF)


# --- Office documents ------------------------------------------------------------------------


def test_docx_paragraphs_tables_header_footer_and_metadata() -> None:
    data = make_docx(
        ["Quarterly planning notes.", "Second paragraph."],
        table=[["Item", "Cost"], ["Laptop", "1,200 EUR"]],
        header="ACME Confidential",
        footer="Page footer text",
        title="Planning",
        author="Grace Hopper",
    )
    progress = Progress()
    result = extract_text(data, FileKind.DOCX, progress)
    lines = result.text.split("\n")
    assert lines[0] == "ACME Confidential"
    assert "Quarterly planning notes." in lines
    assert "Laptop\t1,200 EUR" in lines
    assert lines[-1] == "Page footer text"
    assert result.page_count == 1
    assert result.metadata["title"] == "Planning"
    assert result.metadata["author"] == "Grace Hopper"
    assert progress.calls == [(1, 1)]


def test_docx_with_non_latin_text() -> None:
    result = extract(make_docx(["مرحبا بالعالم", "你好，世界", "Привет, мир"]), FileKind.DOCX)
    assert result.text == "مرحبا بالعالم\n你好，世界\nПривет, мир"


def test_docx_zip_bomb_is_refused_even_without_validate() -> None:
    with pytest.raises(StageError, match="zip bomb"):
        extract(make_zip_bomb_docx(), FileKind.DOCX)


def test_damaged_docx() -> None:
    data = make_docx(["hello"])
    with pytest.raises(StageError, match="damaged"):
        extract(data[:200], FileKind.DOCX)


def test_odt_paragraphs_and_title() -> None:
    result = extract(
        make_odt(["Minutes of the meeting.", "Τα πρακτικά."], title="Minutes"), FileKind.ODT
    )
    assert result.text == "Minutes of the meeting.\nΤα πρακτικά."
    assert result.metadata["title"] == "Minutes"


def test_odt_entity_expansion_is_refused() -> None:
    import io
    import zipfile

    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
        ">&lol2;</office:document-content>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.text")
        archive.writestr("content.xml", bomb)
    with pytest.raises(StageError, match="damaged"):
        extract(buffer.getvalue(), FileKind.ODT)


# --- HTML ------------------------------------------------------------------------------------


def test_html_keeps_only_visible_text() -> None:
    data = make_html(
        ["Visible first paragraph.", "Visible second."],
        title="Page title",
        hidden_text="HIDDEN-MARKER",
    )
    result = extract(data, FileKind.HTML)
    assert result.text == "Visible first paragraph.\nVisible second."
    assert "HIDDEN-MARKER" not in result.text
    assert result.metadata["title"] == "Page title"


def test_html_inline_markup_does_not_split_words() -> None:
    data = b"<html><body><p>Total: <b>42</b> items<br>next line</p><div>Block</div></body></html>"
    assert extract(data, FileKind.HTML).text == "Total: 42 items\nnext line\nBlock"


def test_html_in_legacy_encoding() -> None:
    data = make_html(["Привет, это страница в кодировке windows-1251."], encoding="cp1251")
    assert "Привет, это страница" in extract(data, FileKind.HTML).text


# --- Plain text ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        (
            "Съешь же ещё этих мягких французских булок, да выпей же чаю. Это тестовый документ "
            "о квартальном отчёте и бюджете компании.",
            "cp1251",
        ),
        ("Съешь же ещё этих мягких французских булок, да выпей же чаю.", "koi8_r"),
        (
            "مرحبا بالعالم. هذا مستند تجريبي يحتوي على نص عربي طويل بما فيه الكفاية للكشف عن "
            "الترميز الصحيح.",
            "cp1256",
        ),
        (
            "日本語のテキストファイルです。このファイルはシフトJISで保存されています。"
            "会議の議事録と予算の資料を含みます。",
            "shift_jis",
        ),
        ("这是一个中文文本文件。它使用GB18030编码保存，包含会议记录和预算资料。", "gb18030"),
        ("Mixed: Привет, مرحبا, 你好, Καλημέρα.", "utf-16"),
        ("Café crème, naïve façade — déjà vu.", "utf-8-sig"),
    ],
)
def test_text_in_any_encoding(text: str, encoding: str) -> None:
    result = extract(text.encode(encoding), FileKind.TEXT)
    assert result.text == text
    assert result.page_count == 1


def test_markdown_and_csv_keep_their_content() -> None:
    assert extract(b"# Title\r\n\r\nBody text.", FileKind.MARKDOWN).text == "# Title\n\nBody text."
    assert extract(b"name,amount\nAda,10\n", FileKind.CSV).text == "name,amount\nAda,10"


def test_text_is_tidied_line_ends_and_blank_runs() -> None:
    data = "Total due \t\u00a0\nto pay\n\n\n\n\nthanks  \r\n".encode()
    assert extract(data, FileKind.TEXT).text == "Total due\nto pay\n\nthanks"
    assert extract(b"a  b\n\nc", FileKind.TEXT).text == "a  b\n\nc"  # nothing to tidy


@pytest.mark.parametrize(
    ("page", "blank"),
    [
        ("", True),
        (" \n\t" * 40, True),
        (" " * 100 + "ab", True),  # past the prefix looked at first, still too little
        (" " * 100 + "abc", False),
        ("Invoice 2041" + " " * 100, False),
        ("a b " + " " * 100 + "c", False),  # counted across the whole page
    ],
)
def test_a_pdf_page_is_blank_below_three_visible_characters(page: str, blank: bool) -> None:
    assert _is_blank(page) is blank


def test_text_without_words_has_no_text() -> None:
    with pytest.raises(StageError) as caught:
        extract(b"\n\n   \n", FileKind.TEXT)
    assert caught.value.message == NO_TEXT == "No text could be found in this document."


# --- Images ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_tesseract")
def test_image_without_ocr_says_so() -> None:
    with pytest.raises(StageError) as caught:
        extract(make_png_text("Hello"), FileKind.IMAGE)
    assert caught.value.message == (
        "OCR is unavailable on this server, so text cannot be read from images."
    )


@requires_tesseract
@pytest.mark.parametrize("make", [make_png_text, make_jpeg_text])
def test_image_is_read_by_ocr(make: object) -> None:
    data = make("The quick brown fox jumps over the lazy dog")  # type: ignore[operator]
    result = extract(data, FileKind.IMAGE)
    assert "quick brown fox" in result.text
    assert result.page_count == 1
    assert result.metadata["ocr"] is True


@requires_tesseract
def test_damaged_image() -> None:
    with pytest.raises(StageError, match="damaged"):
        extract(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, FileKind.IMAGE)


@requires_tesseract
def test_blank_image_has_no_text() -> None:
    with pytest.raises(StageError) as caught:
        extract(make_png_text(""), FileKind.IMAGE)
    assert caught.value.message == NO_TEXT
