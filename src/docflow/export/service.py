"""Export finalised documents as CSV or JSON, streamed from a server-side cursor.

Memory stays flat however many rows there are: rows are fetched in batches and written out as
they come. CSV cells that a spreadsheet would run as a formula are neutralised.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select

from docflow.db import async_session_factory
from docflow.documents.repository import DocumentFilter, apply_filter
from docflow.models import Document, Status, User

COLUMNS: dict[str, Any] = {
    "id": Document.id,
    "filename": Document.filename,
    "title": Document.title,
    "category": Document.category,
    "category_confidence": Document.category_confidence,
    "language": Document.language,
    "page_count": Document.page_count,
    "word_count": Document.word_count,
    "keywords": Document.keywords,
    "summary": Document.summary,
    "content_type": Document.content_type,
    "size_bytes": Document.size_bytes,
    "sha256": Document.sha256,
    "owner_id": Document.owner_id,
    "reviewed_by": Document.reviewed_by,
    "reviewed_at": Document.reviewed_at,
    "created_at": Document.created_at,
}
BATCH = 2000
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\0")


def neutralise(value: str) -> str:
    """OWASP CSV injection: a leading quote keeps a spreadsheet from evaluating the cell."""
    return "'" + value if value.startswith(FORMULA_START) else value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return neutralise("; ".join(str(v) for v in value))
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:.4f}"
    return neutralise(str(value))


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str | list | dict):
        return value
    return str(value)


async def _batches(user: User, f: DocumentFilter) -> AsyncIterator[Sequence[Any]]:
    stmt = apply_filter(select(*COLUMNS.values()), f).where(
        Document.status == Status.FINALISED.value
    )
    if not user.sees_all:
        stmt = stmt.where(Document.owner_id == user.id)
    stmt = stmt.order_by(Document.created_at, Document.id).execution_options(yield_per=BATCH)
    async with async_session_factory()() as session:
        result = await session.stream(stmt)
        async for partition in result.partitions(BATCH):
            yield partition


async def csv_rows(user: User, f: DocumentFilter) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS.keys())
    yield buffer.getvalue()
    async for batch in _batches(user, f):
        buffer.seek(0)
        buffer.truncate()
        writer.writerows([_cell(v) for v in row] for row in batch)
        yield buffer.getvalue()


async def json_rows(user: User, f: DocumentFilter) -> AsyncIterator[str]:
    names = list(COLUMNS.keys())
    first = True
    yield "["
    async for batch in _batches(user, f):
        parts = []
        for row in batch:
            item = json.dumps(
                {k: _json_value(v) for k, v in zip(names, row, strict=True)},
                ensure_ascii=False,
                separators=(",", ":"),
            )
            parts.append(("\n" if first else ",\n") + item)
            first = False
        yield "".join(parts)
    yield "\n]\n"
