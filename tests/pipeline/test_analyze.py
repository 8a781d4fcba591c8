# ruff: noqa: RUF001  # non-Latin scripts and typographic dashes are the point here
"""analyze(): language, size, a real summary, sensible keywords and fields."""

from __future__ import annotations

import pytest

from docflow.pipeline.analyze import analyze, split_sentences, summarize
from tests.fixtures.files import SAMPLE_TEXTS

# The opening sentences are small talk; the substance (solar panels, the school roof, savings)
# is in the middle. A prefix "summary" would miss it.
SOLAR_TEXT = (
    "Good morning everyone. Thanks for coming today. The coffee is at the back. "
    "The school board approved the installation of solar panels on the school roof in March. "
    "The solar panels on the school roof will cut the school's electricity costs by a third. "
    "Savings from the solar panels will fund new laboratory equipment for the school. "
    "Installation of the panels on the roof starts after the summer term ends. "
    "Parking will be limited during that week. Please bring a pen tomorrow."
)


def test_fields_of_an_english_text() -> None:
    result = analyze(SOLAR_TEXT)
    assert result.language == "en"
    # Whitespace-separated here; "school's" is one word.
    assert result.word_count == len(SOLAR_TEXT.split()) == 82
    assert result.reading_time_minutes == round(82 / 230, 1)


def test_summary_is_central_sentences_not_a_prefix() -> None:
    summary = analyze(SOLAR_TEXT).summary
    assert not SOLAR_TEXT.startswith(summary)
    assert "solar panels" in summary
    assert "coffee" not in summary
    sentences = split_sentences(summary)
    assert len(sentences) == 3
    # Original order is kept.
    positions = [SOLAR_TEXT.index(s) for s in sentences]
    assert positions == sorted(positions)


def test_summary_of_a_short_text_is_the_text() -> None:
    assert summarize("A single short sentence here, with enough words.") == (
        "A single short sentence here, with enough words."
    )


def test_summary_of_a_long_document_stays_short() -> None:
    text = " ".join(SAMPLE_TEXTS.values()) * 20
    assert len(analyze(text).summary) < 1300


def test_sentence_splitting_respects_abbreviations_and_wrapped_lines() -> None:
    text = (
        "Dr. Smith met Mr. Jones at 3 p.m. yesterday. They agreed on the plan, e.g. the\n"
        "budget and the timeline. Next steps follow!\n"
        "Heading Line\n"
        "会議は明日です。予算を確認してください。"
    )
    assert split_sentences(text) == [
        "Dr. Smith met Mr. Jones at 3 p.m. yesterday.",
        "They agreed on the plan, e.g. the budget and the timeline.",
        "Next steps follow!",
        "Heading Line",
        "会議は明日です。",
        "予算を確認してください。",
    ]


def test_keywords_are_sensible_and_deduplicated() -> None:
    keywords = analyze(SOLAR_TEXT).keywords
    assert 0 < len(keywords) <= 10
    lowered = [k.lower() for k in keywords]
    assert any("solar panels" in k for k in lowered)
    assert len(set(lowered)) == len(lowered)
    assert not {"the", "and", "of"} & set(lowered)


def test_keywords_of_sample_documents() -> None:
    assert "Northwind Office Supplies" in analyze(SAMPLE_TEXTS["invoice"]).keywords
    assert "Senior Software Engineer" in analyze(SAMPLE_TEXTS["resume"]).keywords
    # No phrase runs across a heading and the line after it.
    assert not any("Summary Backend" in k for k in analyze(SAMPLE_TEXTS["resume"]).keywords)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Съешь же ещё этих мягких французских булок, да выпей же чаю. Бюджет утверждён.", "ru"),
        ("مرحبا بالعالم. هذا مستند تجريبي يحتوي على نص عربي طويل بما فيه الكفاية.", "ar"),
        ("Der schnelle braune Fuchs springt über den faulen Hund und die Katze schläft.", "de"),
        ("这是一个中文文本文件。它包含会议记录和预算资料，以及项目计划。", "zh"),
        ("日本語のテキストファイルです。会議の議事録と予算の資料を含みます。", "ja"),
    ],
)
def test_language_of_non_latin_and_other_texts(text: str, language: str) -> None:
    assert analyze(text).language == language


def test_language_is_none_for_too_little_text() -> None:
    assert analyze("Total: 42").language is None
    assert analyze("12345 678 90").language is None


def test_language_detection_is_deterministic() -> None:
    text = "Ciao, questo è un breve testo italiano per la prova."
    assert {analyze(text).language for _ in range(5)} == {"it"}


def test_cjk_words_are_counted_per_character() -> None:
    result = analyze("会議は明日です。Budget review tomorrow.")
    # 7 CJK characters (the 。 is punctuation) + 3 words.
    assert result.word_count == 10


def test_cjk_keywords_are_words_not_sentences() -> None:
    text = "会議の予算について。会議は明日です。予算の資料を準備してください。予算と会議。"
    keywords = analyze(text).keywords
    assert keywords
    assert all(len(k) <= 4 for k in keywords)
    assert "予算" in keywords
    assert "会議" in keywords


def test_cyrillic_keywords_use_the_detected_language() -> None:
    text = (
        "Квартальный отчёт о продажах. Продажи компании выросли на восемь процентов. "
        "Рост продаж обеспечен новыми клиентами в северном регионе. Квартальный отчёт "
        "подготовлен отделом аналитики."
    )
    keywords = [k.lower() for k in analyze(text).keywords]
    assert any("отчёт" in k for k in keywords)
    assert "на" not in keywords


def test_empty_and_whitespace_text() -> None:
    result = analyze("   ")
    assert result.word_count == 0
    assert result.reading_time_minutes == 0
    assert result.summary == ""
    assert result.keywords == []
    assert result.language is None


def test_fields_of_an_invoice() -> None:
    fields = analyze(SAMPLE_TEXTS["invoice"]).fields
    assert fields["dates"] == ["12 March 2024", "11 April 2024"]
    assert "£1,675.20" in fields["amounts"]
    assert "£189.00" in fields["amounts"]
    assert fields["emails"] == ["accounts@northwind-supplies.co.uk"]
    assert fields["references"] == ["INV-2024-00831", "PO-77812"]


def test_field_formats() -> None:
    text = (
        "Paid on 2024-03-15 and 15/03/2024 and 3.4.24; next review March 5, 2025 or "
        "5th of June 2025. Amounts: $1,234.56, € 99, 1 234,56 €, USD 5000, 300 EUR, "
        "€4.2 million. Reach ops+billing@example.co.uk. Order #A-99812 and Ref: 2024/117. "
        "Version 1.2.3 and 10.0.0.1 are not dates."
    )
    fields = analyze(text).fields
    assert fields["dates"] == [
        "2024-03-15",
        "15/03/2024",
        "3.4.24",
        "March 5, 2025",
        "5th of June 2025",
    ]
    assert fields["amounts"] == [
        "$1,234.56",
        "€ 99",
        "1 234,56 €",
        "USD 5000",
        "300 EUR",
        "€4.2 million",
    ]
    assert fields["emails"] == ["ops+billing@example.co.uk"]
    assert fields["references"] == ["A-99812", "2024/117"]


def test_fields_are_always_present() -> None:
    assert analyze("Nothing structured in this sentence at all.").fields == {
        "dates": [],
        "amounts": [],
        "emails": [],
        "references": [],
    }
