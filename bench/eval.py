# ruff: noqa: RUF001  # an evaluation reports by printing; its texts use real dashes
"""`make eval`: how right the pipeline is, on generated documents whose truth is known.

1. Extraction fidelity: character error rate (CER, edit distance / reference length, after
   collapsing whitespace) of extract_text() on PDFs and DOCX files generated from known text,
   and of OCR on rendered pictures of text when Tesseract is installed.
2. Categorization accuracy on a labelled set of varied documents (10 categories: the 9 default
   ones and `purchase_order`, an admin-added category the rules cannot know), before and after
   learning from one batch of reviewer decisions, with how honest the confidence is.

    python bench/eval.py [--per-category 12] [--batch 3]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fixtures.corpus import CUSTOM_CATEGORY, LabelledDocument, generate
from tests.fixtures.files import (
    SAMPLE_TEXTS,
    make_docx,
    make_pdf,
    make_png_text,
    unicode_font_path,
)

from docflow.pipeline import ocr
from docflow.pipeline.analyze import analyze
from docflow.pipeline.categorize import (
    DEFAULT_CATEGORIES,
    Classifier,
    categorize,
    model_input,
)
from docflow.pipeline.extract import extract_text
from docflow.pipeline.types import Categorization, FileKind, StageError

UNCERTAIN_BELOW = 0.5  # documents/schemas.UNCERTAIN_BELOW, without importing the API
CORRECTION_WEIGHT = 2.0  # categories/learning.CORRECTION_WEIGHT, without importing the DB


# --- Extraction -----------------------------------------------------------------------------


def _squash(text: str) -> str:
    return " ".join(text.split())


def edit_distance(a: str, b: str) -> int:
    try:
        import jellyfish

        return int(jellyfish.levenshtein_distance(a, b))
    except ImportError:
        previous = list(range(len(b) + 1))
        for i, ca in enumerate(a, 1):
            current = [i]
            for j, cb in enumerate(b, 1):
                current.append(
                    min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
                )
            previous = current
        return previous[-1]


def cer(reference: str, hypothesis: str) -> float:
    ref, hyp = _squash(reference), _squash(hypothesis)
    return edit_distance(ref, hyp) / max(len(ref), 1)


def _extract(data: bytes, kind: FileKind) -> str:
    try:
        return extract_text(data, kind, lambda _done, _total: None).text
    except StageError as exc:
        return f"<failed: {exc.message}>"


def extraction_fidelity() -> None:
    docs = generate(2, seed=41)
    rows: dict[str, list[float]] = defaultdict(list)
    for doc in docs:
        rows["PDF (reportlab, Helvetica)"].append(
            cer(doc.text, _extract(make_pdf([doc.text]), FileKind.PDF))
        )
        paragraphs = doc.text.split("\n")
        rows["DOCX (python-docx)"].append(
            cer(doc.text, _extract(make_docx(paragraphs), FileKind.DOCX))
        )
    scripts = {
        "Cyrillic": "Квартальный отчёт о продажах. Продажи компании выросли на восемь процентов.",
        "Greek": "Η αναφορά πωλήσεων του τριμήνου δείχνει αύξηση οκτώ τοις εκατό.",
        "Arabic": "هذا تقرير المبيعات الفصلي ويظهر زيادة بنسبة ثمانية في المئة.",
    }
    if unicode_font_path():
        for name, text in scripts.items():
            # reportlab has no bidi layout: a right-to-left line must be handed over in visual
            # order (reversed, for a line without digits), as Word or LibreOffice would lay it.
            drawn = text[::-1] if name == "Arabic" else text
            rows[f"PDF {name} (DejaVu)"].append(
                cer(text, _extract(make_pdf([drawn]), FileKind.PDF))
            )
    for text in scripts.values():
        rows["DOCX non-Latin"].append(cer(text, _extract(make_docx([text]), FileKind.DOCX)))
    if ocr.tesseract_path():
        for text in list(SAMPLE_TEXTS.values())[:4]:
            snippet = " ".join(text.split()[:60])
            rows["OCR (Tesseract, rendered PNG)"].append(
                cer(snippet, _extract(make_png_text(snippet), FileKind.IMAGE))
            )
    else:
        rows["OCR (Tesseract, rendered PNG)"] = []

    print("1. Extraction fidelity: character error rate (lower is better)")
    print(f"   {'source':<34}{'files':>6}{'mean CER':>10}{'worst':>8}")
    for name, values in rows.items():
        if not values:
            print(f"   {name:<34}{'-':>6}  skipped: tesseract is not installed")
            continue
        mean = sum(values) / len(values)
        print(f"   {name:<34}{len(values):>6}{mean:>9.2%}{max(values):>8.2%}")


# --- Categorization -------------------------------------------------------------------------


def _taxonomy() -> dict[str, str | None]:
    names: dict[str, str | None] = {name: name for name in DEFAULT_CATEGORIES}
    names[CUSTOM_CATEGORY] = None
    return names


def _predict(docs: list[LabelledDocument], classifier: Classifier | None) -> list[Categorization]:
    taxonomy = _taxonomy()
    return [
        categorize(d.text, d.filename, analyze(d.text), classifier=classifier, taxonomy=taxonomy)
        for d in docs
    ]


def _report(label: str, docs: list[LabelledDocument], predictions: list[Categorization]) -> None:
    right = [p.category == d.category for d, p in zip(docs, predictions, strict=True)]
    sure = [ok for ok, p in zip(right, predictions, strict=True) if p.confidence >= UNCERTAIN_BELOW]
    unsure = [
        ok for ok, p in zip(right, predictions, strict=True) if p.confidence < UNCERTAIN_BELOW
    ]
    known = [ok for ok, d in zip(right, docs, strict=True) if d.category != CUSTOM_CATEGORY]
    print(f"   {label}")
    print(
        f"     accuracy {sum(right) / len(right):.1%} ({sum(right)}/{len(right)}); "
        f"default categories only {sum(known) / len(known):.1%}"
    )
    if sure:
        print(
            f"     confident (>= {UNCERTAIN_BELOW}): {len(sure)} documents, "
            f"{sum(sure) / len(sure):.1%} right"
        )
    if unsure:
        print(
            f"     flagged uncertain: {len(unsure)} documents, "
            f"{sum(unsure) / len(unsure):.1%} right"
        )


def _per_category(
    docs: list[LabelledDocument], before: list[Categorization], after: list[Categorization]
) -> None:
    totals: Counter[str] = Counter(d.category for d in docs)
    hits_before: Counter[str] = Counter()
    hits_after: Counter[str] = Counter()
    for d, b, a in zip(docs, before, after, strict=True):
        hits_before[d.category] += b.category == d.category
        hits_after[d.category] += a.category == d.category
    print(f"     {'category':<16}{'before':>8}{'after':>8}")
    for category in totals:
        print(
            f"     {category:<16}{hits_before[category] / totals[category]:>8.0%}"
            f"{hits_after[category] / totals[category]:>8.0%}"
        )


def categorization(per_category: int, batch: int) -> None:
    test = generate(per_category, seed=1001)
    print(
        f"\n2. Categorization: {len(test)} held-out documents, {per_category} per category, "
        f"{len({d.category for d in test})} categories"
    )
    before = _predict(test, None)
    _report("before learning (rules only; the rules cannot know purchase_order):", test, before)

    # One batch of reviewer decisions on other documents: the pipeline's guess, then the
    # reviewer's final category (a correction where they differ), weighted as the worker does.
    reviewed = generate(batch, seed=2002)
    guesses = _predict(reviewed, None)
    corrections = sum(g.category != d.category for d, g in zip(reviewed, guesses, strict=True))
    classifier = Classifier.train(
        [(model_input(d.text, d.filename), d.category) for d in reviewed],
        weights=[
            CORRECTION_WEIGHT if g.category != d.category else 1.0
            for d, g in zip(reviewed, guesses, strict=True)
        ],
    )
    after = _predict(test, classifier)
    _report(
        f"after learning from {len(reviewed)} reviewed documents ({corrections} corrections):",
        test,
        after,
    )
    _per_category(test, before, after)

    samples = [LabelledDocument(c, "document.pdf", t) for c, t in SAMPLE_TEXTS.items()]
    right = sum(
        p.category == d.category
        for d, p in zip(samples, _predict(samples, classifier), strict=True)
    )
    print(f"   the hand-written SAMPLE_TEXTS after learning: {right}/{len(samples)} right")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-category", type=int, default=12)
    parser.add_argument("--batch", type=int, default=5, help="reviewed documents per category")
    args = parser.parse_args()
    extraction_fidelity()
    categorization(args.per_category, args.batch)


if __name__ == "__main__":
    main()
