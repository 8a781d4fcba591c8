"""The linear YAKE scorer: phrases not stop words, bounded by sentences, deterministic."""

from __future__ import annotations

from docflow.pipeline.analyze import split_sentences
from docflow.pipeline.keyphrases import keyphrases, stopwords
from tests.fixtures.files import SAMPLE_TEXTS


def test_top_phrases_of_an_invoice() -> None:
    ranked = [p.lower() for p, _ in keyphrases(split_sentences(SAMPLE_TEXTS["invoice"]), "en")]
    assert "northwind office supplies" in ranked[:10]
    assert not {"the", "and", "of", "to"} & set(ranked)


def test_phrases_never_cross_a_sentence_or_punctuation() -> None:
    ranked = [p for p, _ in keyphrases(["Solar panels work.", "Grid storage helps, too."], "en")]
    assert "Solar panels" in ranked
    assert not any("work Grid" in p or "storage helps too" in p for p in ranked)


def test_scores_ascend_and_repeat() -> None:
    sentences = split_sentences(SAMPLE_TEXTS["report"])
    first = keyphrases(sentences, "en")
    assert first == keyphrases(sentences, "en")
    scores = [s for _, s in first]
    assert scores == sorted(scores)


def test_stopwords_per_language_and_empty_input() -> None:
    assert "и" in stopwords("ru")
    assert "the" in stopwords("xx")  # an unknown language falls back to English
    assert keyphrases([], "en") == []
