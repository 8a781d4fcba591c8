"""Each stage as load → compute → apply. `compute` is the pure pipeline call; the rest is I/O."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from docflow.categories import learning
from docflow.categories import training_repository as categories
from docflow.config import get_settings
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


class Original:
    """A document's original, copied from storage to a private temporary file for one stage.

    `with original as path:` hands the stage the path and removes the file afterwards, whatever
    happens; should the stage never get that far, the file goes when this object does.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.remove = weakref.finalize(self, _unlink, path)

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *_: object) -> None:
        self.remove()


def spool_original(session: Session, doc: Document) -> Original:
    """Copy the original out of storage a chunk at a time: it is never in memory whole."""
    directory = _spool_dir()
    fd, name = tempfile.mkstemp(prefix=f"{doc.id.hex}-", suffix=".original", dir=directory)
    original = Original(Path(name))
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in get_storage().read(session, doc.id):
                fh.write(chunk)
    except BaseException:
        original.remove()
        raise
    return original


def _spool_dir() -> Path:
    """`$TMPDIR/docflow-spool`, swept of files that no running stage can still be reading:
    a worker killed mid-stage leaves its copy behind."""
    directory = Path(tempfile.gettempdir()) / "docflow-spool"
    directory.mkdir(mode=0o700, exist_ok=True)
    # Celery kills a task at the hard time limit, so an older file is nobody's.
    stale = time.time() - 2 * get_settings().stage_time_limit
    with os.scandir(directory) as entries:
        for entry in entries:
            with contextlib.suppress(OSError):
                if entry.stat().st_mtime < stale:
                    os.unlink(entry.path)
    return directory


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)


# The text a task just extracted, for the analyze and categorize stages it chains right after,
# so they need not read back what it has just written. One document; cleared per task.
_carried: dict[uuid.UUID, str] = {}


def forget_carried() -> None:
    _carried.clear()


def _text(session: Session, doc: Document) -> str:
    text = _carried.get(doc.id)
    if text is not None:
        return text
    text = repo.load_text(session, doc.id)
    if text is None:
        raise StageError("The extracted text is missing; reprocess this document from extract.")
    return text


def _load_validate(session: Session, doc: Document) -> tuple[Original, str, str | None]:
    return spool_original(session, doc), doc.filename, doc.declared_type


def _validate(args: tuple[Original, str, str | None], _progress: ProgressCallback) -> Validation:
    original, filename, declared_type = args
    with original as path:
        return validate(path, filename, declared_type)


def _apply_validate(session: Session, doc: Document, result: Validation) -> dict[str, Any]:
    doc.kind, doc.content_type = result.kind.value, result.content_type
    return {"kind": result.kind.value, "content_type": result.content_type}


def _load_extract(session: Session, doc: Document) -> tuple[Original, FileKind]:
    if doc.kind is None:
        raise StageError("The file was never validated; reprocess it from validate.")
    return spool_original(session, doc), FileKind(doc.kind)


def _extract(args: tuple[Original, FileKind], progress: ProgressCallback) -> Extraction:
    original, kind = args
    with original as path:
        return extract_text(path, kind, progress)


def _apply_extract(session: Session, doc: Document, result: Extraction) -> dict[str, Any]:
    repo.save_text(session, doc.id, result.text)
    _carried.clear()
    _carried[doc.id] = result.text
    doc.page_count = result.page_count
    doc.doc_metadata = {k: v for k, v in result.metadata.items() if v not in (None, "")}
    title = result.metadata.get("title")
    if not doc.title and isinstance(title, str) and title.strip():
        doc.title = title.strip()[:500]
    data: dict[str, Any] = {"page_count": result.page_count, "characters": len(result.text)}
    if result.metadata.get("text_truncated"):
        data["text_truncated"] = True
    return data


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
    Stage.VALIDATE: StageSpec(_load_validate, _validate, _apply_validate),
    Stage.EXTRACT: StageSpec(_load_extract, _extract, _apply_extract),
    Stage.ANALYZE: StageSpec(_text, lambda text, _progress: analyze(text), _apply_analyze),
    Stage.CATEGORIZE: StageSpec(_load_categorize, _categorize, _apply_categorize),
}
