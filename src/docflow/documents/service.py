"""Rules for documents: upload, read, list, and the data behind their event streams."""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
import unicodedata
import uuid
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from docflow import jobs
from docflow.config import Settings
from docflow.db import async_session_factory
from docflow.documents.repository import DocumentFilter, DocumentRepository
from docflow.documents.schemas import DocumentRead
from docflow.documents.upload_stream import IncomingFile
from docflow.errors import AppError, Conflict, NotFound, PayloadTooLarge, UnsupportedMediaType
from docflow.events.log import event_payload, record
from docflow.models import Document, DocumentEvent, Stage, Status, User
from docflow.pipeline.types import FileKind, StageError
from docflow.pipeline.validate import EXTENSION_KINDS, validate
from docflow.storage import FilesystemStorage, Storage, get_storage

# How much of an upload is read before deciding its type (magic numbers, text encodings).
SNIFF_BYTES = 64 * 1024


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
    file: IncomingFile,
    idempotency_key: str | None,
) -> tuple[Document, bool]:
    """Store the file and its row in one transaction; the pipeline starts after commit.

    The bytes go to storage as they arrive. The first ones decide the file's type (against the
    allowlist, 415 when they contradict the name); past the size limit the upload stops (413)
    and the transaction, with every chunk written so far, is rolled back.
    """
    repo = DocumentRepository(session)
    if idempotency_key:
        if len(idempotency_key) > 255:
            raise AppError("The Idempotency-Key header is too long (255 characters at most).")
        existing = await repo.by_idempotency_key(user.id, idempotency_key)
        if existing is not None:
            return existing, False
    filename = sanitize_filename(file.filename)
    chunks = aiter(file.chunks())
    head = bytearray()
    exhausted = False
    while len(head) < SNIFF_BYTES:
        chunk = await anext(chunks, None)
        if chunk is None:
            exhausted = True
            break
        head += chunk
        _check_size(settings, len(head))
    sniff_upload(
        bytes(head), complete=exhausted, filename=filename, declared_type=file.content_type
    )
    digest = hashlib.sha256(head)
    # A small file is whole already: its row is written complete, never updated afterwards.
    doc = await repo.add(
        Document(
            id=uuid.uuid4(),
            owner_id=user.id,
            idempotency_key=idempotency_key,
            filename=filename,
            declared_type=(file.content_type or None),
            size_bytes=len(head) if exhausted else 0,
            sha256=digest.hexdigest() if exhausted else "",
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
    size, seq = len(head), 0
    pending = head
    try:
        while not exhausted:
            chunk = await anext(chunks, None)
            if chunk is None:
                break
            size += len(chunk)
            _check_size(settings, size)
            digest.update(chunk)
            pending += chunk
            if len(pending) >= settings.storage_chunk_bytes:
                await storage.write(session, doc.id, seq, bytes(pending))
                pending, seq = bytearray(), seq + 1
        if pending or seq == 0:
            await storage.write(session, doc.id, seq, bytes(pending))
        await storage.finish(session, doc.id)
    except BaseException:
        await _discard(storage, doc.id)
        raise
    doc.size_bytes, doc.sha256 = size, digest.hexdigest()
    queued = await _where_in_queue(repo, settings)
    if queued:
        doc.message = queued
    record(
        session,
        doc,
        "document.uploaded",
        actor=user.email,
        message=f"Uploaded {filename}" + (f". {queued}" if queued else ""),
        data={"size_bytes": size, "sha256": doc.sha256},
    )
    jobs.enqueue_stage(session, doc, Stage.VALIDATE)
    return doc, True


def _check_size(settings: Settings, size: int) -> None:
    if size > settings.max_upload_bytes:
        limit = settings.max_upload_bytes
        shown = f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit:,} bytes"
        raise PayloadTooLarge(
            f"The file is larger than the {shown} limit.", details={"limit_bytes": limit}
        )


def sniff_upload(head: bytes, *, complete: bool, filename: str, declared_type: str | None) -> None:
    """Refuse (415) a file whose first bytes are not an allowed type or contradict its name.

    The validate stage looks at the whole file again (ZIP safety, PDF trailer, encodings); this
    is the early answer a person gets while still on the upload screen.
    """
    if not head.strip():
        return  # empty: the validate stage fails it with a reason a person can read
    extension = PurePosixPath(filename).suffix.lower()
    zip_kinds = {FileKind.DOCX, FileKind.ODT}
    if head.startswith(b"PK\x03\x04"):
        expected = EXTENSION_KINDS.get(extension)
        if expected is not None and not expected & zip_kinds:
            raise UnsupportedMediaType(
                f"The file's content (an archive or Office document) does not match its name "
                f"({extension}).",
                details={"filename": filename},
            )
        return  # entries, sizes and ratios are checked by the validate stage before parsing
    if not complete and 0 < head.find(b"%PDF-", 0, 1024):
        # Junk before the PDF header: validate wants the trailer, which is not here yet.
        if EXTENSION_KINDS.get(extension, {FileKind.PDF}) & {FileKind.PDF}:
            return
    try:
        validate(head, filename, declared_type)
    except StageError as exc:
        raise UnsupportedMediaType(exc.message, details={"filename": filename}) from exc


async def _discard(storage: Storage, document_id: uuid.UUID) -> None:
    """A refused upload leaves nothing behind (database chunks go with the rollback)."""
    if isinstance(storage, FilesystemStorage):
        path = storage.path(document_id)
        for leftover in (path.with_suffix(".part"), path):
            with contextlib.suppress(OSError):
                await anyio.Path(leftover).unlink()


async def _where_in_queue(repo: DocumentRepository, settings: Settings) -> str | None:
    """Back-pressure made visible: past the bound, the upload still succeeds and says how many
    documents are ahead and, from recent throughput, roughly how long that is."""
    waiting = await jobs.backlog()
    if waiting is None or waiting <= settings.queue_backlog_bound:
        return None
    rate = await _throughput(repo)
    estimate = f", about {max(1, round(waiting / rate / 60))} min" if rate > 0 else ""
    return f"Queued: {waiting} documents ahead of this one{estimate}"


_throughput_cache: list[float] = [-1e9, 0.0]  # [measured at, documents/s]
THROUGHPUT_TTL = 5.0


async def _throughput(repo: DocumentRepository) -> float:
    """Recent documents/s, measured at most every THROUGHPUT_TTL seconds per process."""
    now = time.monotonic()
    if now - _throughput_cache[0] >= THROUGHPUT_TTL:
        _throughput_cache[:] = [now, await repo.finished_per_second()]
    return _throughput_cache[1]


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
    return await DocumentRepository(session).page(
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


async def events_of(
    session: AsyncSession, doc: Document, after: int, limit: int
) -> list[DocumentEvent]:
    return await DocumentRepository(session).events(document_id=doc.id, after=after, limit=limit)


# The stream reads in short sessions of its own: a long-lived stream must not hold a connection.


async def document_snapshot(document_id: uuid.UUID) -> tuple[dict[str, Any], int]:
    async with async_session_factory()() as session:
        repo = DocumentRepository(session)
        # The cursor first: the state read after it reflects at least every event up to it.
        cursor = await repo.last_event_id(document_id=document_id)
        doc = await repo.get(document_id)
    if doc is None:
        return {"document_id": str(document_id), "deleted": True, "last_event_id": cursor}, cursor
    state = DocumentRead.model_validate(doc).model_dump(mode="json")
    return {**state, "last_event_id": cursor}, cursor


async def user_snapshot(user: User) -> tuple[dict[str, Any], int]:
    owner = None if user.sees_all else user.id
    async with async_session_factory()() as session:
        cursor = await DocumentRepository(session).last_event_id(owner_id=owner)
    return {
        "user_id": str(user.id),
        "scope": "all" if owner is None else "own",
        "last_event_id": cursor,
    }, cursor


async def replay(
    after: int, *, document_id: uuid.UUID | None = None, owner_id: uuid.UUID | None = None
) -> list[dict[str, Any]]:
    async with async_session_factory()() as session:
        rows = await DocumentRepository(session).events(
            after=after, document_id=document_id, owner_id=owner_id
        )
    return [event_payload(row) for row in rows]
