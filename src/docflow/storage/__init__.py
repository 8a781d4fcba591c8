"""Where originals live, behind one small interface (DESIGN.md §1).

`database` (default) keeps them in PostgreSQL as chunk rows, committed with the document row;
`filesystem` keeps them on a shared volume. Writes and reads stream in bounded chunks.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Protocol

import anyio
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from docflow.config import Settings, get_settings
from docflow.models import DocumentBlob


class Storage(Protocol):
    async def write(
        self, session: AsyncSession, document_id: uuid.UUID, seq: int, chunk: bytes
    ) -> None: ...
    async def finish(self, session: AsyncSession, document_id: uuid.UUID) -> None: ...
    def read(self, session: Session, document_id: uuid.UUID) -> Iterator[bytes]: ...
    def stream(self, session: AsyncSession, document_id: uuid.UUID) -> AsyncIterator[bytes]: ...


# Chunks fetched per query when reading (x storage_chunk_bytes, 512 KiB by default = 4 MiB).
READ_BATCH = 8


class DatabaseStorage:
    async def write(
        self, session: AsyncSession, document_id: uuid.UUID, seq: int, chunk: bytes
    ) -> None:
        await session.execute(
            insert(DocumentBlob).values(document_id=document_id, seq=seq, data=chunk)
        )

    async def finish(self, session: AsyncSession, document_id: uuid.UUID) -> None:
        return None

    def read(self, session: Session, document_id: uuid.UUID) -> Iterator[bytes]:
        """Chunks in order, READ_BATCH at a time: one query for a small file, bounded memory
        for a large one."""
        seq = 0
        while True:
            rows = session.execute(
                select(DocumentBlob.data)
                .where(
                    DocumentBlob.document_id == document_id,
                    DocumentBlob.seq >= seq,
                    DocumentBlob.seq < seq + READ_BATCH,
                )
                .order_by(DocumentBlob.seq)
            ).scalars()
            count = 0
            for count, data in enumerate(rows, 1):  # noqa: B007 - count is read after
                yield data
            if count < READ_BATCH:
                return
            seq += READ_BATCH

    async def stream(self, session: AsyncSession, document_id: uuid.UUID) -> AsyncIterator[bytes]:
        seqs = (
            (
                await session.execute(
                    select(DocumentBlob.seq)
                    .where(DocumentBlob.document_id == document_id)
                    .order_by(DocumentBlob.seq)
                )
            )
            .scalars()
            .all()
        )
        for seq in seqs:
            yield (
                await session.execute(
                    select(DocumentBlob.data).where(
                        DocumentBlob.document_id == document_id, DocumentBlob.seq == seq
                    )
                )
            ).scalar_one()

    async def delete(self, session: AsyncSession, document_id: uuid.UUID) -> None:
        await session.execute(delete(DocumentBlob).where(DocumentBlob.document_id == document_id))


class FilesystemStorage:
    """Files under a root shared by API and workers; written to a temp name, renamed at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, document_id: uuid.UUID) -> Path:
        return self.root / document_id.hex[:2] / document_id.hex

    async def write(
        self, session: AsyncSession, document_id: uuid.UUID, seq: int, chunk: bytes
    ) -> None:
        tmp = self.path(document_id).with_suffix(".part")
        await anyio.to_thread.run_sync(_append, tmp, chunk, seq == 0)

    async def finish(self, session: AsyncSession, document_id: uuid.UUID) -> None:
        final = self.path(document_id)
        await anyio.to_thread.run_sync(os.replace, final.with_suffix(".part"), final)

    async def put(self, document_id: uuid.UUID, data: bytes) -> None:
        """A whole small file at once, under its final name only when complete."""
        final = self.path(document_id)
        await anyio.to_thread.run_sync(_put, final, data)

    def read(self, session: Session, document_id: uuid.UUID) -> Iterator[bytes]:
        with self.path(document_id).open("rb") as fh:
            while chunk := fh.read(1024 * 1024):
                yield chunk

    async def stream(self, session: AsyncSession, document_id: uuid.UUID) -> AsyncIterator[bytes]:
        async with await anyio.open_file(self.path(document_id), "rb") as fh:
            while chunk := await fh.read(1024 * 1024):
                yield chunk


def _append(path: Path, chunk: bytes, first: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb" if first else "ab") as fh:
        fh.write(chunk)


def _put(final: Path, data: bytes) -> None:
    _append(final.with_suffix(".part"), data, True)
    os.replace(final.with_suffix(".part"), final)


def get_storage(settings: Settings | None = None) -> Storage:
    settings = settings or get_settings()
    if settings.storage_backend == "filesystem":
        return FilesystemStorage(settings.storage_path)
    return DatabaseStorage()
