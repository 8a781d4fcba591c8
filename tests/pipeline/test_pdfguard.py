"""Decompression bombs in PDFs are refused before PDFium inflates them."""

from __future__ import annotations

import os
import time
import zlib

import pytest

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
