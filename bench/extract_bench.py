# a benchmark reports by printing
"""PDF text extraction, pages per second: our extract_text() beside raw pypdfium2, same run.

The corpus is generated (reportlab), fixed by its parameters: text-heavy pages of business
documents, some with a second font size and a table-like layout. Raw pypdfium2 is the floor
our stage builds on (open, per page: textpage, get_text_range, close); the ratio shows what our
extras cost (progress callbacks, blank-page checks, metadata, tidying). Goal: at least 0.8x.

    python bench/extract_bench.py [--documents 12] [--pages 20] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import pypdfium2 as pdfium

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fixtures.corpus import generate
from tests.fixtures.files import make_pdf

from docflow.pipeline.extract import extract_text
from docflow.pipeline.types import FileKind


def corpus(documents: int, pages: int) -> list[bytes]:
    texts = [d.text for d in generate(max(documents // 10 + 1, 2), seed=5)]
    pdfs = []
    for index in range(documents):
        body = [texts[(index + p) % len(texts)] * 3 for p in range(pages)]
        pdfs.append(make_pdf(body, title=f"Benchmark {index}", author="bench"))
    return pdfs


def raw_pdfium(data: bytes) -> int:
    document = pdfium.PdfDocument(data)
    try:
        chars = 0
        for index in range(len(document)):
            page = document[index]
            textpage = page.get_textpage()
            chars += len(textpage.get_text_range())
            textpage.close()
            page.close()
        return len(document)
    finally:
        document.close()


def ours(data: bytes) -> int:
    return extract_text(data, FileKind.PDF, lambda _done, _total: None).page_count


def pages_per_second(fn: object, pdfs: list[bytes], rounds: int) -> tuple[float, int]:
    assert callable(fn)
    times = []
    pages = 0
    for _ in range(rounds):
        # CPU time of this process: on a shared machine, wall time mostly measures the others.
        started = time.process_time()
        pages = sum(fn(data) for data in pdfs)
        times.append(time.process_time() - started)
    return pages / statistics.median(times), pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=12)
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    pdfs = corpus(args.documents, args.pages)
    raw_pdfium(pdfs[0])
    ours(pdfs[0])
    # Interleave the two so that a burst of load on a shared machine hits both alike.
    raw_rates, our_rates = [], []
    for _ in range(args.rounds):
        raw_rates.append(pages_per_second(raw_pdfium, pdfs, 1)[0])
        our_rates.append(pages_per_second(ours, pdfs, 1)[0])
    raw, our = statistics.median(raw_rates), statistics.median(our_rates)
    pages = sum(raw_pdfium(d) for d in pdfs)
    print(
        f"PDF extraction over {len(pdfs)} generated PDFs, {pages} pages "
        f"(median of {args.rounds} interleaved rounds, CPU time)"
    )
    print(f"  raw pypdfium2      {raw:>8.0f} pages/s")
    print(f"  docflow extract    {our:>8.0f} pages/s")
    print(f"  ratio              {our / raw:>8.2f}x  (goal >= 0.80x)")


if __name__ == "__main__":
    main()
