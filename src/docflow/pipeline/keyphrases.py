"""Key phrases by the YAKE method (Campos et al., 2020), in one linear pass.

The `yake` package scores the same statistics but builds a graph object per term and a
candidate object per n-gram; on a 1,000-word document that costs 100 ms and more. This keeps
plain counters instead: casing, position, frequency, relatedness to context and spread over
sentences for each word, then the YAKE score of every 1-3 word candidate (lower is better).
`bench/analyze_bench.py` compares its choices with the `yake` package's on the same texts.
"""

from __future__ import annotations

import functools
import math
import re
import statistics
from collections import Counter, defaultdict
from importlib import resources

MAX_NGRAM = 3
WINDOW = 1  # co-occurrence window of the relatedness feature, as in YAKE's default

_TOKEN = re.compile(r"[^\W_]+(?:['\u2019\-.][^\W_]+)*|[^\w\s]")
_WORDLIKE = re.compile(r"[^\W_]")
_FALLBACK_STOPWORDS = frozenset(
    "a an and are as at be by for from has have he her his i in is it its of on or our she "
    "that the their them they this to was we were will with you your".split()
)


@functools.lru_cache(maxsize=32)
def stopwords(language: str) -> frozenset[str]:
    """YAKE's own stop-word list for the language (it ships 34), else a small English one."""
    name = f"stopwords_{language[:2].lower()}.txt"
    try:
        data = resources.files("yake.core").joinpath("StopwordsList", name).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        return _FALLBACK_STOPWORDS
    text = data.decode("utf-8", errors="replace")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


class _Term:
    __slots__ = ("acronym", "left", "right", "sentences", "tf", "upper")

    def __init__(self) -> None:
        self.tf = 0
        self.upper = 0  # capitalised other than at the start of a sentence
        self.acronym = 0
        self.sentences: list[int] = []
        self.left: Counter[str] = Counter()
        self.right: Counter[str] = Counter()


class _Candidate:
    __slots__ = ("count", "surface")

    def __init__(self, surface: str) -> None:
        self.count = 1
        self.surface = surface


def keyphrases(
    sentences: list[str], language: str = "en", top: int = 30
) -> list[tuple[str, float]]:
    """(phrase, score) pairs, best (lowest score) first. Sentences bound every phrase."""
    stop = stopwords(language)
    terms: dict[str, _Term] = defaultdict(_Term)
    # Each candidate, by its lower-cased words: how often it occurs, and how it first looked.
    candidates: dict[tuple[str, ...], _Candidate] = {}
    for index, sentence in enumerate(sentences):
        chunk: list[tuple[str, str]] = []  # (surface, key) words between punctuation marks
        for position, match in enumerate(_TOKEN.finditer(sentence)):
            surface = match.group(0)
            if not _WORDLIKE.search(surface) or surface[0].isdigit():
                _add_candidates(chunk, stop, candidates)
                chunk = []
                continue
            key = surface.lower()
            term = terms[key]
            term.tf += 1
            if surface.isupper() and len(surface) > 1:
                term.acronym += 1
            elif surface[0].isupper() and position > 0:
                term.upper += 1
            if not term.sentences or term.sentences[-1] != index:
                term.sentences.append(index)
            if chunk:
                previous = chunk[-1][1]
                term.left[previous] += 1
                terms[previous].right[key] += 1
            chunk.append((surface, key))
        _add_candidates(chunk, stop, candidates)
    if not terms:
        return []
    weights = _term_weights(terms, stop, len(sentences))
    scored: list[tuple[str, float]] = []
    for words, candidate in candidates.items():
        inner = [weights[w] for w in words if w not in stop]
        if not inner:
            continue
        scored.append((candidate.surface, math.prod(inner) / (candidate.count * (1 + sum(inner)))))
    scored.sort(key=lambda item: item[1])
    return scored[:top]


def _add_candidates(
    chunk: list[tuple[str, str]],
    stop: frozenset[str],
    candidates: dict[tuple[str, ...], _Candidate],
) -> None:
    for start in range(len(chunk)):
        if chunk[start][1] in stop:
            continue
        for size in range(1, MAX_NGRAM + 1):
            end = start + size
            if end > len(chunk):
                break
            if chunk[end - 1][1] in stop:
                continue
            words = tuple(key for _, key in chunk[start:end])
            entry = candidates.get(words)
            if entry is None:
                candidates[words] = _Candidate(" ".join(s for s, _ in chunk[start:end]))
            else:
                entry.count += 1


def _term_weights(
    terms: dict[str, _Term], stop: frozenset[str], sentence_count: int
) -> dict[str, float]:
    """YAKE's H(w): high for common, evenly spread, context-promiscuous words."""
    valid = [t.tf for key, t in terms.items() if key not in stop]
    frequencies = valid or [t.tf for t in terms.values()]
    mean = statistics.fmean(frequencies)
    spread = statistics.pstdev(frequencies) if len(frequencies) > 1 else 0.0
    max_tf = max(t.tf for t in terms.values())
    weights: dict[str, float] = {}
    for key, term in terms.items():
        tf = term.tf
        casing = max(term.upper, term.acronym) / (1 + math.log(tf))
        position = math.log(math.log(3 + statistics.median(term.sentences)))
        frequency = tf / (mean + spread) if mean + spread else 0.0
        left = len(term.left) / max(sum(term.left.values()), 1)
        right = len(term.right) / max(sum(term.right.values()), 1)
        relatedness = 1 + (left + right) * tf / max_tf
        different = len(term.sentences) / max(sentence_count, 1)
        weights[key] = (relatedness * position) / (
            casing + frequency / relatedness + different / relatedness
        )
    return weights
