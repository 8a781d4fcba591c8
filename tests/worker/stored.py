"""Documents stored the way an upload leaves them, with no task sent for them, for tests that
run the worker's stages in this process; and readers of what the stages wrote."""

from __future__ import annotations

import hashlib
import uuid

from sqlalchemy import select

from docflow.db import sync_session_factory
from docflow.models import Document, DocumentBlob, DocumentEvent, User


def stored_document(
    data: bytes,
    filename: str = "invoice.txt",
    declared_type: str = "text/plain",
    owner_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """An uploaded document (a new owner's, unless given), its bytes in the database."""
    with sync_session_factory()() as session:
        if owner_id is None:
            user = User(email=f"w-{uuid.uuid4().hex[:8]}@example.com", password_hash="x")
            session.add(user)
            session.flush()
            owner_id = user.id
        doc = Document(
            owner_id=owner_id,
            filename=filename,
            declared_type=declared_type,
            size_bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            status="uploaded",
            stage="validate",
        )
        session.add(doc)
        session.flush()
        session.add(DocumentBlob(document_id=doc.id, seq=0, data=data))
        session.commit()
        return doc.id


def events_of(document_id: uuid.UUID) -> list[DocumentEvent]:
    with sync_session_factory()() as session:
        return list(
            session.scalars(
                select(DocumentEvent)
                .where(DocumentEvent.document_id == document_id)
                .order_by(DocumentEvent.id)
            )
        )


def document(document_id: uuid.UUID) -> Document:
    with sync_session_factory()() as session:
        doc = session.get(Document, document_id)
        assert doc is not None
        return doc
