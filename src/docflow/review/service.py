"""Review actions: approve, reject, reprocess. Each is one transition and one audit event."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from docflow import jobs
from docflow.categories import service as categories
from docflow.documents import service as documents
from docflow.documents.lifecycle import Action, overall_progress, target
from docflow.documents.repository import DocumentRepository
from docflow.errors import AppError, Conflict
from docflow.events.log import record
from docflow.models import STAGES, Document, Stage, User
from docflow.review.schemas import ApproveRequest, RejectRequest, ReprocessRequest


async def approve(
    session: AsyncSession, user: User, document_id: uuid.UUID, body: ApproveRequest
) -> Document:
    doc = await documents.get_visible(session, user, document_id, for_update=True)
    # Checked before the document changes: the lookup must not flush a half-made approval.
    if body.category is not None:
        await categories.require(session, body.category)
    doc.status = target(doc, Action.APPROVE).value
    corrections: dict[str, dict[str, object]] = {}
    if body.category is not None and body.category != doc.category:
        corrections["category"] = {"from": doc.category, "to": body.category}
        doc.category, doc.category_confidence = body.category, 1.0
    if body.title is not None and body.title != doc.title:
        corrections["title"] = {"from": doc.title, "to": body.title}
        doc.title = body.title
    if body.keywords is not None:
        cleaned = _dedupe(body.keywords)
        if cleaned != doc.keywords:
            corrections["keywords"] = {"from": doc.keywords, "to": cleaned}
            doc.keywords = cleaned
    _reviewed(doc, user, body.note)
    doc.progress, doc.message = 100, "Approved"
    record(
        session,
        doc,
        "review.approved",
        actor=user.email,
        message=body.note or "Approved",
        data={"corrections": corrections},
    )
    # Every decision is a training example; the maintenance worker retrains when it is due.
    categories.enqueue_training(session, doc.id)
    return doc


async def reject(
    session: AsyncSession, user: User, document_id: uuid.UUID, body: RejectRequest
) -> Document:
    doc = await documents.get_visible(session, user, document_id, for_update=True)
    was = doc.status
    doc.status = target(doc, Action.REJECT).value
    # Dropping the lease makes any in-flight stage lose its claim: its result is discarded.
    doc.lease_owner, doc.lease_until = None, None
    _reviewed(doc, user, body.reason)
    doc.message = f"Rejected: {body.reason}"
    record(
        session,
        doc,
        "review.rejected",
        actor=user.email,
        message=body.reason,
        data={"from_status": was},
    )
    return doc


async def reprocess(
    session: AsyncSession, user: User, document_id: uuid.UUID, body: ReprocessRequest
) -> Document:
    doc = await documents.get_visible(session, user, document_id, for_update=True)
    was = doc.status
    to = target(doc, Action.REPROCESS)
    await _check_inputs(session, doc, body.from_stage)
    doc.status, doc.stage = to.value, body.from_stage.value
    doc.progress = overall_progress(body.from_stage)
    doc.error, doc.attempts, doc.lease_owner, doc.lease_until = None, 0, None, None
    doc.enqueued_at = datetime.now(UTC)
    doc.message = f"Reprocessing from {body.from_stage.value}"
    doc.review_note = body.note
    record(
        session,
        doc,
        "review.reprocess",
        actor=user.email,
        message=body.note or f"Reprocess from {body.from_stage.value}",
        data={"from_status": was, "from_stage": body.from_stage.value},
    )
    jobs.enqueue_stage(session, doc, body.from_stage)
    return doc


async def _check_inputs(session: AsyncSession, doc: Document, stage: Stage) -> None:
    """A stage needs the outputs of the ones before it."""
    position = STAGES.index(stage)
    if position >= STAGES.index(Stage.EXTRACT) and doc.kind is None:
        raise Conflict(
            "This document was never validated; reprocess it from validate.",
            details={"from_stage": stage.value, "earliest": Stage.VALIDATE.value},
        )
    if (
        position >= STAGES.index(Stage.ANALYZE)
        and await DocumentRepository(session).text(doc.id) is None
    ):
        raise Conflict(
            "This document has no extracted text; reprocess it from extract or earlier.",
            details={"from_stage": stage.value, "earliest": Stage.EXTRACT.value},
        )


def _reviewed(doc: Document, user: User, note: str | None) -> None:
    doc.reviewed_by, doc.reviewed_at, doc.review_note = user.id, datetime.now(UTC), note


def _dedupe(words: list[str]) -> list[str]:
    seen: dict[str, str] = {}
    for word in words:
        clean = " ".join(word.split())
        if len(clean) > 100:
            raise AppError(
                "A keyword may have at most 100 characters.", details={"keyword": clean[:100]}
            )
        if clean and clean.lower() not in seen:
            seen[clean.lower()] = clean
    return list(seen.values())
