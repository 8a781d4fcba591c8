"""Each stage as load → compute → apply. `compute` is the pure pipeline call; the rest is I/O."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import uuid
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from docflow import jsontext
from docflow.categories import learning
from docflow.config import get_settings
from docflow.documents import stage_repository as repo
from docflow.documents.stage_repository import DocState, Transitioned
from docflow.models import Stage
from docflow.pipeline._source import Source
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
class Outcome:
    """What a finished stage writes: columns (name -> SQL expression over `params`), the data of
    its `stage.completed` event, and for extraction the text. `state`: the DocState fields it
    changes that a later stage reads, for one that runs before this outcome is committed."""

    sets: dict[str, str]
    params: dict[str, Any]
    data: dict[str, Any]
    text: str | None = None
    state: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StageSpec:
    load: Callable[[Session, Transitioned], Any]
    compute: Callable[[Any, ProgressCallback], Any]
    apply: Callable[[DocState, Any], Outcome]


class Original:
    """A document's original for one stage: copied from storage to a private temporary file, or
    the bytes themselves when the claim read a small one (the stages read both alike, and there
    is no file to write, read back and remove).

    `with original as source:` hands the stage the path (or bytes) and removes the file
    afterwards, whatever happens; should the stage never get that far, the file goes when this
    object does.
    """

    def __init__(self, source: Source) -> None:
        self.source = source
        self.remove: Callable[[], object] = (
            weakref.finalize(self, _unlink, source) if isinstance(source, Path) else _kept
        )

    def __enter__(self) -> Source:
        return self.source

    def __exit__(self, *_: object) -> None:
        self.remove()


def spool_original(session: Session, document_id: uuid.UUID) -> Original:
    """Copy the original out of storage a chunk at a time: it is never in memory whole."""
    return spool_chunks(document_id, get_storage().read(session, document_id))


def spool_chunks(document_id: uuid.UUID, chunks: Iterable[bytes]) -> Original:
    directory = _spool_dir()
    fd, name = tempfile.mkstemp(prefix=f"{document_id.hex}-", suffix=".original", dir=directory)
    original = Original(Path(name))
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
    except BaseException:
        original.remove()
        raise
    return original


INLINE_ORIGINAL_BYTES = 1024 * 1024


def inline_original_bytes(stage: Stage) -> int:
    """How large an original the claim of `stage` reads itself (0: the stage needs none, or
    storage is not the database): one round trip fewer for the small files that most are."""
    settings = get_settings()
    if stage is not Stage.VALIDATE or settings.storage_backend != "database":
        return 0
    return INLINE_ORIGINAL_BYTES


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


def _kept() -> None:
    """Bytes in memory: nothing to remove."""


# What a task has just read or produced, for the stages it chains right after, so they need not
# read back what is already in hand: the spooled original (validate -> extract) and the extracted
# text (extract -> analyze -> categorize). One document; cleared when the task ends.
_carried: dict[uuid.UUID, str] = {}
_carried_original: dict[uuid.UUID, Original] = {}


def forget_carried() -> None:
    _carried.clear()
    while _carried_original:
        _carried_original.popitem()[1].remove()


def _text(session: Session, doc: DocState) -> str:
    text = _carried.get(doc.id)
    if text is not None:
        return text
    text = repo.load_text(session, doc.id)
    if text is None:
        raise StageError("The extracted text is missing; reprocess this document from extract.")
    return text


def _original(session: Session, doc: DocState) -> Original:
    original = _carried_original.pop(doc.id, None)
    return original if original is not None else spool_original(session, doc.id)


def _load_validate(session: Session, state: Transitioned) -> tuple[Original, str, str | None]:
    doc = state.doc
    forget_carried()
    if state.original is not None:  # read with the claim (a small file): kept in memory
        original = Original(state.original)
    else:
        original = spool_original(session, doc.id)
    # Kept for extraction, should this task chain it; removed when the task ends otherwise.
    _carried_original[doc.id] = original
    return original, doc.filename, doc.declared_type


def _validate(args: tuple[Original, str, str | None], _progress: ProgressCallback) -> Validation:
    original, filename, declared_type = args
    return validate(original.source, filename, declared_type)


def _apply_validate(doc: DocState, result: Validation) -> Outcome:
    return Outcome(
        {"kind": ":kind", "content_type": ":content_type"},
        {"kind": result.kind.value, "content_type": result.content_type},
        {"kind": result.kind.value, "content_type": result.content_type},
        state={"kind": result.kind.value},
    )


def _load_extract(session: Session, state: Transitioned) -> tuple[Original, FileKind]:
    doc = state.doc
    if doc.kind is None:
        raise StageError("The file was never validated; reprocess it from validate.")
    return _original(session, doc), FileKind(doc.kind)


def _extract(args: tuple[Original, FileKind], progress: ProgressCallback) -> Extraction:
    original, kind = args
    with original as source:
        return extract_text(source, kind, progress)


def _apply_extract(doc: DocState, result: Extraction) -> Outcome:
    _carried.clear()
    _carried[doc.id] = result.text
    metadata = {k: v for k, v in result.metadata.items() if v not in (None, "")}
    sets = {"page_count": ":page_count", "metadata": "CAST(:metadata AS jsonb)"}
    params: dict[str, Any] = {
        "page_count": result.page_count,
        "metadata": jsontext.dumps(metadata),
    }
    title = result.metadata.get("title")
    if isinstance(title, str) and title.strip():
        # Only where the document has none yet (the uploader's title wins).
        sets["title"] = "CASE WHEN coalesce(title, '') = '' THEN :new_title ELSE title END"
        params["new_title"] = title.strip()[:500]
    data: dict[str, Any] = {"page_count": result.page_count, "characters": len(result.text)}
    if result.metadata.get("text_truncated"):
        data["text_truncated"] = True
    return Outcome(sets, params, data, text=result.text)


def _apply_analyze(doc: DocState, result: Analysis) -> Outcome:
    keywords = jsontext.dumps(list(result.keywords))
    fields = jsontext.dumps(dict(result.fields))
    return Outcome(
        {
            "language": ":language",
            "word_count": ":word_count",
            "reading_time_minutes": ":reading_time_minutes",
            "summary": ":summary",
            "keywords": "CAST(:keywords AS jsonb)",
            "fields": "CAST(:fields AS jsonb)",
        },
        {
            "language": result.language,
            "word_count": result.word_count,
            "reading_time_minutes": result.reading_time_minutes,
            "summary": result.summary,
            "keywords": keywords,
            "fields": fields,
        },
        {"language": result.language, "word_count": result.word_count},
        # As categorization would read them back from the row (JSON both ways).
        state={
            "language": result.language,
            "word_count": result.word_count,
            "reading_time_minutes": result.reading_time_minutes,
            "summary": result.summary,
            "keywords": jsontext.loads(keywords),
            "fields": jsontext.loads(fields),
        },
    )


@dataclass(frozen=True, slots=True)
class CategorizeInput:
    text: str
    filename: str
    analysis: Analysis
    classifier: Classifier | None  # the newest trained model, when it has learnt enough
    taxonomy: dict[str, str | None]


def _load_categorize(session: Session, state: Transitioned) -> CategorizeInput:
    doc = state.doc
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
        learning.classifier_for(session, state.model_head),
        state.taxonomy or {},
    )


def _categorize(args: CategorizeInput, _progress: ProgressCallback) -> Categorization:
    return categorize(
        args.text,
        args.filename,
        args.analysis,
        classifier=args.classifier,
        taxonomy=args.taxonomy or None,
    )


def _apply_categorize(doc: DocState, result: Categorization) -> Outcome:
    confidence = round(result.confidence, 4)
    return Outcome(
        {"category": ":category", "category_confidence": ":category_confidence"},
        {"category": result.category, "category_confidence": confidence},
        {"category": result.category, "confidence": confidence},
    )


SPECS: dict[Stage, StageSpec] = {
    Stage.VALIDATE: StageSpec(_load_validate, _validate, _apply_validate),
    Stage.EXTRACT: StageSpec(_load_extract, _extract, _apply_extract),
    Stage.ANALYZE: StageSpec(
        lambda session, state: _text(session, state.doc),
        lambda text, _progress: analyze(text),
        _apply_analyze,
    ),
    Stage.CATEGORIZE: StageSpec(_load_categorize, _categorize, _apply_categorize),
}
