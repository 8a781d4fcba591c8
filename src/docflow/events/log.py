"""Event rows, written in the same transaction as the document change they describe."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from docflow.db import outbox
from docflow.models import Document, DocumentEvent


def record(
    session: Session | AsyncSession,
    doc: Document,
    type_: str,
    *,
    actor: str,
    message: str | None = None,
    data: dict[str, Any] | None = None,
) -> DocumentEvent:
    """Add an event for the document's current state; it is published after commit."""
    event = DocumentEvent(
        document_id=doc.id,
        owner_id=doc.owner_id,
        type=type_,
        status=doc.status,
        stage=doc.stage,
        progress=doc.progress,
        message=message if message is not None else doc.message,
        data=data or {},
        actor=actor,
    )
    session.add(event)
    outbox(session).append(event)
    return event


def event_payload(event: DocumentEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "document_id": str(event.document_id),
        "owner_id": str(event.owner_id),
        "type": event.type,
        "status": event.status,
        "stage": event.stage,
        "progress": event.progress,
        "message": event.message,
        "data": event.data,
        "actor": event.actor,
        "created_at": event.created_at.isoformat() if event.created_at else None,
    }
