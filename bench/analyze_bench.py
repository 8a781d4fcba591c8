# a benchmark reports by printing
"""analyze(): milliseconds per 1,000 words, before (langdetect + the `yake` package) and after
(py3langid + our linear YAKE), side by side in one run, plus how often the two keyword
extractors agree.

    python bench/analyze_bench.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fixtures.corpus import generate
from tests.fixtures.files import SAMPLE_TEXTS

A = importlib.import_module("docflow.pipeline.analyze")


def yake_scorer(sentences: list[str], language: str, top: int) -> list[tuple[str, float]]:
    """The `yake` package, configured as the pipeline used it before."""
    import yake

    extractor = _YAKE.get(language)
    if extractor is None:
        extractor = yake.KeywordExtractor(
            lan=language, n=3, top=top, dedup_lim=0.8, dedup_func="jaro"
        )
        _YAKE[language] = extractor
    # It splits sentences only at punctuation: end every line-level unit with a full stop.
    prepared = " ".join(s if A._TERMINAL.search(s) else f"{s}." for s in sentences)
    return [(str(p), float(s)) for p, s in extractor.extract_keywords(prepared)]


_YAKE: dict[str, Any] = {}


def langdetect_language(text: str) -> str | None:
    from langdetect import DetectorFactory, detect_langs
    from langdetect.lang_detect_exception import LangDetectException

    sample = text[: A.LANGUAGE_SAMPLE_CHARS]
    if len(A._LETTER.findall(sample)) < A.MIN_LANGUAGE_LETTERS:
        return None
    DetectorFactory.seed = 0
    try:
        candidates = detect_langs(sample)
    except LangDetectException:
        return None
    if not candidates or candidates[0].prob < A.MIN_LANGUAGE_PROBABILITY:
        return None
    return str(candidates[0].lang).split("-")[0]


def before(text: str) -> Any:
    language = langdetect_language(text)
    return (
        language,
        A.summarize(text),
        A.extract_keywords(text, language, yake_scorer),
        A.extract_fields(text),
        A._count_words(text),
    )


def after(text: str) -> Any:
    return A.analyze(text)


def texts() -> dict[str, str]:
    docs = generate(12, seed=3)
    business = "\n\n".join(d.text for d in docs)
    prose = "\n\n".join(SAMPLE_TEXTS.values())
    return {
        "samples (1 doc each kind)": prose,
        "business corpus": business,
        "long report (x8)": "\n\n".join([prose] * 8),
    }


def per_kword(fn: Callable[[str], Any], text: str, rounds: int) -> float:
    words = A._count_words(text)[0]
    fn(text)  # warm: models loaded, caches filled
    times = []
    for _ in range(rounds):
        # CPU time of this process: on a shared machine, wall time mostly measures the others.
        started = time.process_time()
        fn(text)
        times.append(time.process_time() - started)
    return statistics.median(times) * 1000 / words * 1000


def parts(text: str, rounds: int) -> dict[str, tuple[float, float]]:
    language = A.detect_language(text)
    return {
        "language": (
            per_kword(langdetect_language, text, rounds),
            per_kword(A.detect_language, text, rounds),
        ),
        "keywords": (
            per_kword(lambda t: A.extract_keywords(t, language, yake_scorer), text, rounds),
            per_kword(lambda t: A.extract_keywords(t, language), text, rounds),
        ),
        "summary": (per_kword(A.summarize, text, rounds),) * 2,
        "fields": (per_kword(A.extract_fields, text, rounds),) * 2,
    }


def agreement() -> tuple[float, float]:
    """Mean share of our top-10 key phrases that YAKE also ranks in its top 10, and of top 5."""
    at10, at5 = [], []
    for doc in generate(4, seed=9):
        ours = [k.lower() for k in A.extract_keywords(doc.text, "en")]
        theirs = [k.lower() for k in A.extract_keywords(doc.text, "en", yake_scorer)]
        if ours and theirs:
            at10.append(len(set(ours) & set(theirs)) / min(len(ours), len(theirs)))
            at5.append(len(set(ours[:5]) & set(theirs[:5])) / min(5, len(ours), len(theirs)))
    return statistics.fmean(at10), statistics.fmean(at5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    rounds = parser.parse_args().rounds

    started = time.perf_counter()
    A.warm_up()
    cold_new = time.perf_counter() - started
    started = time.perf_counter()
    langdetect_language("Warm-up text in English, long enough to detect a language.")
    cold_old = time.perf_counter() - started

    print(f"analyze(): CPU ms per 1,000 words (median of {rounds} runs)")
    print(f"{'text':<28}{'words':>8}{'before':>10}{'after':>10}{'speed-up':>10}")
    for name, text in texts().items():
        old, new = per_kword(before, text, rounds), per_kword(after, text, rounds)
        print(f"{name:<28}{A._count_words(text)[0]:>8}{old:>10.1f}{new:>10.1f}{old / new:>9.1f}x")
    print("\nby step, business corpus (ms per 1,000 words): before -> after")
    for step, (old, new) in parts(texts()["business corpus"], rounds).items():
        print(f"  {step:<10}{old:>8.1f} -> {new:.1f}")
    at10, at5 = agreement()
    print(f"\nkeyword agreement with the yake package: top-10 {at10:.0%}, top-5 {at5:.0%}")
    print(
        f"one-time model load: langdetect {cold_old * 1000:.0f} ms, "
        f"py3langid + stop words {cold_new * 1000:.0f} ms (done at worker start)"
    )


if __name__ == "__main__":
    main()
