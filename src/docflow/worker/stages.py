"""Each stage as load → compute → apply. `compute` is the pure pipeline call; the rest is I/O."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from docflow.categories import learning
from docflow.categories import training_repository as categories
from docflow.documents import stage_repository as repo
from docflow.models import Document, Stage
from docflow.pipeline.analyze import analyze
from docflow.pipeline.categorize import Classifier, categorize
from docflow.pipeline.extract import extract_text
from docflow.pipeline.types import (
    Analysis,
    Categorization,
    Extraction,
    FileKind,
    ProgressCallback,
    StageError,
    Validation,
)
from docflow.pipeline.validate import validate
from docflow.storage import get_storage


@dataclass(frozen=True, slots=True)
class StageSpec:
    load: Callable[[Session, Document], Any]
    compute: Callable[[Any, ProgressCallback], Any]
    apply: Callable[[Session, Document, Any], dict[str, Any]]  # returns event data


def _original(session: Session, doc: Document) -> bytes:
    return b"".join(get_storage().read(session, doc.id))


def _text(session: Session, doc: Document) -> str:
    text = repo.load_text(session, doc.id)
    if text is None:
        raise StageError("The extracted text is missing; reprocess this document from extract.")
    return text


def _load_validate(session: Session, doc: Document) -> tuple[bytes, str, str | None]:
    return _original(session, doc), doc.filename, doc.declared_type


def _apply_validate(session: Session, doc: Document, result: Validation) -> dict[str, Any]:
    doc.kind, doc.content_type = result.kind.value, result.content_type
    return {"kind": result.kind.value, "content_type": result.content_type}


def _load_extract(session: Session, doc: Document) -> tuple[bytes, FileKind]:
    if doc.kind is None:
        raise StageError("The file was never validated; reprocess it from validate.")
    return _original(session, doc), FileKind(doc.kind)


def _apply_extract(session: Session, doc: Document, result: Extraction) -> dict[str, Any]:
    repo.save_text(session, doc.id, result.text)
    doc.page_count = result.page_count
    doc.doc_metadata = {k: v for k, v in result.metadata.items() if v not in (None, "")}
    title = result.metadata.get("title")
    if not doc.title and isinstance(title, str) and title.strip():
        doc.title = title.strip()[:500]
    return {"page_count": result.page_count, "characters": len(result.text)}


def _apply_analyze(session: Session, doc: Document, result: Analysis) -> dict[str, Any]:
    doc.language, doc.word_count = result.language, result.word_count
    doc.reading_time_minutes = result.reading_time_minutes
    doc.summary, doc.keywords, doc.fields = (
        result.summary,
        list(result.keywords),
        dict(result.fields),
    )
    return {"language": result.language, "word_count": result.word_count}


@dataclass(frozen=True, slots=True)
class CategorizeInput:
    text: str
    filename: str
    analysis: Analysis
    classifier: Classifier | None  # the newest trained model, when it has learnt enough
    taxonomy: dict[str, str | None]


def _load_categorize(session: Session, doc: Document) -> CategorizeInput:
    analysis = Analysis(
        language=doc.language,
        word_count=doc.word_count or 0,
        reading_time_minutes=doc.reading_time_minutes or 0.0,
        summary=doc.summary or "",
        keywords=list(doc.keywords or []),
        fields=dict(doc.fields or {}),
    )
    return CategorizeInput(
        _text(session, doc),
        doc.filename,
        analysis,
        learning.current_classifier(session),
        categories.taxonomy(session),
    )


def _categorize(args: CategorizeInput, _progress: ProgressCallback) -> Categorization:
    return categorize(
        args.text,
        args.filename,
        args.analysis,
        classifier=args.classifier,
        taxonomy=args.taxonomy or None,
    )


def _apply_categorize(session: Session, doc: Document, result: Categorization) -> dict[str, Any]:
    doc.category, doc.category_confidence = result.category, round(result.confidence, 4)
    return {"category": result.category, "confidence": doc.category_confidence}


SPECS: dict[Stage, StageSpec] = {
    Stage.VALIDATE: StageSpec(
        _load_validate, lambda args, _progress: validate(*args), _apply_validate
    ),
    Stage.EXTRACT: StageSpec(
        _load_extract,
        lambda args, progress: extract_text(args[0], args[1], progress),
        _apply_extract,
    ),
    Stage.ANALYZE: StageSpec(_text, lambda text, _progress: analyze(text), _apply_analyze),
    Stage.CATEGORIZE: StageSpec(_load_categorize, _categorize, _apply_categorize),
}
