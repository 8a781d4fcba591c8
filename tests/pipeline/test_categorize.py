# ruff: noqa: RUF001  # non-Latin scripts and typographic dashes are the point here
"""categorize() and the learned Classifier."""

from __future__ import annotations

import pytest

from docflow.pipeline.analyze import analyze
from docflow.pipeline.categorize import DEFAULT_CATEGORIES, Classifier, categorize
from tests.fixtures.files import SAMPLE_TEXTS


def test_default_taxonomy() -> None:
    assert DEFAULT_CATEGORIES == [
        "invoice",
        "receipt",
        "contract",
        "resume",
        "letter",
        "report",
        "academic_paper",
        "form",
        "other",
    ]
    assert set(SAMPLE_TEXTS) == set(DEFAULT_CATEGORIES) - {"other"}


@pytest.mark.parametrize("category", sorted(SAMPLE_TEXTS))
def test_each_sample_gets_its_category_confidently(category: str) -> None:
    text = SAMPLE_TEXTS[category]
    result = categorize(text, "document.pdf", analyze(text))
    assert result.category == category
    assert 0.6 <= result.confidence <= 0.99


def test_nothing_recognisable_is_other_with_low_confidence() -> None:
    text = "We walked along the river and watched the ducks until the sun went down."
    result = categorize(text, "notes.txt", analyze(text))
    assert result.category == "other"
    assert result.confidence <= 0.3


def test_weak_evidence_gives_low_confidence() -> None:
    text = "Please see the attached invoice and report."
    weak = categorize(text, "scan.pdf", analyze(text))
    strong = categorize(SAMPLE_TEXTS["invoice"], "scan.pdf", analyze(SAMPLE_TEXTS["invoice"]))
    assert weak.confidence < 0.5 < strong.confidence


def test_file_name_is_a_hint() -> None:
    text = "Jane Morrison. Python, Go, PostgreSQL. Stripeline Payments 2020 – present."
    assert categorize(text, "jane_cv.pdf", analyze(text)).category == "resume"


def test_classifier_learns_and_round_trips() -> None:
    samples = [(text, label) for label, text in SAMPLE_TEXTS.items()]
    # A few more examples each so that the model sees some variety.
    samples += [
        ("Invoice number 4471. Amount due 300 EUR by 1 May. Bill to Contoso.", "invoice"),
        ("Thank you for shopping. Cashier Tom. Change due $2.00. Receipt #11.", "receipt"),
        ("This agreement between the parties shall be governed by Texas law.", "contract"),
        ("Work experience: engineer at Initech. Education: BSc. Skills: Excel.", "resume"),
        ("Dear Ms. Patel, I am writing about your visit. Yours sincerely, Ann", "letter"),
        ("Executive summary of the annual report: findings and recommendations.", "report"),
        (
            "Abstract. In this paper we propose a model; experiments and references.",
            "academic_paper",
        ),
        ("Please complete this form. First name ____ Date of birth ____", "form"),
    ]
    classifier = Classifier.train(samples)
    restored = Classifier.from_bytes(classifier.to_bytes())
    assert restored.classes == sorted(SAMPLE_TEXTS)
    prediction = restored.predict("Invoice INV-9 amount due 45 EUR, bill to Globex, due date")
    assert prediction.category == "invoice"
    assert 0 < prediction.confidence <= 1
    assert prediction == classifier.predict(
        "Invoice INV-9 amount due 45 EUR, bill to Globex, due date"
    )


def test_binary_classifier() -> None:
    classifier = Classifier.train(
        [("invoice amount due", "invoice"), ("dear sir yours sincerely", "letter")] * 3
    )
    assert classifier.predict("the amount due on this invoice").category == "invoice"
    assert classifier.predict("dear madam, yours sincerely").category == "letter"


def test_classifier_needs_two_labels() -> None:
    with pytest.raises(ValueError, match="two categories"):
        Classifier.train([("a", "invoice"), ("b", "invoice")])


def test_classifier_refuses_foreign_bytes() -> None:
    with pytest.raises(ValueError, match="not a saved docflow classifier"):
        Classifier.from_bytes(b"\x80\x04 definitely not a model")


# --- Rules and a learned model together -------------------------------------------------------

TAXONOMY: dict[str, str | None] = {**{c: c for c in DEFAULT_CATEGORIES}, "purchase_order": None}


def _reviewed_batch() -> Classifier:
    from docflow.pipeline.categorize import model_input
    from tests.fixtures.corpus import generate

    docs = generate(5, seed=2002)
    return Classifier.train([(model_input(d.text, d.filename), d.category) for d in docs])


def test_a_learned_category_the_rules_cannot_know_wins() -> None:
    from tests.fixtures.corpus import one

    order = one("purchase_order", seed=5)
    rules_only = categorize(order.text, order.filename, analyze(order.text), taxonomy=TAXONOMY)
    assert rules_only.category == "invoice"
    learnt = categorize(
        order.text,
        order.filename,
        analyze(order.text),
        classifier=_reviewed_batch(),
        taxonomy=TAXONOMY,
    )
    assert learnt.category == "purchase_order"
    # Five examples are a start, not certainty: the blend says so instead of claiming 0.9.
    assert 0.3 <= learnt.confidence <= 0.99


def test_rules_keep_categories_the_model_never_saw() -> None:
    from docflow.pipeline.categorize import model_input

    # A model that only ever saw invoices and letters must not call a CV either of them.
    narrow = Classifier.train(
        [
            (model_input(SAMPLE_TEXTS["invoice"], "a.pdf"), "invoice"),
            (model_input(SAMPLE_TEXTS["letter"], "b.pdf"), "letter"),
        ]
        * 6
    )
    text = SAMPLE_TEXTS["resume"]
    result = categorize(text, "cv.pdf", analyze(text), classifier=narrow, taxonomy=TAXONOMY)
    assert result.category == "resume"


def test_a_renamed_category_keeps_its_rules() -> None:
    renamed = {**TAXONOMY, "cv": "resume"}
    del renamed["resume"]
    text = SAMPLE_TEXTS["resume"]
    assert categorize(text, "x.pdf", analyze(text), taxonomy=renamed).category == "cv"


def test_a_model_class_outside_the_taxonomy_is_ignored() -> None:
    text = SAMPLE_TEXTS["invoice"]
    only_invoice_gone = {name: key for name, key in TAXONOMY.items() if name != "purchase_order"}
    result = categorize(
        text, "x.pdf", analyze(text), classifier=_reviewed_batch(), taxonomy=only_invoice_gone
    )
    assert result.category in only_invoice_gone
