"""The stages read a file on disk as they read bytes (the worker hands them a path), and long
text is cut at a limit that the document's metadata owns up to."""

from __future__ import annotations

import gc
import io
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from docflow.pipeline.extract import extract_text
from docflow.pipeline.types import Extraction, FileKind, StageError
from docflow.pipeline.validate import TEXT_SNIFF_BYTES, validate
from docflow.worker.stages import Original
from tests.fixtures.files import (
    make_docx,
    make_html,
    make_odt,
    make_pdf,
    make_png_text,
    make_zip_bomb_docx,
)


def on_disk(tmp_path: Path, data: bytes, name: str = "upload.bin") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def extract(data: bytes | Path, kind: FileKind, max_chars: int | None = None) -> Extraction:
    calls: list[tuple[int, int]] = []
    if max_chars is None:
        return extract_text(data, kind, lambda done, total: calls.append((done, total)))
    return extract_text(
        data, kind, lambda done, total: calls.append((done, total)), max_chars=max_chars
    )


@pytest.mark.parametrize(
    ("data", "filename", "kind"),
    [
        (make_pdf(["Hello from a PDF."]), "a.pdf", FileKind.PDF),
        (make_docx(["Hello from Word."]), "a.docx", FileKind.DOCX),
        (make_odt(["Hello from Writer."]), "a.odt", FileKind.ODT),
        (make_html(["Hello from the web."]), "page", FileKind.HTML),
        (b"Just some notes.\nSecond line.", "notes.txt", FileKind.TEXT),
        (b"# Notes\n\n- one\n- two\n", "notes", FileKind.MARKDOWN),
        (b"name,amount\nAda,10\nBob,12\n", "table.csv", FileKind.CSV),
    ],
)
def test_validate_a_file_on_disk(
    tmp_path: Path, data: bytes, filename: str, kind: FileKind
) -> None:
    assert validate(on_disk(tmp_path, data), filename, None).kind is kind


@pytest.mark.parametrize("data", [b"", b" \n\t" * 1000])
def test_an_empty_file_on_disk_is_refused(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(StageError, match="empty"):
        validate(on_disk(tmp_path, data), "a.txt", None)


def test_text_after_a_long_blank_start_is_not_empty(tmp_path: Path) -> None:
    # The sniffed head is all blanks; the rest of the file decides that it is not empty.
    data = b" " * (TEXT_SNIFF_BYTES * 2) + b"words at last"
    assert validate(on_disk(tmp_path, data), "a.txt", None).kind is FileKind.TEXT


def test_a_zip_bomb_on_disk_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StageError, match="zip bomb"):
        validate(on_disk(tmp_path, make_zip_bomb_docx()), "a.docx", None)
    with pytest.raises(StageError, match="zip bomb"):
        extract(on_disk(tmp_path, make_zip_bomb_docx()), FileKind.DOCX)


def test_extract_a_pdf_on_disk(tmp_path: Path) -> None:
    data = make_pdf(["First page about budgets.", "Second page about travel."], title="Budget")
    from_disk = extract(on_disk(tmp_path, data), FileKind.PDF)
    assert from_disk == extract(data, FileKind.PDF)
    assert from_disk.page_count == 2
    assert "Second page about travel." in from_disk.text
    assert from_disk.metadata["title"] == "Budget"


def test_extract_office_and_text_files_on_disk(tmp_path: Path) -> None:
    docx = make_docx(["Quarterly planning notes."], table=[["Laptop", "1,200 EUR"]], title="Plan")
    result = extract(on_disk(tmp_path, docx, "a.docx"), FileKind.DOCX)
    assert result.text == "Quarterly planning notes.\nLaptop\t1,200 EUR"
    assert result.metadata["title"] == "Plan"
    odt = extract(on_disk(tmp_path, make_odt(["Minutes."]), "a.odt"), FileKind.ODT)
    assert odt.text == "Minutes."
    text = "Mixed: Привет, مرحبا, 你好.\r\nSecond line."
    assert extract(on_disk(tmp_path, text.encode("utf-16")), FileKind.TEXT).text == (
        "Mixed: Привет, مرحبا, 你好.\nSecond line."
    )


def test_a_word_document_with_a_large_picture_keeps_its_text(tmp_path: Path) -> None:
    from docx import Document

    picture = io.BytesIO()
    Image.frombytes("RGB", (400, 400), os.urandom(400 * 400 * 3)).save(picture, format="PNG")
    document = Document()
    document.add_paragraph("Before the picture.")
    document.add_picture(io.BytesIO(picture.getvalue()))
    document.add_paragraph("After the picture.")
    buffer = io.BytesIO()
    document.save(buffer)
    result = extract(on_disk(tmp_path, buffer.getvalue(), "a.docx"), FileKind.DOCX)
    assert "Before the picture." in result.text
    assert "After the picture." in result.text


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is not installed")
def test_an_image_on_disk_is_read_by_ocr_from_the_file(tmp_path: Path) -> None:
    path = on_disk(tmp_path, make_png_text("The quick brown fox jumps over the lazy dog"))
    result = extract(path, FileKind.IMAGE)
    assert "quick brown fox" in result.text
    assert result.metadata["ocr"] is True


# --- the text limit --------------------------------------------------------------------------


@pytest.mark.parametrize("from_disk", [False, True])
def test_long_text_is_cut_at_the_limit_and_says_so(tmp_path: Path, from_disk: bool) -> None:
    # Multi-byte characters across the reader's 1 MiB chunks.
    text = "žluťoučký kůň úpěl ďábelské ódy " * 60_000
    data = text.encode("utf-8")
    source = on_disk(tmp_path, data) if from_disk else data
    result = extract(source, FileKind.TEXT, max_chars=1_500_000)
    assert result.text == text[:1_500_000].strip()
    assert result.metadata["text_truncated"] is True
    whole = extract(source, FileKind.TEXT, max_chars=len(text))
    assert whole.text == text.strip()
    assert "text_truncated" not in whole.metadata


def test_markdown_and_csv_are_cut_too(tmp_path: Path) -> None:
    rows = "".join(f"{i},item {i}\n" for i in range(1000))
    result = extract(on_disk(tmp_path, rows.encode()), FileKind.CSV, max_chars=100)
    assert rows.startswith(result.text)
    assert len(result.text) <= 100
    assert result.metadata["text_truncated"] is True


def test_long_html_is_read_only_up_to_the_limit(tmp_path: Path) -> None:
    paragraphs = [f"Paragraph number {i} of a very long page." for i in range(5000)]
    path = on_disk(tmp_path, make_html(paragraphs, title="Long page"))
    result = extract(path, FileKind.HTML, max_chars=2000)
    assert result.text.startswith("Paragraph number 0 of a very long page.")
    assert "Paragraph number 4999" not in result.text
    assert result.metadata["text_truncated"] is True
    assert result.metadata["title"] == "Long page"
    assert "text_truncated" not in extract(path, FileKind.HTML).metadata


def test_a_short_pdf_is_not_flagged() -> None:
    assert "text_truncated" not in extract(make_pdf(["Short."]), FileKind.PDF).metadata


# --- the worker's copy -----------------------------------------------------------------------


def test_the_worker_copy_is_removed_after_its_stage_whatever_happens(tmp_path: Path) -> None:
    finished, failed, unused = (on_disk(tmp_path, b"x", name) for name in ("a", "b", "c"))
    with Original(finished) as path:
        assert path.read_bytes() == b"x"
    assert not finished.exists()
    with pytest.raises(StageError), Original(failed):
        raise StageError("The file is the problem.")
    assert not failed.exists()
    # A stage that never ran (its load's transaction failed): the copy goes with the object.
    Original(unused)
    gc.collect()
    assert not unused.exists()


def test_a_large_pdf_reopened_between_pages_reads_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_pdf([f"Page {n} about budgets and travel." for n in range(1, 6)], title="Big")
    whole = extract(on_disk(tmp_path, data), FileKind.PDF)
    # Every page now counts as a large share of the file: the document is reopened for each.
    monkeypatch.setattr("docflow.pipeline.extract.PDF_REOPEN_BYTES", 1)
    assert extract(on_disk(tmp_path, data), FileKind.PDF) == whole
    assert whole.text.index("Page 1 ") < whole.text.index("Page 5 ")
