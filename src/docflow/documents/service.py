"""Rules for documents: upload, read, list, and the data behind their event streams."""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import UploadFile
from sqlalchemy.ext.asyncio import AsyncSession

from docflow import jobs
from docflow.config import Settings
from docflow.db import async_session_factory
from docflow.documents.repository import DocumentFilter, DocumentRepository
from docflow.documents.schemas import DocumentRead
from docflow.errors import AppError, Conflict, NotFound, PayloadTooLarge
from docflow.events.log import event_payload, record
from docflow.models import Document, DocumentEvent, Stage, Status, User
from docflow.storage import get_storage


def sanitize_filename(name: str | None) -> str:
    """A display name only: never used as a path."""
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip(" .")
    return name[:255] or "untitled"


async def upload(
    session: AsyncSession,
    settings: Settings,
    user: User,
    file: UploadFile,
    idempotency_key: str | None,
) -> tuple[Document, bool]:
    """Store the file and its row in one transaction; the pipeline starts after commit."""
    repo = DocumentRepository(session)
    if idempotency_key:
        if len(idempotency_key) > 255:
            raise AppError("The Idempotency-Key header is too long (255 characters at most).")
        existing = await repo.by_idempotency_key(user.id, idempotency_key)
        if existing is not None:
            return existing, False
    filename = sanitize_filename(file.filename)
    doc = await repo.add(
        Document(
            id=uuid.uuid4(),
            owner_id=user.id,
            idempotency_key=idempotency_key,
            filename=filename,
            declared_type=(file.content_type or None),
            size_bytes=0,
            sha256="",
            status=Status.UPLOADED.value,
            stage=Stage.VALIDATE.value,
            progress=0,
            message="Waiting for a worker",
            keywords=[],
            fields={},
            doc_metadata={},
            timings={},
            enqueued_at=datetime.now(UTC),
        )
    )
    storage = get_storage(settings)
    digest, size, seq = hashlib.sha256(), 0, 0
    while chunk := await file.read(settings.storage_chunk_bytes):
        size += len(chunk)
        if size > settings.max_upload_bytes:
            raise PayloadTooLarge(
                f"The file is larger than the {settings.max_upload_bytes // (1024 * 1024)} MiB limit.",
                details={"limit_bytes": settings.max_upload_bytes},
            )
        digest.update(chunk)
        await storage.write(session, doc.id, seq, chunk)
        seq += 1
    if seq == 0:
        await storage.write(session, doc.id, 0, b"")
    await storage.finish(session, doc.id)
    doc.size_bytes, doc.sha256 = size, digest.hexdigest()
    record(session, doc, "document.uploaded", actor=user.email, message=f"Uploaded {filename}",
           data={"size_bytes": size, "sha256": doc.sha256})
    jobs.enqueue_stage(session, doc.id, Stage.VALIDATE)
    return doc, True


async def get_visible(
    session: AsyncSession, user: User, document_id: uuid.UUID, *, for_update: bool = False
) -> Document:
    doc = await DocumentRepository(session).get_visible(
        user, document_id, sees_all=user.sees_all, for_update=for_update
    )
    if doc is None:
        raise NotFound("Document not found.")  # another user's document is also 404
    return doc


async def list_documents(
    session: AsyncSession, user: User, f: DocumentFilter, page: int, page_size: int
) -> tuple[list[Document], int]:
    return await DocumentRepository(session).list(
        user, f, sees_all=user.sees_all, offset=(page - 1) * page_size, limit=page_size
    )


async def text_of(session: AsyncSession, doc: Document) -> str:
    text = await DocumentRepository(session).text(doc.id)
    if text is None:
        raise Conflict(
            "This document has no extracted text yet.",
            details={"status": doc.status, "stage": doc.stage},
        )
    return text


async def events_of(session: AsyncSession, doc: Document, after: int, limit: int) -> list[DocumentEvent]:
    return await DocumentRepository(session).events(document_id=doc.id, after=after, limit=limit)


# The stream reads in short sessions of its own: a long-lived stream must not hold a connection.


async def document_snapshot(document_id: uuid.UUID) -> tuple[dict[str, Any], int]:
    async with async_session_factory()() as session:
        repo = DocumentRepository(session)
        doc = await repo.get(document_id)
        cursor = await repo.last_event_id(document_id=document_id)
    if doc is None:
        return {"document_id": str(document_id), "deleted": True, "last_event_id": cursor}, cursor
    state = DocumentRead.model_validate(doc).model_dump(mode="json")
    return {**state, "last_event_id": cursor}, cursor


async def user_snapshot(user: User) -> tuple[dict[str, Any], int]:
    owner = None if user.sees_all else user.id
    async with async_session_factory()() as session:
        cursor = await DocumentRepository(session).last_event_id(owner_id=owner)
    return {"user_id": str(user.id), "scope": "all" if owner is None else "own",
            "last_event_id": cursor}, cursor


async def replay(
    after: int, *, document_id: uuid.UUID | None = None, owner_id: uuid.UUID | None = None
) -> list[dict[str, Any]]:
    async with async_session_factory()() as session:
        rows = await DocumentRepository(session).events(
            after=after, document_id=document_id, owner_id=owner_id
        )
    return [event_payload(row) for row in rows]
