"""SQL behind the event streams: each opening or catch-up read is one statement.

A stream opens thousands of times per process; who is asking, what they may see and the
snapshot come back together, and a single statement reads them from one consistent snapshot.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from docflow.models import Document, DocumentEvent, Role, User

SEES_ALL = (Role.REVIEWER.value, Role.ADMIN.value)


def _last_event_id(*where: Any) -> Any:
    return select(func.coalesce(func.max(DocumentEvent.id), 0)).where(*where).scalar_subquery()


class StreamRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def user_and_document(
        self, user_id: uuid.UUID, document_id: uuid.UUID
    ) -> tuple[User, Document | None, int] | None:
        """The user, the document (whoever owns it) and its last event id; None: no such user."""
        cursor = _last_event_id(DocumentEvent.document_id == document_id)
        stmt = (
            select(User, Document, cursor)
            .outerjoin(Document, Document.id == document_id)
            .where(User.id == user_id)
        )
        row = (await self.session.execute(stmt)).one_or_none()
        return None if row is None else (row[0], row[1], int(row[2]))

    async def user_and_cursor(self, user_id: uuid.UUID) -> tuple[User, int] | None:
        """The user and the last event id of what they see (everything, for reviewers)."""
        everything = _last_event_id()
        own = _last_event_id(DocumentEvent.owner_id == User.id)
        stmt = select(User, case((User.role.in_(SEES_ALL), everything), else_=own)).where(
            User.id == user_id
        )
        row = (await self.session.execute(stmt)).one_or_none()
        return None if row is None else (row[0], int(row[1]))

    async def document(self, document_id: uuid.UUID) -> tuple[Document | None, int]:
        """The document and its last event id, read together."""
        by_document = DocumentEvent.document_id == document_id
        stmt = select(Document, _last_event_id(by_document)).where(Document.id == document_id)
        row = (await self.session.execute(stmt)).one_or_none()
        if row is None:  # deleted: its events may be gone too
            return None, await self.last_event_id(by_document)
        return row[0], int(row[1])

    async def last_event_id(self, *where: Any) -> int:
        return int((await self.session.execute(select(_last_event_id(*where)))).scalar_one())

    async def events(
        self,
        after: int,
        limit: int,
        *,
        document_id: uuid.UUID | None = None,
        owner_id: uuid.UUID | None = None,
    ) -> list[DocumentEvent]:
        stmt = select(DocumentEvent).where(DocumentEvent.id > after)
        if document_id is not None:
            stmt = stmt.where(DocumentEvent.document_id == document_id)
        if owner_id is not None:
            stmt = stmt.where(DocumentEvent.owner_id == owner_id)
        rows = await self.session.execute(stmt.order_by(DocumentEvent.id).limit(limit))
        return list(rows.scalars())
