"""SQL behind the event streams: each opening or catch-up read is one statement.

A stream opens thousands of times per process; who is asking, what they may see and the
snapshot come back together, and a single statement reads them from one consistent snapshot.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from docflow.models import Document, DocumentEvent, Role, User

SEES_ALL = (Role.REVIEWER.value, Role.ADMIN.value)


def _last_event_id(*where: Any) -> Any:
    return select(func.coalesce(func.max(DocumentEvent.id), 0)).where(*where).scalar_subquery()


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who opens a stream: what the streams need of the user row, and no ORM object."""

    id: uuid.UUID
    role: str
    is_active: bool

    @property
    def sees_all(self) -> bool:
        return self.role in SEES_ALL


# Labelled apart from the document's own columns (both tables have an `id`).
VIEWER = (
    User.id.label("viewer_id"),
    User.role.label("viewer_role"),
    User.is_active.label("viewer_active"),
)


class StreamRepository:
    """Core statements on a connection or a session (the opening reads build no ORM objects:
    a process opens thousands of streams)."""

    def __init__(self, db: AsyncConnection | AsyncSession) -> None:
        self.db = db

    async def user_and_document(
        self, user_id: uuid.UUID, document_id: uuid.UUID
    ) -> tuple[Viewer, dict[str, Any] | None, int] | None:
        """The user, the document's columns (whoever owns it) and its last event id; None: no
        such user."""
        documents = Document.__table__
        cursor = _last_event_id(DocumentEvent.document_id == document_id)
        stmt = (
            select(*VIEWER, cursor.label("_cursor"), documents)
            .select_from(User)
            .outerjoin(documents, documents.c.id == document_id)
            .where(User.id == user_id)
        )
        row = (await self.db.execute(stmt)).one_or_none()
        if row is None:
            return None
        doc = dict(row._mapping) if row.id is not None else None
        return Viewer(*row[:3]), doc, int(row._cursor)

    async def user_and_cursor(self, user_id: uuid.UUID) -> tuple[Viewer, int] | None:
        """The user and the last event id of what they see (everything, for reviewers)."""
        everything = _last_event_id()
        own = _last_event_id(DocumentEvent.owner_id == User.id)
        stmt = select(*VIEWER, case((User.role.in_(SEES_ALL), everything), else_=own)).where(
            User.id == user_id
        )
        row = (await self.db.execute(stmt)).one_or_none()
        return None if row is None else (Viewer(*row[:3]), int(row[3]))

    async def document(self, document_id: uuid.UUID) -> tuple[dict[str, Any] | None, int]:
        """The document's columns and its last event id, read together."""
        by_document = DocumentEvent.document_id == document_id
        documents = Document.__table__
        stmt = select(_last_event_id(by_document).label("_cursor"), documents).where(
            documents.c.id == document_id
        )
        row = (await self.db.execute(stmt)).one_or_none()
        if row is None:  # deleted: its events may be gone too
            return None, await self.last_event_id(by_document)
        return dict(row._mapping), int(row._cursor)

    async def last_event_id(self, *where: Any) -> int:
        return int((await self.db.execute(select(_last_event_id(*where)))).scalar_one())
