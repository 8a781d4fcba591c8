"""Export finalised documents as CSV or JSON, produced by PostgreSQL itself.

`COPY (query) TO STDOUT` writes the rows as CSV (or one JSON object per line), and the bytes go
straight to the response through a small bounded queue: memory stays flat however many rows
there are, and no Python object is made per row. CSV cells that a spreadsheet would run as a
formula are neutralised in the query.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import ColumnElement, Select, String, case, cast, func, literal, select
from sqlalchemy.dialects import postgresql

from docflow.db import async_engine
from docflow.documents.repository import DocumentFilter, apply_filter
from docflow.models import Document, Status, User

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_END = b""


def neutralise(value: Any) -> ColumnElement[Any]:
    """OWASP CSV injection: a leading quote keeps a spreadsheet from evaluating the cell."""
    return case((func.left(value, 1).in_(FORMULA_START), literal("'") + value), else_=value)


def _iso(value: Any) -> ColumnElement[Any]:
    """ISO 8601 in UTC, whatever the session's time zone."""
    return func.to_char(func.timezone("UTC", value), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')


KEYWORDS = func.array_to_string(
    func.array(
        select(func.jsonb_array_elements_text(Document.keywords))
        .correlate(Document)
        .scalar_subquery()
    ),
    "; ",
)

# name → (CSV cell, JSON value)
COLUMNS: dict[str, tuple[Any, Any]] = {
    "id": (Document.id, Document.id),
    "filename": (neutralise(Document.filename), Document.filename),
    "title": (neutralise(Document.title), Document.title),
    "category": (neutralise(Document.category), Document.category),
    "category_confidence": (
        func.round(cast(Document.category_confidence, postgresql.NUMERIC), 4),
        Document.category_confidence,
    ),
    "language": (Document.language, Document.language),
    "page_count": (Document.page_count, Document.page_count),
    "word_count": (Document.word_count, Document.word_count),
    "keywords": (neutralise(KEYWORDS), Document.keywords),
    "summary": (neutralise(Document.summary), Document.summary),
    "content_type": (Document.content_type, Document.content_type),
    "size_bytes": (Document.size_bytes, Document.size_bytes),
    "sha256": (Document.sha256, Document.sha256),
    "owner_id": (Document.owner_id, Document.owner_id),
    "reviewed_by": (Document.reviewed_by, Document.reviewed_by),
    "reviewed_at": (_iso(Document.reviewed_at), Document.reviewed_at),
    "created_at": (_iso(Document.created_at), Document.created_at),
}


def _scope(stmt: Select[Any], user: User, f: DocumentFilter) -> Select[Any]:
    stmt = apply_filter(stmt.select_from(Document), f).where(
        Document.status == Status.FINALISED.value
    )
    if not user.sees_all:
        stmt = stmt.where(Document.owner_id == user.id)
    return stmt.order_by(Document.created_at, Document.id)


def csv_query(user: User, f: DocumentFilter) -> Select[Any]:
    return _scope(select(*(cell.label(name) for name, (cell, _) in COLUMNS.items())), user, f)


def json_query(user: User, f: DocumentFilter) -> Select[Any]:
    pairs: list[Any] = []
    for name, (_, value) in COLUMNS.items():
        pairs += [literal(name), value]
    return _scope(select(cast(func.json_build_object(*pairs), String)), user, f)


def _sql(stmt: Select[Any]) -> tuple[str, list[Any]]:
    compiled = stmt.compile(
        dialect=postgresql.asyncpg.dialect(),  # type: ignore[no-untyped-call]
        compile_kwargs={"render_postcompile": True},
    )
    params = [compiled.params[name] for name in (compiled.positiontup or [])]
    return str(compiled), params


async def _copy(stmt: Select[Any], **options: Any) -> AsyncIterator[bytes]:
    """Run COPY (stmt) TO STDOUT and yield its bytes as they come, with a bounded buffer."""
    query, params = _sql(stmt)
    chunks: asyncio.Queue[bytes] = asyncio.Queue(maxsize=16)
    buffer = bytearray()

    async def sink(chunk: bytes) -> None:
        # COPY hands over about one row at a time; pass on ~64 KiB pieces instead.
        buffer.extend(chunk)
        if len(buffer) >= 65536:
            await chunks.put(bytes(buffer))
            buffer.clear()

    async with async_engine().connect() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection

        async def produce() -> None:
            try:
                await driver.copy_from_query(query, *params, output=sink, **options)
                if buffer:
                    await chunks.put(bytes(buffer))
            finally:
                await chunks.put(_END)

        producer = asyncio.create_task(produce())
        try:
            while (chunk := await chunks.get()) != _END:
                yield chunk
            await producer  # surfaces a failed COPY
        finally:
            if not producer.done():
                producer.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await producer


async def csv_rows(user: User, f: DocumentFilter) -> AsyncIterator[bytes]:
    async for chunk in _copy(csv_query(user, f), format="csv", header=True):
        yield chunk


async def json_rows(user: User, f: DocumentFilter) -> AsyncIterator[bytes]:
    """One JSON object per COPY line, joined into an array as the bytes stream past."""
    # QUOTE and DELIMITER are bytes JSON never contains raw, so COPY passes each line untouched.
    lines = _copy(json_query(user, f), format="csv", quote="\x01", delimiter="\x02")
    async for chunk in json_array(lines):
        yield chunk


async def json_array(lines: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Newline-terminated JSON values, cut anywhere, as one JSON array.

    Every line ends in a newline (JSON text never holds a raw one), so each newline becomes
    ",\n" in one bytes.replace per chunk, and the very last separator is held back and dropped.
    """
    yield b"[\n"
    held = b""
    async for chunk in lines:
        out = held + chunk.replace(b"\n", b",\n")
        held = out[-2:]
        if len(out) > 2:
            yield out[:-2]
    yield b"\n]\n" if held else b"]\n"
