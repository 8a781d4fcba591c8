"""SQL the worker and the reaper use (synchronous): claims, leases, stage outputs."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from docflow.models import Document, DocumentText, Stage, Status

CLAIMABLE = (Status.UPLOADED.value, Status.PROCESSING.value)


def claim(
    session: Session, document_id: uuid.UUID, stage: Stage, owner: str, lease: int
) -> Document | None:
    """Compare-and-set: take the stage only if it is this document's next step and nobody holds
    a live lease on it. Zero rows means done, rejected, or owned elsewhere."""
    return session.scalars(
        update(Document)
        .where(
            Document.id == document_id,
            Document.stage == stage.value,
            Document.status.in_(CLAIMABLE),
            or_(Document.lease_until.is_(None), Document.lease_until < func.now()),
        )
        .values(
            status=Status.PROCESSING.value,
            lease_owner=owner,
            lease_until=func.now() + timedelta(seconds=lease),
            attempts=Document.attempts + 1,
            updated_at=func.now(),
        )
        .returning(Document)
        .execution_options(synchronize_session=False, populate_existing=True)
    ).one_or_none()


def extend_lease(session: Session, document_id: uuid.UUID, owner: str, lease: int) -> bool:
    """Heartbeat. False when the claim is gone (rejected, or reaped after we stalled)."""
    row = session.execute(
        update(Document)
        .where(
            Document.id == document_id,
            Document.lease_owner == owner,
            Document.status == Status.PROCESSING.value,
        )
        .values(lease_until=func.now() + timedelta(seconds=lease))
        .returning(Document.id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    return row is not None


def lock_owned(
    session: Session, document_id: uuid.UUID, stage: Stage, owner: str
) -> Document | None:
    stmt = (
        select(Document)
        .where(
            Document.id == document_id,
            Document.stage == stage.value,
            Document.status == Status.PROCESSING.value,
            Document.lease_owner == owner,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return session.execute(stmt).scalar_one_or_none()


def lock_running(
    session: Session, document_id: uuid.UUID, stage: Stage, task_id: str | None = None
) -> Document | None:
    """The document if it is still processing this stage, whoever holds it, or any stage that
    task `task_id` holds (a task runs later stages too when it chains them)."""
    at_stage = Document.stage == stage.value
    stmt = (
        select(Document)
        .where(
            Document.id == document_id,
            or_(at_stage, Document.lease_owner.endswith(f":{task_id}")) if task_id else at_stage,
            Document.status.in_(CLAIMABLE),
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return session.execute(stmt).scalar_one_or_none()


def save_text(session: Session, document_id: uuid.UUID, content: str) -> None:
    """Upsert: a second run of the stage overwrites, never duplicates."""
    stmt = insert(DocumentText).values(document_id=document_id, content=content)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[DocumentText.document_id], set_={"content": stmt.excluded.content}
        )
    )


def load_text(session: Session, document_id: uuid.UUID) -> str | None:
    return session.execute(
        select(DocumentText.content).where(DocumentText.document_id == document_id)
    ).scalar_one_or_none()


def expired_leases(session: Session, limit: int = 100) -> Sequence[Document]:
    """Stages whose worker stopped renewing; SKIP LOCKED so concurrent reapers split the work."""
    stmt = (
        select(Document)
        .where(Document.status == Status.PROCESSING.value, Document.lease_until < func.now())
        .order_by(Document.lease_until)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return session.execute(stmt).scalars().all()


def waiting_too_long(session: Session, grace: int, limit: int = 500) -> Sequence[Document]:
    """Runnable documents whose task never started (a send lost between commit and broker)."""
    stmt = (
        select(Document)
        .where(
            Document.status.in_(CLAIMABLE),
            Document.lease_until.is_(None),
            Document.stage.is_not(None),
            Document.enqueued_at < func.now() - timedelta(seconds=grace),
        )
        .order_by(Document.enqueued_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return session.execute(stmt).scalars().all()


def now(session: Session) -> object:
    return session.execute(text("select now()")).scalar_one()
