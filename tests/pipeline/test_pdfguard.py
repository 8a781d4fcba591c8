"""Decompression bombs in PDFs are refused before PDFium inflates them."""

from __future__ import annotations

import os
import time
import zlib
from pathlib import Path

import pytest

from docflow.pipeline import pdfguard
from docflow.pipeline.extract import extract_text
from docflow.pipeline.pdfguard import BOMB, check_pdf_streams
from docflow.pipeline.types import FileKind, StageError
from tests.fixtures.files import make_pdf
from tests.security.hostile import nested_flate_pdf


def _progress(done: int, total: int) -> None:
    del done, total


@pytest.mark.parametrize(("expanded_mb", "rounds"), [(512, 3), (300, 2), (300, 1)])
def test_bombs_fail_fast_with_a_reason(expanded_mb: int, rounds: int) -> None:
    bomb = nested_flate_pdf(expanded_mb=expanded_mb, rounds=rounds)
    started = time.monotonic()
    with pytest.raises(StageError) as caught:
        extract_text(bomb, FileKind.PDF, _progress)
    assert caught.value.message == BOMB
    assert "decompression bomb" in caught.value.message
    assert time.monotonic() - started < 20


def test_an_ordinary_pdf_passes_untouched() -> None:
    pdf = make_pdf([f"Page {i}: quarterly figures and notes." for i in range(30)])
    assert check_pdf_streams(pdf) == 0  # too small to ever reach the budget: nothing inflated
    assert "Page 29" in extract_text(pdf, FileKind.PDF, _progress).text


def test_a_large_but_honest_stream_is_measured_and_allowed() -> None:
    honest = zlib.compress(os.urandom(2 * 1024 * 1024))  # barely compressible: big on disk too
    pdf = (
        b"%%PDF-1.7\n5 0 obj\n<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(honest)
        + honest
        + b"\nendstream\nendobj\n"
    )
    assert check_pdf_streams(pdf) == 2 * 1024 * 1024


def test_the_budget_counts_what_streams_expand_to() -> None:
    bomb = nested_flate_pdf(expanded_mb=20, rounds=1)
    with pytest.raises(StageError):
        check_pdf_streams(bomb, budget=15 * 1024 * 1024)


def _one_stream_pdf(payload: bytes, filters: str = "/FlateDecode", gap: bytes = b"\n") -> bytes:
    return (
        b"%%PDF-1.7\n5 0 obj\n<< /Length %d /Filter [%s] >>%sstream\n"
        % (len(payload), filters.encode(), gap)
        + payload
        + b"\nendstream\nendobj\n%%EOF\n"
    )


def test_a_stream_inflating_to_more_than_one_step_is_measured_once() -> None:
    # Several output-limited rounds, then the end of the data with the line end after it: this
    # once looped for ever, feeding the leftover byte back in.
    size = 3 * pdfguard._STEP // 2
    honest = zlib.compress(os.urandom(size // 2) + bytes(size - size // 2))
    started = time.monotonic()
    assert check_pdf_streams(_one_stream_pdf(honest)) == size
    assert time.monotonic() - started < 20


def test_a_file_on_disk_is_checked_like_bytes(tmp_path: Path) -> None:
    bomb, honest = tmp_path / "bomb.pdf", tmp_path / "honest.pdf"
    bomb.write_bytes(nested_flate_pdf(expanded_mb=20, rounds=1))
    honest.write_bytes(_one_stream_pdf(zlib.compress(os.urandom(1024 * 1024))))
    with pytest.raises(StageError) as caught:
        check_pdf_streams(bomb, budget=15 * 1024 * 1024)
    assert caught.value.message == BOMB
    assert check_pdf_streams(honest, budget=1024 * 1024) == 1024 * 1024
    empty = tmp_path / "empty.pdf"
    empty.touch()
    assert check_pdf_streams(empty) == 0


def test_a_header_across_scan_windows_is_still_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdfguard, "_WINDOW", 64)
    padded = _one_stream_pdf(zlib.compress(bytes(4 * 1024 * 1024)), gap=b" " * 300 + b"\r\n")
    with pytest.raises(StageError):
        check_pdf_streams(padded, budget=1024 * 1024)
    # Every split of ">>" and "stream" over a window's edge.
    for shift in range(16):
        shifted = b" " * shift + _one_stream_pdf(zlib.compress(bytes(2 * 1024 * 1024)))
        with pytest.raises(StageError):
            check_pdf_streams(shifted, budget=1024 * 1024)


def test_an_outer_layer_counts_even_when_the_inner_one_is_not_flate() -> None:
    # PDFium inflates the first filter whole before it finds the second one broken.
    zeros = zlib.compress(bytes(8 * 1024 * 1024))
    with pytest.raises(StageError):
        check_pdf_streams(
            _one_stream_pdf(zeros, "/FlateDecode /FlateDecode"), budget=4 * 1024 * 1024
        )
