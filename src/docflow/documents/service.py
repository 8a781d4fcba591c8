"""Rules for documents: upload, read, list, and the data behind their event streams."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import time
import unicodedata
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import PurePosixPath
from typing import Any

import anyio
import asyncpg
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from docflow import jobs, jsontext
from docflow.config import Settings
from docflow.db import async_engine, async_session_factory
from docflow.deps import ACCOUNT_GONE, unit_of_work
from docflow.documents import intake, intake_repository
from docflow.documents.intake_repository import WholeUpload
from docflow.documents.repository import DocumentFilter, DocumentRepository
from docflow.documents.schemas import DocumentRead
from docflow.documents.stream_repository import StreamRepository, Viewer
from docflow.documents.upload_stream import IncomingFile
from docflow.errors import (
    AppError,
    Conflict,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Unauthorized,
    Unprocessable,
    UnsupportedMediaType,
)
from docflow.events.log import event_payload, record
from docflow.models import Document, DocumentEvent, Stage, Status, User
from docflow.pipeline.types import FileKind, StageError
from docflow.pipeline.validate import EXTENSION_KINDS, validate
from docflow.storage import DatabaseStorage, FilesystemStorage, Storage, get_storage
from docflow.users.repository import UserRepository

# How much of an upload is read before deciding its type (magic numbers, text encodings).
SNIFF_BYTES = 64 * 1024


def sanitize_filename(name: str | None) -> str:
    """A display name only: never used as a path."""
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip(" .")
    return name[:255] or "untitled"


async def upload(
    settings: Settings,
    owner_id: uuid.UUID,
    file: IncomingFile,
    idempotency_key: str | None,
) -> tuple[Document | dict[str, Any], bool]:
    """Store the file and its row in one transaction; the pipeline starts after commit.

    The first bytes decide the file's type (against the allowlist, 415 when they contradict the
    name). A file that is whole within them is written with its row and event in one statement;
    a larger one goes to storage as it arrives, and past the size limit the upload stops (413)
    and the transaction, with every chunk written so far, is rolled back.
    """
    if idempotency_key is not None and len(idempotency_key) > 255:
        raise AppError("The Idempotency-Key header is too long (255 characters at most).")
    filename = sanitize_filename(file.filename)
    chunks = aiter(file.chunks())
    head, exhausted = await _head(settings, file, chunks)
    first = bytes(head)
    sniff_upload(first, complete=exhausted, filename=filename, declared_type=file.content_type)
    if exhausted:
        return await _upload_whole(settings, owner_id, filename, file, first, idempotency_key)
    async with unit_of_work() as session:
        user = await UserRepository(session).get(owner_id)
        if user is None or not user.is_active:
            raise Unauthorized(ACCOUNT_GONE)
        return await _upload_streamed(
            session, settings, user, filename, file, head, chunks, idempotency_key
        )


async def _head(
    settings: Settings, file: IncomingFile, chunks: AsyncIterator[bytes]
) -> tuple[bytearray, bool]:
    """The file's first SNIFF_BYTES (all of it when shorter), and whether that is all of it."""
    if file.whole is not None and len(file.whole) <= SNIFF_BYTES:  # the body came in one piece
        _check_size(settings, len(file.whole))
        return bytearray(file.whole), True
    head = bytearray()
    while len(head) < SNIFF_BYTES:
        chunk = await anext(chunks, None)
        if chunk is None:
            return head, True
        head += chunk
        _check_size(settings, len(head))
    return head, False


async def _upload_whole(
    settings: Settings,
    owner_id: uuid.UUID,
    filename: str,
    file: IncomingFile,
    data: bytes,
    idempotency_key: str | None,
) -> tuple[Document | dict[str, Any], bool]:
    """The common case: the whole file is in hand. It is written, with its row and event, in
    one statement shared with whatever other uploads are ready (`documents.intake`)."""
    storage = get_storage(settings)
    if idempotency_key:
        existing = await _by_idempotency_key(owner_id, idempotency_key)
        if existing is not None:
            return existing, False
    document_id = uuid.uuid4()
    sha256 = hashlib.sha256(data).hexdigest()
    queued = await _where_in_queue(settings)
    upload = WholeUpload(
        id=document_id,
        owner_id=owner_id,
        idempotency_key=idempotency_key,
        filename=filename,
        declared_type=file.content_type or None,
        size_bytes=len(data),
        sha256=sha256,
        message=queued or "Waiting for a worker",
        data=data if isinstance(storage, DatabaseStorage) else None,
        event_message=f"Uploaded {filename}" + (f". {queued}" if queued else ""),
        event_data=jsontext.dumps({"size_bytes": len(data), "sha256": sha256}),
    )
    try:
        if isinstance(storage, FilesystemStorage):
            await storage.put(document_id, data)
        inserted = await intake.write(upload)
    except BaseException as exc:
        await _discard(storage, document_id)
        said = _database_error(exc)
        if said is exc:
            raise
        raise said from exc
    if inserted is not None:
        return inserted[0], True
    await _discard(storage, document_id)
    if idempotency_key:
        # The same Idempotency-Key raced in twice: the other request's document stands.
        existing = await _by_idempotency_key(owner_id, idempotency_key)
        if existing is not None:
            return existing, False
    raise Unauthorized(ACCOUNT_GONE)


async def _by_idempotency_key(owner_id: uuid.UUID, key: str) -> dict[str, Any] | None:
    async with async_engine().connect() as conn:
        return await intake_repository.by_idempotency_key(conn, owner_id, key)


def _database_error(exc: BaseException) -> BaseException:
    """asyncpg's errors, said as the ORM path says them (503, 422); anything else is itself."""
    if isinstance(exc, asyncpg.PostgresConnectionError | asyncpg.InterfaceError):
        unavailable = ServiceUnavailable(
            "The database is unavailable right now; try again shortly."
        )
        unavailable.headers = {"Retry-After": "5"}  # type: ignore[attr-defined]
        return unavailable
    if getattr(exc, "sqlstate", None) in {"22021", "22P05"}:
        return Unprocessable("The request contains characters that cannot be stored.")
    return exc


async def _upload_streamed(
    session: AsyncSession,
    settings: Settings,
    user: User,
    filename: str,
    file: IncomingFile,
    head: bytearray,
    chunks: AsyncIterator[bytes],
    idempotency_key: str | None,
) -> tuple[Document | dict[str, Any], bool]:
    """A file larger than the sniffed head, streamed to storage inside the session."""
    repo = DocumentRepository(session)
    if idempotency_key:
        existing = await repo.by_idempotency_key(user.id, idempotency_key)
        if existing is not None:
            return existing, False
    digest = hashlib.sha256(head)
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
    size, seq = len(head), 0
    pending = head
    try:
        while True:
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
    queued = await _where_in_queue(settings)
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


async def _where_in_queue(settings: Settings) -> str | None:
    """Back-pressure made visible: past the bound, the upload still succeeds and says how many
    documents are ahead and, from recent throughput, roughly how long that is. Counted now, so
    the next upload counts this one too."""
    waiting = await _waiting()
    _waiting_reading.added += 1
    if waiting is None or waiting <= settings.queue_backlog_bound:
        return None
    rate = await _throughput()
    estimate = f", about {max(1, round(waiting / rate / 60))} min" if rate > 0 else ""
    return f"Queued: {waiting} documents ahead of this one{estimate}"


class _Reading:
    """A figure read from the database at most every `ttl` seconds per process, one read at a
    time: hundreds of uploads a second ask, and those arriving while a read is on its way wait
    for it instead of each asking on a connection of its own (under a backlog, every upload of
    a burst used to open one for the throughput figure at once). `added`: what this process has
    added to the figure since the read (the queue's depth counts its own uploads at once)."""

    def __init__(self, ttl: float, read: Callable[[DocumentRepository], Awaitable[float]]) -> None:
        self.ttl, self.read = ttl, read
        self.value: float | None = None
        self.read_at = -1e9
        self.added = 0
        self.reading: asyncio.Future[None] | None = None

    async def get(self) -> float | None:
        """The figure, read again when older than `ttl`; None when the database cannot say."""
        if time.monotonic() - self.read_at >= self.ttl:
            if self.reading is not None:
                await asyncio.shield(self.reading)
            else:
                self.reading = done = asyncio.get_running_loop().create_future()
                try:
                    async with async_session_factory()() as session:
                        value = await self.read(DocumentRepository(session))
                    self.value, self.read_at, self.added = value, time.monotonic(), 0
                except (OSError, asyncpg.PostgresError, SQLAlchemyError):
                    self.value = None
                finally:
                    self.reading = None
                    done.set_result(None)
        return None if self.value is None else self.value + self.added


# Documents waiting for a worker: exact for one API process, and no older than WAITING_TTL for
# the others' uploads. Recent documents/s: those that reached review in the last five minutes.
WAITING_TTL = 0.25
THROUGHPUT_TTL = 5.0
_waiting_reading = _Reading(WAITING_TTL, DocumentRepository.waiting_for_workers)
_throughput_reading = _Reading(THROUGHPUT_TTL, DocumentRepository.finished_per_second)


async def _waiting() -> int | None:
    """Documents ahead of an upload now (None when the database cannot say)."""
    count = await _waiting_reading.get()
    return None if count is None else int(count)


async def _throughput() -> float:
    """Recent documents/s (0 when the database cannot say)."""
    return await _throughput_reading.get() or 0.0


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


# The streams read in short sessions of their own (a long-lived stream must not hold a
# connection), each one statement: autocommit spares the BEGIN and ROLLBACK round trips, and
# a single statement already sees one consistent snapshot.


@lru_cache
def _stream_engine() -> AsyncEngine:
    return async_engine().execution_options(isolation_level="AUTOCOMMIT")


@lru_cache
def _stream_reads() -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(_stream_engine(), expire_on_commit=False)


def _document_state(
    doc: dict[str, Any] | None, document_id: uuid.UUID, cursor: int
) -> dict[str, Any]:
    if doc is None:
        return {"document_id": str(document_id), "deleted": True, "last_event_id": cursor}
    state = DocumentRead.model_validate(doc).model_dump(mode="json")
    return {**state, "last_event_id": cursor}


GONE = "This account no longer exists or is disabled."


async def open_document_stream(
    user_id: uuid.UUID, document_id: uuid.UUID
) -> tuple[Viewer, dict[str, Any], int]:
    """Who is asking, whether they may see the document, and its snapshot, in one query.

    Another user's document is 404, like one that does not exist.
    """
    async with _stream_engine().connect() as conn:
        found = await StreamRepository(conn).user_and_document(user_id, document_id)
    if found is None or not found[0].is_active:
        raise Unauthorized(GONE)
    viewer, doc, cursor = found
    if doc is None or (not viewer.sees_all and doc["owner_id"] != viewer.id):
        raise NotFound("Document not found.")
    return viewer, _document_state(doc, document_id, cursor), cursor


async def open_user_stream(user_id: uuid.UUID) -> tuple[Viewer, dict[str, Any], int]:
    """Who is asking and the snapshot of their list stream (everything, for reviewers)."""
    async with _stream_engine().connect() as conn:
        found = await StreamRepository(conn).user_and_cursor(user_id)
    if found is None or not found[0].is_active:
        raise Unauthorized(GONE)
    viewer, cursor = found
    return viewer, _user_state(viewer.id, viewer.sees_all, cursor), cursor


def _user_state(user_id: uuid.UUID, sees_all: bool, cursor: int) -> dict[str, Any]:
    return {"user_id": str(user_id), "scope": "all" if sees_all else "own", "last_event_id": cursor}


async def document_snapshot(document_id: uuid.UUID) -> tuple[dict[str, Any], int]:
    async with _stream_engine().connect() as conn:
        doc, cursor = await StreamRepository(conn).document(document_id)
    return _document_state(doc, document_id, cursor), cursor


async def user_snapshot(user_id: uuid.UUID, sees_all: bool) -> tuple[dict[str, Any], int]:
    where = () if sees_all else (DocumentEvent.owner_id == user_id,)
    async with _stream_engine().connect() as conn:
        cursor = await StreamRepository(conn).last_event_id(*where)
    return _user_state(user_id, sees_all, cursor), cursor


async def replay(
    after: int,
    limit: int,
    *,
    document_id: uuid.UUID | None = None,
    owner_id: uuid.UUID | None = None,
) -> list[dict[str, Any]]:
    """Persisted events after `after`, oldest first, at most `limit`."""
    async with _stream_reads()() as session:
        rows = await DocumentRepository(session).events(
            after=after, document_id=document_id, owner_id=owner_id, limit=limit
        )
    return [event_payload(row) for row in rows]
