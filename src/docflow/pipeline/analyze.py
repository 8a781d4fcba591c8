"""Language, size, summary, keywords and structured fields of a document's text."""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from docflow.pipeline.keyphrases import keyphrases
from docflow.pipeline.types import Analysis

WORDS_PER_MINUTE = 230
# CJK text is counted per character; people read roughly this many characters a minute.
CJK_CHARS_PER_MINUTE = 500
SUMMARY_SENTENCES = 3
MAX_SUMMARY_SENTENCE_CHARS = 400
# Sentences beyond this are not ranked; it keeps very long documents linear and quick.
MAX_RANKED_SENTENCES = 5_000
KEYWORD_COUNT = 10
# Keyword extraction is the slowest step; beyond this many words it only reads the beginning.
KEYWORD_MAX_WORDS = 20_000
LANGUAGE_SAMPLE_CHARS = 2_000
MIN_LANGUAGE_LETTERS = 20
MIN_LANGUAGE_PROBABILITY = 0.5
MAX_FIELD_VALUES = 50

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
_CJK_CHAR = re.compile(f"[{_CJK}]")
_NOT_CJK_WORD = re.compile(f"[^{_CJK}]+")
_WORD = re.compile(r"[^\W_]+(?:['\u2019.,\-][^\W_]+)*")
_LETTER = re.compile(r"[^\W\d_]")
# Languages whose tokenisation by spaces is meaningless for key phrases.
_UNSPACED_LANGUAGES = frozenset({"zh", "ja"})


def analyze(text: str) -> Analysis:
    """Everything the reviewer sees about a document's text, computed without any I/O."""
    language = detect_language(text)
    word_count, cjk_chars = _count_words(text)
    minutes = (word_count - cjk_chars) / WORDS_PER_MINUTE + cjk_chars / CJK_CHARS_PER_MINUTE
    return Analysis(
        language=language,
        word_count=word_count,
        reading_time_minutes=round(max(minutes, 0.1), 1) if word_count else 0.0,
        summary=summarize(text),
        keywords=extract_keywords(text, language),
        fields=extract_fields(text),
    )


# --- Language and size -----------------------------------------------------------------------


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of the text's main language, or None if there is too little to tell."""
    sample = text[:LANGUAGE_SAMPLE_CHARS]
    if len(_LETTER.findall(sample)) < MIN_LANGUAGE_LETTERS:
        return None
    # A naive Bayes over byte n-grams (langid.py): deterministic, and about 1 ms a call.
    language, probability = _language_identifier().classify(sample)
    if probability < MIN_LANGUAGE_PROBABILITY:
        return None
    return str(language).split("-")[0]


@functools.lru_cache(maxsize=1)
def _language_identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def warm_up() -> None:
    """Load the language model and stop-word lists now, so the first document is not slow."""
    _language_identifier()
    analyze("Warm-up: the quick brown fox jumps over the lazy dog. Total due: 12 EUR.")


def _count_words(text: str) -> tuple[int, int]:
    """(words, of which CJK characters): each Chinese/Japanese character counts as a word."""
    cjk = len(_CJK_CHAR.findall(text))
    if cjk:
        text = _CJK_CHAR.sub(" ", text)
    return len(_WORD.findall(text)) + cjk, cjk


# --- Sentences and summary ------------------------------------------------------------------

_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st inc ltd co corp no nos vs etc e.g i.e al fig figs approx dept "
    "est jan feb mar apr jun jul aug sep sept oct nov dec u.s p pp vol ed eds cf ca".split()
)
# Full stops, with the ideographic and full-width ones (\u3002 \uff01 \uff1f) that need no space.
_BOUNDARY = re.compile(
    "([.!?\u2026]+[\"'\u201d\u2019)\\]]*)\\s+|([\u3002\uff01\uff1f]+[\u300d\u300f\u201d]*)\\s*"
)
_TERMINAL = re.compile("[.!?\u2026:;\u3002\uff01\uff1f]$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*•▪◦]|\d+[.)]|[a-z][.)])\s")
_TOKEN = re.compile(r"[^\W\d_]{2,}")


def split_sentences(text: str) -> list[str]:
    """Sentences in order. Hard-wrapped lines (as in PDFs) are joined back together."""
    sentences: list[str] = []
    for block in re.split(r"\n\s*\n", text):
        for unit in _join_wrapped_lines(block):
            sentences.extend(_split_unit(unit))
    return [s for s in sentences if s]


def _join_wrapped_lines(block: str) -> list[str]:
    units: list[str] = []
    for raw in block.split("\n"):
        line = raw.strip()
        if not line:
            continue
        continues = (
            units
            and len(units[-1]) >= 40
            and not _TERMINAL.search(units[-1])
            and (line[0].islower() or units[-1].endswith((",", "-")))
            and not _LIST_ITEM.match(line)
        )
        if continues:
            units[-1] = f"{units[-1]} {line}"
        else:
            units.append(line)
    return units


def _split_unit(unit: str) -> list[str]:
    parts: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(unit):
        if match.group(1):
            end = match.end(1)
            following = unit[match.end() : match.end() + 1]
            if following.islower() or following.isdigit():
                continue
            if match.group(1) == ".":
                previous = unit[start : match.start(1)].rsplit(None, 1)
                word = previous[-1].lower() if previous else ""
                if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
                    continue
        else:
            end = match.end(2)
        parts.append(unit[start:end].strip())
        start = match.end()
    parts.append(unit[start:].strip())
    return parts


def _tokens(sentence: str) -> list[str]:
    lowered = sentence.lower()
    tokens = _TOKEN.findall(lowered)
    cjk_runs = [run for run in _NOT_CJK_WORD.split(lowered) if run]
    for run in cjk_runs:
        tokens.extend(run[i : i + 2] for i in range(max(len(run) - 1, 1)))
    return tokens


def _is_candidate(sentence: str) -> bool:
    words = len(_WORD.findall(sentence)) + len(_CJK_CHAR.findall(sentence))
    letters = len(_LETTER.findall(sentence))
    return 5 <= words <= 80 and letters >= 0.5 * len(sentence.replace(" ", ""))


def summarize(text: str, sentences: int = SUMMARY_SENTENCES) -> str:
    """An extractive summary: the sentences most central to the document, in original order.

    Centrality is the cosine similarity of a sentence's TF-IDF vector to the document's
    centroid; near-duplicates of an already chosen sentence are skipped.
    """
    all_sentences = split_sentences(text)
    candidates = [s for s in all_sentences if _is_candidate(s)][:MAX_RANKED_SENTENCES]
    if not candidates:
        candidates = [s for s in all_sentences if len(_WORD.findall(s)) >= 2][:sentences]
        return _join_summary(candidates)
    if len(candidates) <= sentences:
        return _join_summary(candidates)
    token_lists = [_tokens(s) for s in candidates]
    document_frequency: Counter[str] = Counter()
    for tokens in token_lists:
        document_frequency.update(set(tokens))
    total = len(candidates)
    vectors: list[dict[str, float]] = []
    centroid: Counter[str] = Counter()
    for tokens in token_lists:
        vector = {
            token: (1 + math.log(count)) * math.log(1 + total / document_frequency[token])
            for token, count in Counter(tokens).items()
        }
        norm = math.sqrt(sum(v * v for v in vector.values())) or 1.0
        vector = {token: value / norm for token, value in vector.items()}
        vectors.append(vector)
        centroid.update(vector)
    # Prose beats headings and table rows, which rarely make a readable summary.
    scores = [
        _dot(vector, centroid) * (1.0 if _TERMINAL.search(sentence) else 0.7)
        for vector, sentence in zip(vectors, candidates, strict=True)
    ]
    ranked = sorted(range(total), key=lambda i: scores[i], reverse=True)
    chosen: list[int] = []
    for index in ranked:
        if all(_dot(vectors[index], vectors[other]) < 0.6 for other in chosen):
            chosen.append(index)
        if len(chosen) == sentences:
            break
    return _join_summary([candidates[i] for i in sorted(chosen)])


def _dot(small: Mapping[str, float], large: Mapping[str, float]) -> float:
    if len(small) > len(large):
        small, large = large, small
    return sum(value * large.get(token, 0.0) for token, value in small.items())


def _join_summary(sentences: list[str]) -> str:
    clipped = [
        s
        if len(s) <= MAX_SUMMARY_SENTENCE_CHARS
        else s[:MAX_SUMMARY_SENTENCE_CHARS].rsplit(" ", 1)[0] + "…"
        for s in sentences
    ]
    return " ".join(clipped)


# --- Keywords -------------------------------------------------------------------------------


# (sentences, language, how many) -> (phrase, score) pairs, best first.
PhraseScorer = Callable[[list[str], str, int], list[tuple[str, float]]]


def extract_keywords(
    text: str, language: str | None, scorer: PhraseScorer = keyphrases
) -> list[str]:
    """Up to KEYWORD_COUNT key phrases, best first, without near-duplicates.

    `scorer` exists so `bench/analyze_bench.py` can run the `yake` package in the same harness.
    """
    if language in _UNSPACED_LANGUAGES:
        return _cjk_keywords(text)
    words = _WORD.finditer(text)
    limit = len(text)
    for index, match in enumerate(words):
        if index == KEYWORD_MAX_WORDS:
            limit = match.start()
            break
    # Line-level units bound phrases, so none spans a heading and the line after it.
    sentences = split_sentences(text[:limit])
    candidates = scorer(sentences, language or "en", KEYWORD_COUNT * 3)
    keywords: list[str] = []
    chosen_words: list[set[str]] = []
    seen: set[str] = set()
    for phrase, _score in candidates:
        phrase = _display_case(" ".join(str(phrase).split()))
        key = phrase.lower()
        phrase_words = {w.rstrip("s") for w in key.split()}
        if len(_LETTER.findall(phrase)) < 2 or key in seen:
            continue
        # "public license" adds nothing once "general public license" is in.
        if any(phrase_words <= earlier for earlier in chosen_words):
            continue
        seen.add(key)
        chosen_words.append(phrase_words)
        keywords.append(phrase)
        if len(keywords) == KEYWORD_COUNT:
            break
    return keywords


def _display_case(phrase: str) -> str:
    # Shouted headings ("TOTAL AMOUNT DUE") read better in lower case; keep acronyms ("VAT").
    if phrase.isupper() and (" " in phrase or len(phrase) > 4):
        return phrase.lower()
    return phrase


_CJK_FUNCTION_CHARS = frozenset("的了是在和有我这不人他她它们也就都而及与着或一个上中为以")
_KANJI_KATAKANA_RUN = re.compile(r"[\u30a0-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f]{2,}")


def _cjk_keywords(text: str) -> list[str]:
    """Frequent character runs and bigrams: YAKE needs spaces between words, CJK has none."""
    counts: Counter[str] = Counter()
    for run in _KANJI_KATAKANA_RUN.findall(text[: KEYWORD_MAX_WORDS * 2]):
        if len(run) <= 4:
            counts[run] += 1
            continue
        for i in range(len(run) - 1):
            bigram = run[i : i + 2]
            if not (set(bigram) & _CJK_FUNCTION_CHARS):
                counts[bigram] += 1
    return [word for word, _ in counts.most_common(KEYWORD_COUNT)]


# --- Structured fields ----------------------------------------------------------------------

_MONTHS = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_DATE_PATTERNS = re.compile(
    r"(?<![\d.])(?:"
    r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
    r"|(?:0?[1-9]|[12]\d|3[01])[./-](?:0?[1-9]|[12]\d|3[01])[./-](?:\d{4}|\d{2})"
    rf"|(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTHS},?\s+\d{{4}}"
    rf"|{_MONTHS}\s+(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?,?\s+\d{{4}}"
    r")(?![\d.]\d)",
    re.IGNORECASE,
)
_NUMBER = r"\d{1,3}(?:[,.\u00a0\u202f ]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_CURRENCY_CODES = r"USD|EUR|GBP|JPY|CHF|CAD|AUD|NZD|CNY|INR|RUB|SEK|NOK|DKK|PLN|CZK|BRL|MXN"
_SCALE = r"(?:\s?(?:million|billion|thousand|mn|bn|[mk])\b)?"
_AMOUNT_PATTERNS = re.compile(
    r"(?:(?:US|A|C|NZ|HK)?\$|[€£¥₹₽₩])\s?(?:"
    + _NUMBER
    + r")(?![\d])"
    + _SCALE
    + r"|\b(?:"
    + _CURRENCY_CODES
    + r")\s?(?:"
    + _NUMBER
    + r")(?![\d])"
    + _SCALE
    + r"|(?<![\d.,])(?:"
    + _NUMBER
    + r")\s?(?:[€£¥₹₽]|(?:"
    + _CURRENCY_CODES
    + r")\b"
    r"|(?:dollars|euros|pounds)\b)(?!\s?\d)"
)
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_REFERENCE_CODE = r"([A-Z0-9][A-Z0-9\-/_.]{2,30}[A-Z0-9])"
_NUMBER_WORD = r"(?:no\.?|number|num\.?|nr\.?|#|id)"
# Labels that name a reference on their own ("Invoice INV-1") and ones that need a number word
# ("Account number 123", not "account GB29 ...").
_LABELLED_REFERENCE = re.compile(
    r"\b(?:invoice|inv|receipt|order|purchase\s+order|po|reference|ref|contract|quote|"
    r"quotation|transaction|booking|confirmation)"
    rf"\s*{_NUMBER_WORD}?\s*[:#.]?\s*{_REFERENCE_CODE}"
    r"|\b(?:account|acct|customer|client|case|ticket|policy|membership|order|tax|vat)"
    rf"\s*{_NUMBER_WORD}\s*[:#.]?\s*{_REFERENCE_CODE}",
    re.IGNORECASE,
)
_CODED_REFERENCE = re.compile(r"\b[A-Z]{2,5}-\d[\dA-Z]*(?:-[\dA-Z]+)*\b")


def extract_fields(text: str) -> dict[str, list[str]]:
    """Dates, monetary amounts, email addresses and invoice/reference numbers, as written."""
    references = [
        code
        for match in _LABELLED_REFERENCE.finditer(text)
        if (code := match.group(1) or match.group(2)) and any(char.isdigit() for char in code)
    ]
    references += [m.group(0) for m in _CODED_REFERENCE.finditer(text)]
    return {
        "dates": _unique(m.group(0) for m in _DATE_PATTERNS.finditer(text)),
        "amounts": _unique(m.group(0) for m in _AMOUNT_PATTERNS.finditer(text)),
        "emails": _unique(m.group(0) for m in _EMAIL.finditer(text)),
        "references": _unique(references),
    }


def _unique(values: Any) -> list[str]:
    seen: dict[str, None] = {}
    for value in values:
        cleaned = " ".join(str(value).split()).strip(" .,;:")
        if cleaned and cleaned not in seen:
            seen[cleaned] = None
            if len(seen) == MAX_FIELD_VALUES:
                break
    return list(seen)
