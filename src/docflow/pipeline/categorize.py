"""Put a document in a category: explainable rules now, a learned classifier later."""

from __future__ import annotations

import io
import itertools
import json
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from docflow.pipeline.types import Analysis, Categorization

DEFAULT_CATEGORIES: list[str] = [
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
# Below this score the evidence is too thin to name a category.
MIN_SCORE = 3.0
OTHER_CONFIDENCE = 0.2
# Categories show in the first pages; reading further only adds noise and time.
MAX_CATEGORIZE_CHARS = 50_000

_RULES: dict[str, list[tuple[str, float]]] = {
    "invoice": [
        (r"\binvoice\s*(?:no\.?|number|num|#|date|total)", 3),
        (r"\b(?:tax\s+)?invoice\b", 2),
        (r"\bamount\s+due\b|\bbalance\s+due\b|\btotal\s+due\b", 2.5),
        (r"\bbill(?:ed)?\s+to\b", 2),
        (r"\bdue\s+date\b|\bpayment\s+due\b", 1.5),
        (r"\bpayment\s+terms\b", 2),
        (r"\bnet\s+\d{1,2}\b", 1),
        (r"\bremit\b", 1.5),
        (r"\biban\b|\bswift\b|\bbank\s+transfer\b|\bsort\s+code\b", 1),
        (r"\bvat\b|\bsales\s+tax\b", 0.5),
        (r"\bsubtotal\b", 0.5),
        (r"\b(?:unit\s+price|qty|quantity)\b", 1),
        (r"\b(?:rechnung|facture|factura|fattura|счёт|счет)\b", 3),
    ],
    "receipt": [
        (r"\breceipt\b", 2),
        (r"\bthank\s+you\s+for\s+(?:shopping|your\s+purchase|your\s+order|visiting)\b", 3),
        (r"\bcashier\b", 2.5),
        (r"\bchange\s+due\b|\bchange\s*[$€£]", 2.5),
        (r"\b(?:visa|mastercard|amex|debit|credit)\b.{0,20}(?:ending|\*{2,}|x{3,})", 2.5),
        (r"\bauth(?:orization)?\s+code\b", 2),
        (r"\bregister\s*#?\s*\d", 1.5),
        (r"\bstore\s*#\s*\d", 1.5),
        (r"\bamount\s+paid\b|\btotal\s+paid\b|\bpaid\s+by\b", 1.5),
        (r"\breturns?\b.{0,40}\bdays\b", 1),
        (r"\b(?:quittung|kassenbon|reçu|recibo|чек)\b", 3),
    ],
    "contract": [
        (r"\bagreement\b", 2),
        (r"\bwhereas\b", 2.5),
        (r"\bhereinafter\b|\bhereto\b|\bhereunder\b", 2.5),
        (r"\bin\s+witness\s+whereof\b", 3),
        (r"\bparties\b", 1.5),
        (r"\bshall\b", 1),
        (r"\bgoverning\s+law\b|\bgoverned\s+by\s+the\s+laws?\b", 2.5),
        (r"\bterminat(?:e|ion)\b", 1),
        (r"\bindemnif", 2),
        (r"\bconfidential(?:ity)?\b", 0.5),
        (r"\beffective\s+date\b", 1.5),
        (r"\bby\s+and\s+between\b", 2.5),
        (r"\bterms\s+and\s+conditions\b", 1),
        (r"\b(?:vertrag|contrat|contrato|договор)\b", 3),
    ],
    "resume": [
        (r"\bcurriculum\s+vitae\b|\brésumé\b|\bresume\b", 3),
        (r"\b(?:work|professional)\s+experience\b|\bemployment\s+history\b", 3),
        (r"^\s*education\b", 2),
        (r"^\s*(?:technical\s+)?skills\b", 2),
        (r"\bprofessional\s+summary\b|\bcareer\s+objective\b|\bprofile\s+summary\b", 2),
        (r"\bcertifications?\b", 1),
        (r"\breferences\s+(?:are\s+)?available\b", 3),
        (r"linkedin\.com/in/", 2),
        (r"\b(?:b\.?sc|m\.?sc|b\.?a|bachelor|master'?s|ph\.?d|mba)\b", 1),
        (r"\b(?:19|20)\d{2}\s*[\u2013-]\s*(?:present|current|now|(?:19|20)\d{2})\b", 1.5),
        (r"\b(?:lebenslauf|curriculum|резюме)\b", 3),
    ],
    "letter": [
        (r"^\s*dear\s+\w", 3),
        (
            r"^\s*(?:yours\s+(?:sincerely|faithfully|truly)|sincerely(?:\s+yours)?|"
            r"(?:kind|best|warm)\s+regards)\s*,?\s*$",
            3,
        ),
        (r"\bto\s+whom\s+it\s+may\s+concern\b", 3),
        (r"\bi\s+am\s+writing\b", 2),
        (r"\bi\s+look\s+forward\s+to\b", 1.5),
        (r"\benclos(?:ed|ure)\b", 1),
        (r"\b(?:sehr\s+geehrte|madame,\s+monsieur|estimad[oa]|уважаем)", 3),
    ],
    "report": [
        (r"\bexecutive\s+summary\b", 3),
        (r"\breport\b", 1.5),
        (r"\bfindings\b", 1.5),
        (r"\brecommendations?\b", 1.5),
        (r"\b(?:q[1-4]|quarter(?:ly)?|annual|fiscal\s+year|year[- ]on[- ]year)\b", 1),
        (r"\bprepared\s+(?:by|for)\b", 1.5),
        (r"^\s*conclusions?\b", 1),
        (r"\b(?:figure|table|chart)\s+\d", 1),
        (r"\bkpis?\b", 1),
        (r"\b(?:bericht|rapport|informe|отч[её]т)\b", 2),
    ],
    "academic_paper": [
        (r"^\s*abstract\b", 3),
        (r"^\s*keywords?\s*:", 1.5),
        (r"\bet\s+al\.?", 2),
        (r"\brelated\s+work\b|\bmethodology\b|\bliterature\s+review\b", 2),
        (r"^\s*(?:references|bibliography)\s*$", 2),
        (r"\bdoi\s*[:.]?\s*10\.\d{4,}", 2.5),
        (r"\barxiv\b", 2),
        (r"\bin\s+this\s+paper\b|\bwe\s+propose\b", 2),
        (r"\[\d+(?:\s*[,\u2013-]\s*\d+)*\]", 1),
        (r"\bproceedings\b|\bjournal\s+of\b|\bconference\s+on\b", 1),
        (r"\bhypothes[ie]s\b", 1),
        (r"\bexperiments?\b|\bdatasets?\b", 0.5),
    ],
    "form": [
        (r"_{5,}", 2),
        (r"\bplease\s+(?:complete|fill\s+in|fill\s+out|print|tick|check|return)\b", 3),
        (r"\bfor\s+office\s+use\s+only\b", 3),
        (r"\bapplication\s+form\b|\bregistration\s+form\b|\bform\b", 1.5),
        (r"\[\s\]|☐|□", 2),
        (r"\bdate\s+of\s+birth\b", 1.5),
        (r"\b(?:first|last|full|middle)\s+name\b", 1.5),
        (r"\bapplicant\b", 1.5),
        (r"\bblock\s+capitals\b", 2),
        (r"\b(?:tick|check)\s+(?:one|all|the\s+box)", 2),
        (r"\bsignature\b", 0.5),
    ],
}

_FILENAME_HINTS: dict[str, str] = {
    "invoice": r"invoice|rechnung|facture|factura|\binv\b",
    "receipt": r"receipt|quittung|recibo",
    "contract": r"contract|agreement|\bnda\b|vertrag",
    "resume": r"resume|résumé|\bcv\b|lebenslauf",
    "letter": r"letter|brief\b",
    "report": r"report|bericht",
    "academic_paper": r"paper|thesis|article|preprint",
    "form": r"\bform\b|application",
}
FILENAME_HINT_WEIGHT = 2.0
# How far a qualifying model outweighs the rules (the rest of the say stays with the rules).
MODEL_WEIGHT = 0.8
# A model trained on less than this would be guessing; the stage keeps to the rules until then.
MIN_MODEL_SAMPLES = 10
MIN_MODEL_CLASSES = 2


@dataclass(frozen=True, slots=True)
class _Rule:
    pattern: re.Pattern[str]
    weight: float


_COMPILED: dict[str, list[_Rule]] = {
    category: [_Rule(re.compile(p, re.IGNORECASE | re.MULTILINE), w) for p, w in rules]
    for category, rules in _RULES.items()
}
_COMPILED_HINTS = {
    category: re.compile(pattern, re.IGNORECASE) for category, pattern in _FILENAME_HINTS.items()
}


def category_scores(text: str, filename: str, analysis: Analysis) -> dict[str, float]:
    """The evidence for each category: the weights of the rules that match, added up."""
    sample = text[:MAX_CATEGORIZE_CHARS]
    # Underscores and dashes separate words in file names ("cv_jane.pdf", "invoice-12.pdf").
    name = re.sub(r"[_\-.]+", " ", filename)
    scores: dict[str, float] = {}
    for category, rules in _COMPILED.items():
        score = sum(rule.weight for rule in rules if rule.pattern.search(sample))
        if _COMPILED_HINTS[category].search(name):
            score += FILENAME_HINT_WEIGHT
        scores[category] = score
    amounts = len(analysis.fields.get("amounts", []))
    if amounts >= 2:
        scores["invoice"] += 1
        scores["receipt"] += 1
    if analysis.fields.get("references"):
        scores["invoice"] += 0.5
    return scores


def rule_categorize(text: str, filename: str, analysis: Analysis) -> Categorization:
    """The best-supported built-in category, with a confidence from strength and margin."""
    scores = category_scores(text, filename, analysis)
    ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)
    (best, top), (_, runner_up) = ranked[0], ranked[1]
    if top < MIN_SCORE:
        return Categorization(category="other", confidence=OTHER_CONFIDENCE)
    strength = 1 - math.exp(-top / 6)
    margin = (top - runner_up) / top
    confidence = strength * (0.4 + 0.6 * margin)
    return Categorization(category=best, confidence=round(min(max(confidence, 0.05), 0.99), 3))


def categorize(
    text: str,
    filename: str,
    analysis: Analysis,
    *,
    classifier: Classifier | None = None,
    taxonomy: Mapping[str, str | None] | None = None,
) -> Categorization:
    """The category, from the rules alone or from the rules and a learned classifier together.

    `taxonomy` maps each category name to the built-in rule set behind it (None for categories
    an admin added); without it the default taxonomy applies. `classifier` is the newest model
    trained on reviewed documents, or None while there is none worth using.
    """
    names = dict(taxonomy) if taxonomy is not None else {c: c for c in DEFAULT_CATEGORIES}
    rules = rule_categorize(text, filename, analysis)
    by_rule = {key: name for name, key in names.items() if key is not None}
    rule_name = by_rule.get(rules.category) or by_rule.get("other") or "other"
    if classifier is None or not names:
        return Categorization(category=rule_name, confidence=rules.confidence)
    model = {
        label: p
        for label, p in classifier.probabilities(model_input(text, filename)).items()
        if label in names
    }
    if not model or sum(model.values()) <= 0:
        return Categorization(category=rule_name, confidence=rules.confidence)
    return combine(rules, rule_name, model, list(names))


def combine(
    rules: Categorization, rule_name: str, model: Mapping[str, float], names: list[str]
) -> Categorization:
    """Blend the rules' verdict with the model's probabilities into one honest probability.

    The model learnt this installation's taxonomy from reviewers, so it speaks first, but only
    for the categories it has seen: when the rules are sure of a category the model was never
    shown, the model's say shrinks by that much. The result is a probability over `names`.
    """
    total = sum(model.values())
    model = {label: p / total for label, p in model.items()}
    rest = [name for name in names if name != rule_name]
    if rules.category == "other" and rules.confidence <= OTHER_CONFIDENCE:
        prior = {name: 1 / len(names) for name in names}
        share = 1.0
    else:
        spread = (1 - rules.confidence) / len(rest) if rest else 0.0
        prior = dict.fromkeys(rest, spread)
        prior[rule_name] = rules.confidence
        # Rules sure of a category the model has never been shown keep most of the say.
        share = 1.0 if rule_name in model else 1 - rules.confidence
    trust = MODEL_WEIGHT * share
    blended = {
        name: trust * model.get(name, 0.0) + (1 - trust) * prior.get(name, 0.0) for name in names
    }
    best = max(blended, key=lambda name: blended[name])
    return Categorization(category=best, confidence=round(min(blended[best], 0.99), 3))


def model_input(text: str, filename: str) -> str:
    """What the classifier reads: the file name's words, then the start of the text."""
    name = re.sub(r"[_\-.]+", " ", filename)
    return f"{name}\n{text[:MAX_CATEGORIZE_CHARS]}"


# --- Learned classifier ---------------------------------------------------------------------

_FORMAT = "docflow-classifier-v1"


class Classifier:
    """TF-IDF + logistic regression, trained on reviewed documents.

    Serialised as JSON and NumPy arrays (never pickle), so loading a model cannot run code.
    Prediction needs only NumPy; scikit-learn is imported only to train.
    """

    def __init__(
        self,
        vocabulary: dict[str, int],
        idf: Any,
        coef: Any,
        intercept: Any,
        classes: list[str],
    ) -> None:
        self._vocabulary = vocabulary
        self._idf = idf
        self._coef = coef
        self._intercept = intercept
        self.classes = classes

    @classmethod
    def train(
        cls, samples: list[tuple[str, str]], weights: list[float] | None = None
    ) -> Classifier:
        """Fit on (text, label) pairs. Needs at least two different labels.

        `weights` lets a reviewer's correction count for more than a confirmation.
        """
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        labels = [label for _, label in samples]
        if len(set(labels)) < 2:
            raise ValueError("training needs samples of at least two categories")
        vectorizer = TfidfVectorizer(analyzer=_analyze, sublinear_tf=True, max_features=50_000)
        features = vectorizer.fit_transform([text for text, _ in samples])
        # Balanced classes: a burst of corrections to one category must not swamp the others.
        model = LogisticRegression(max_iter=1000, C=30.0, class_weight="balanced")
        model.fit(features, labels, sample_weight=weights)
        vocabulary = {str(term): int(index) for term, index in vectorizer.vocabulary_.items()}
        return cls(
            vocabulary=vocabulary,
            idf=vectorizer.idf_,
            coef=model.coef_,
            intercept=model.intercept_,
            classes=[str(label) for label in model.classes_],
        )

    def probabilities(self, text: str) -> dict[str, float]:
        """The probability of each class the model knows, summing to 1."""
        import numpy as np

        vector = np.zeros(len(self._vocabulary))
        for term in _analyze(text):
            index = self._vocabulary.get(term)
            if index is not None:
                vector[index] += 1
        vector = np.where(vector > 0, 1 + np.log(np.maximum(vector, 1)), 0) * self._idf
        norm = float(np.linalg.norm(vector))
        if norm > 0:
            vector /= norm
        logits = self._coef @ vector + self._intercept
        if len(self.classes) == 2:
            positive = 1 / (1 + math.exp(-float(logits[0])))
            probabilities = np.array([1 - positive, positive])
        else:
            shifted = np.exp(logits - logits.max())
            probabilities = shifted / shifted.sum()
        return {label: float(p) for label, p in zip(self.classes, probabilities, strict=True)}

    def predict(self, text: str) -> Categorization:
        probabilities = self.probabilities(text)
        best = max(probabilities, key=lambda label: probabilities[label])
        return Categorization(category=best, confidence=round(probabilities[best], 3))

    def to_bytes(self) -> bytes:
        import numpy as np

        header = json.dumps(
            {"format": _FORMAT, "classes": self.classes, "vocabulary": self._vocabulary}
        )
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            header=np.frombuffer(header.encode("utf-8"), dtype=np.uint8),
            idf=self._idf,
            coef=self._coef,
            intercept=self._intercept,
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Classifier:
        import numpy as np

        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                header = json.loads(arrays["header"].tobytes().decode("utf-8"))
                idf, coef, intercept = arrays["idf"], arrays["coef"], arrays["intercept"]
        except (OSError, ValueError, KeyError) as exc:
            raise ValueError("not a saved docflow classifier") from exc
        if header.get("format") != _FORMAT:
            raise ValueError("not a saved docflow classifier")
        return cls(
            vocabulary=header["vocabulary"],
            idf=idf,
            coef=coef,
            intercept=intercept,
            classes=list(header["classes"]),
        )


_TOKEN = re.compile(r"(?u)\b\w\w+\b")


def _analyze(text: str) -> list[str]:
    """Lower-cased, accent-stripped words and word pairs; used by training and prediction."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    words = _TOKEN.findall(plain)
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
