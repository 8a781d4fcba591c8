"""Learning from reviewers: train the classifier from approved documents, and load the newest
model for the categorize stage. Runs in the worker (synchronous sessions)."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass

from sqlalchemy.orm import Session

from docflow.categories import training_repository as repo
from docflow.pipeline.categorize import (
    MIN_MODEL_CLASSES,
    MIN_MODEL_SAMPLES,
    Classifier,
    model_input,
)

log = logging.getLogger(__name__)

# Retrain after this many new approvals, or at once after a reviewer corrects a category.
TRAIN_EVERY = 5
# A correction is the strongest signal there is: it counts as this many confirmations.
CORRECTION_WEIGHT = 2.0


@dataclass(frozen=True, slots=True)
class TrainingResult:
    trained: bool
    reason: str
    version: int | None = None
    sample_count: int = 0


def train_if_due(session: Session, *, force: bool = False) -> TrainingResult:
    """Train a new model version when enough has changed since the last one (or when forced)."""
    repo.training_lock(session)
    head = repo.latest_head(session)
    labelled = repo.labelled_count(session)
    if not force and head is not None:
        fresh = labelled - head.sample_count
        corrected = repo.corrected_since(session, head.created_at)
        if fresh < TRAIN_EVERY and not corrected:
            return TrainingResult(False, f"only {max(fresh, 0)} new approvals", head.version)
    samples = repo.labelled_samples(session)
    counts = Counter(sample.category for sample in samples)
    if len(samples) < MIN_MODEL_SAMPLES or len(counts) < MIN_MODEL_CLASSES:
        return TrainingResult(
            False,
            f"{len(samples)} approved documents in {len(counts)} categories; need "
            f"{MIN_MODEL_SAMPLES} in {MIN_MODEL_CLASSES}",
        )
    corrected_ids = repo.corrected_since(session, None)
    started = time.perf_counter()
    classifier = Classifier.train(
        [(model_input(s.text, s.filename), s.category) for s in samples],
        weights=[CORRECTION_WEIGHT if s.document_id in corrected_ids else 1.0 for s in samples],
    )
    info: dict[str, object] = {
        "per_class": dict(counts),
        "corrections": sum(s.document_id in corrected_ids for s in samples),
        "training_ms": round((time.perf_counter() - started) * 1000, 1),
    }
    version = repo.save_model(
        session, classifier.to_bytes(), len(samples), classifier.classes, info
    )
    log.info("trained category classifier v%s on %s documents", version, len(samples))
    return TrainingResult(True, "trained", version, len(samples))


class _ModelCache:
    """The newest usable model, loaded once per version per process: a new version is noticed
    by its head (read with the statement that starts categorize), and only then are its bytes
    read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version: int | None = None
        self._classifier: Classifier | None = None

    def current(self, session: Session) -> Classifier | None:
        head = repo.latest_head(session)
        return self.for_head(
            session, (head.version, head.sample_count, head.classes) if head else None
        )

    def for_head(
        self, session: Session, head: tuple[int, int, list[str]] | None
    ) -> Classifier | None:
        if head is None:
            return None
        version, sample_count, classes = head
        if sample_count < MIN_MODEL_SAMPLES or len(classes) < MIN_MODEL_CLASSES:
            return None
        with self._lock:
            if version == self._version:
                return self._classifier
        data = repo.model_bytes(session, version)
        if data is None:
            return None
        try:
            classifier = Classifier.from_bytes(data)
        except ValueError:
            log.warning("classifier v%s is unreadable; using the rules", version)
            return None
        with self._lock:
            self._version, self._classifier = version, classifier
        return classifier


_cache = _ModelCache()


def current_classifier(session: Session) -> Classifier | None:
    return _cache.current(session)


def classifier_for(session: Session, head: tuple[int, int, list[str]] | None) -> Classifier | None:
    """The classifier for a head already read (version, samples, classes); its bytes are read
    only when this process has not loaded that version yet."""
    return _cache.for_head(session, head)
