"""SQL for documents, their text and their events (API side, async)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from docflow.models import Document, DocumentEvent, DocumentText, User


@dataclass(frozen=True, slots=True)
class DocumentFilter:
    status: list[str] | None = None
    category: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    q: str | None = None


def visible_to(user: User, stmt: Select[Any], *, sees_all: bool) -> Select[Any]:
    return stmt if sees_all else stmt.where(Document.owner_id == user.id)


def apply_filter(stmt: Select[Any], f: DocumentFilter) -> Select[Any]:
    if f.status:
        stmt = stmt.where(Document.status.in_(f.status))
    if f.category:
        stmt = stmt.where(Document.category == f.category)
    if f.created_from:
        stmt = stmt.where(Document.created_at >= f.created_from)
    if f.created_to:
        stmt = stmt.where(Document.created_at < f.created_to)
    return stmt


NAME = Document.search_name


class DocumentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, document_id: uuid.UUID, *, for_update: bool = False) -> Document | None:
        stmt = select(Document).where(Document.id == document_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get_visible(
        self, user: User, document_id: uuid.UUID, *, sees_all: bool, for_update: bool = False
    ) -> Document | None:
        doc = await self.get(document_id, for_update=for_update)
        if doc is None or (not sees_all and doc.owner_id != user.id):
            return None
        return doc

    async def by_idempotency_key(self, owner_id: uuid.UUID, key: str) -> Document | None:
        stmt = select(Document).where(
            Document.owner_id == owner_id, Document.idempotency_key == key
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def add(self, doc: Document) -> Document:
        self.session.add(doc)
        await self.session.flush()
        return doc

    async def page(
        self, user: User, f: DocumentFilter, *, sees_all: bool, offset: int, limit: int
    ) -> tuple[list[Document], int]:
        base = apply_filter(visible_to(user, select(Document), sees_all=sees_all), f)
        if f.q:
            query = f.q.strip()
            tsq = func.websearch_to_tsquery("english", query)
            base = base.outerjoin(DocumentText, DocumentText.document_id == Document.id)
            rank = func.greatest(
                func.similarity(NAME, query), func.coalesce(func.ts_rank(DocumentText.tsv, tsq), 0)
            )
            base = base.where(
                or_(
                    NAME.op("%")(query),
                    NAME.ilike(f"%{_like(query)}%"),
                    DocumentText.tsv.op("@@")(tsq),
                )
            )
            ordered = base.order_by(rank.desc(), Document.created_at.desc())
        else:
            ordered = base.order_by(Document.created_at.desc(), Document.id)
        total = (
            await self.session.execute(select(func.count()).select_from(base.subquery()))
        ).scalar_one()
        rows = (await self.session.execute(ordered.offset(offset).limit(limit))).scalars().all()
        return list(rows), int(total)

    async def waiting_for_workers(self) -> int:
        """Documents whose next stage waits for a worker to take it: the queue, counted in
        documents (a task message may name several). The partial index ix_documents_waiting
        holds exactly these."""
        stmt = select(func.count()).where(
            Document.status.in_(("uploaded", "processing")), Document.lease_until.is_(None)
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def finished_per_second(self, window_seconds: int = 300) -> float:
        """Recent pipeline throughput: documents that reached review, per second. (The type is
        written out, not bound, so that the partial index ix_document_events_review applies.)"""
        stmt = select(func.count()).where(
            text("document_events.type = 'document.review'"),
            DocumentEvent.created_at > func.now() - timedelta(seconds=window_seconds),
        )
        return int((await self.session.execute(stmt)).scalar_one()) / window_seconds

    async def text(self, document_id: uuid.UUID) -> str | None:
        stmt = select(DocumentText.content).where(DocumentText.document_id == document_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def events(
        self,
        *,
        after: int = 0,
        document_id: uuid.UUID | None = None,
        owner_id: uuid.UUID | None = None,
        limit: int = 1000,
    ) -> list[DocumentEvent]:
        stmt = select(DocumentEvent).where(DocumentEvent.id > after)
        if document_id is not None:
            stmt = stmt.where(DocumentEvent.document_id == document_id)
        if owner_id is not None:
            stmt = stmt.where(DocumentEvent.owner_id == owner_id)
        rows = await self.session.execute(stmt.order_by(DocumentEvent.id).limit(limit))
        return list(rows.scalars())

    async def last_event_id(
        self, *, document_id: uuid.UUID | None = None, owner_id: uuid.UUID | None = None
    ) -> int:
        stmt = select(func.coalesce(func.max(DocumentEvent.id), 0))
        if document_id is not None:
            stmt = stmt.where(DocumentEvent.document_id == document_id)
        if owner_id is not None:
            stmt = stmt.where(DocumentEvent.owner_id == owner_id)
        return int((await self.session.execute(stmt)).scalar_one())


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
