"""Event rows, written in the same transaction as the document change they describe."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from docflow import jsontext
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


def payload(
    *,
    id: int | None,
    document_id: Any,
    owner_id: Any,
    type: str,
    status: str,
    stage: str | None,
    progress: int,
    message: str | None,
    data: dict[str, Any],
    actor: str,
    created_at: datetime | None,
) -> dict[str, Any]:
    """An event as it is published to the streams: the one place that says what that is."""
    return {
        "id": id,
        "document_id": str(document_id),
        "owner_id": str(owner_id),
        "type": type,
        "status": status,
        "stage": stage,
        "progress": progress,
        "message": message,
        "data": data,
        "actor": actor,
        "created_at": created_at.isoformat() if created_at else None,
    }


def encode(event: dict[str, Any]) -> str:
    """A published event's text on the channel (compact JSON; the streams send it as is)."""
    return jsontext.dumps(event)


# A message on the channel carries the events of one commit, one per line: compact JSON has no
# line breaks of its own (JSON text escapes them), so each line is an event's text as is.
MESSAGE_EVENTS = 100


def messages(texts: list[str]) -> list[str]:
    """Encoded events as channel messages, in order (at most MESSAGE_EVENTS to a message)."""
    return [
        "\n".join(texts[at : at + MESSAGE_EVENTS]) for at in range(0, len(texts), MESSAGE_EVENTS)
    ]


def events_in(message: str | bytes) -> list[str]:
    """The events' texts in a channel message."""
    text = message.decode() if isinstance(message, bytes) else message
    return text.split("\n")


def event_payload(event: DocumentEvent) -> dict[str, Any]:
    return payload(
        id=event.id,
        document_id=event.document_id,
        owner_id=event.owner_id,
        type=event.type,
        status=event.status,
        stage=event.stage,
        progress=event.progress,
        message=event.message,
        data=event.data,
        actor=event.actor,
        created_at=event.created_at,
    )
