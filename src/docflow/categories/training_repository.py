"""SQL the worker uses for categories (synchronous): the taxonomy, training samples, models."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, func, select, text
from sqlalchemy.orm import Session

from docflow.models import Category, ClassifierModel, Document, DocumentEvent, DocumentText, Status

# Enough of each document to tell its kind; the categorize stage reads no further either.
SAMPLE_CHARS = 50_000
MAX_SAMPLES = 5_000
KEEP_MODELS = 5
# One trainer at a time across all workers (an arbitrary, fixed advisory-lock key).
TRAINING_LOCK = 0x0D0CF10C


@dataclass(frozen=True, slots=True)
class Sample:
    document_id: uuid.UUID
    filename: str
    text: str
    category: str


@dataclass(frozen=True, slots=True)
class ModelHead:
    version: int
    sample_count: int
    classes: list[str]
    created_at: datetime


def taxonomy(session: Session) -> dict[str, str | None]:
    rows = session.execute(select(Category.name, Category.rule_key).order_by(Category.id)).all()
    return {str(row[0]): row[1] for row in rows}


def training_lock(session: Session) -> None:
    """Wait for any other trainer, then hold the lock until this transaction ends.

    Waiting (not skipping) matters: an approval that lands while a model trains must still get
    its turn, or the newest corrections would wait for the next approval.
    """
    session.execute(text("select pg_advisory_xact_lock(:k)"), {"k": TRAINING_LOCK})


def latest_head(session: Session) -> ModelHead | None:
    row = session.execute(
        select(
            ClassifierModel.version,
            ClassifierModel.sample_count,
            ClassifierModel.classes,
            ClassifierModel.created_at,
        )
        .order_by(ClassifierModel.version.desc())
        .limit(1)
    ).first()
    return ModelHead(row[0], row[1], list(row[2]), row[3]) if row else None


def model_bytes(session: Session, version: int) -> bytes | None:
    stmt = select(ClassifierModel.data).where(ClassifierModel.version == version)
    data = session.execute(stmt).scalar_one_or_none()
    return bytes(data) if data is not None else None


def _labelled() -> ColumnElement[bool]:
    return and_(Document.status == Status.FINALISED.value, Document.category.is_not(None))


def labelled_count(session: Session) -> int:
    stmt = select(func.count()).select_from(Document).where(_labelled())
    return int(session.execute(stmt).scalar_one())


def corrected_since(session: Session, since: datetime | None) -> set[uuid.UUID]:
    """Documents whose reviewer changed the category at approval (after `since`, if given)."""
    stmt = select(DocumentEvent.document_id).where(
        DocumentEvent.type == "review.approved",
        DocumentEvent.data["corrections"].has_key("category"),
    )
    if since is not None:
        stmt = stmt.where(DocumentEvent.created_at > since)
    return set(session.execute(stmt).scalars())


def labelled_samples(session: Session) -> list[Sample]:
    """The newest approved documents with their final (reviewed) category and text."""
    stmt = (
        select(
            Document.id,
            Document.filename,
            func.left(DocumentText.content, SAMPLE_CHARS),
            Document.category,
        )
        .join(DocumentText, DocumentText.document_id == Document.id)
        .where(_labelled())
        .order_by(Document.reviewed_at.desc().nulls_last())
        .limit(MAX_SAMPLES)
    )
    return [Sample(r[0], r[1], r[2] or "", r[3]) for r in session.execute(stmt).all()]


def save_model(
    session: Session, data: bytes, sample_count: int, classes: list[str], info: dict[str, object]
) -> int:
    head = latest_head(session)
    version = (head.version if head else 0) + 1
    session.add(
        ClassifierModel(
            version=version, sample_count=sample_count, classes=classes, info=info, data=data
        )
    )
    session.flush()
    # Old versions are kept for a while so an admin can see how the model moved, not forever.
    session.execute(delete(ClassifierModel).where(ClassifierModel.version <= version - KEEP_MODELS))
    return version
