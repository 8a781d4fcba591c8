"""HTTP for review actions (reviewers and admins)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from docflow.deps import Reviewer, SessionDep
from docflow.documents.schemas import DocumentRead
from docflow.models import Document
from docflow.review import service as review
from docflow.review.schemas import ApproveRequest, RejectRequest, ReprocessRequest

router = APIRouter(prefix="/review", tags=["review"])


@router.post("/{document_id}/approve", response_model=DocumentRead)
async def approve(
    document_id: uuid.UUID, session: SessionDep, user: Reviewer, body: ApproveRequest | None = None
) -> Document:
    """`review` → `finalised`, with optional corrections to category, title and keywords."""
    return await review.approve(session, user, document_id, body or ApproveRequest())


@router.post("/{document_id}/reject", response_model=DocumentRead)
async def reject(
    document_id: uuid.UUID, body: RejectRequest, session: SessionDep, user: Reviewer
) -> Document:
    """→ `rejected` with a reason; from `processing` the pipeline stops at its next check."""
    return await review.reject(session, user, document_id, body)


@router.post("/{document_id}/reprocess", response_model=DocumentRead)
async def reprocess(
    document_id: uuid.UUID,
    session: SessionDep,
    user: Reviewer,
    body: ReprocessRequest | None = None,
) -> Document:
    """→ `processing` again, from the named stage (default: validate), with an optional note."""
    return await review.reprocess(session, user, document_id, body or ReprocessRequest())
