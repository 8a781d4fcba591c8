"""SQL for whole small uploads: documents, their bytes and their first events in one statement.

Most uploads are small enough to be whole in memory once their type has been sniffed. For
those, one autocommitted statement on a pooled connection's driver replaces the ORM unit of work
(session, user lookup, three INSERTs, COMMIT), and it takes any number of uploads at once (the
group commit in `documents.intake`). The account check is part of it: an upload whose account
is disabled or deleted inserts nothing, and neither does one whose Idempotency-Key its owner
has used already. Larger uploads stream through `DocumentRepository` in a session instead.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from docflow.models import Document

# The row read back leaves out the JSON columns, which start empty (see the INSERT below):
# decoding them for every upload cost more than the rest of the row together.
ROW_COLUMNS = ", ".join(c.name for c in Document.__table__.columns if not isinstance(c.type, JSONB))


def _empty_json() -> dict[str, Any]:
    return {"keywords": [], "fields": {}, "metadata": {}, "timings": {}}


EVENT_COLUMNS = (
    "event_document_id",
    "event_id",
    "event_created_at",
    "event_actor",
    "event_message",
    "event_data",
)

INSERT_WHOLE = f"""
WITH input AS (
    SELECT * FROM unnest(
        $1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[],
        $8::text[], $9::bytea[], $10::text[], $11::text[], $12::int[]
    ) AS t(id, owner_id, idempotency_key, filename, declared_type, size_bytes, sha256, message,
           data, event_message, event_data, ord)
), ok AS (
    SELECT input.*, u.email FROM input JOIN users u ON u.id = input.owner_id AND u.is_active
), d AS (
    INSERT INTO documents (
        id, owner_id, idempotency_key, filename, declared_type, size_bytes, sha256, status, stage,
        progress, message, attempts, keywords, fields, metadata, timings, enqueued_at
    )
    SELECT id, owner_id, idempotency_key, filename, declared_type, size_bytes, sha256,
           'uploaded', 'validate', 0, message, 0,
           '[]'::jsonb, '{{}}'::jsonb, '{{}}'::jsonb, '{{}}'::jsonb, now()
    FROM ok ORDER BY ord
    ON CONFLICT DO NOTHING
    RETURNING {ROW_COLUMNS}
), b AS (
    INSERT INTO document_blobs (document_id, seq, data)
    SELECT d.id, 0, ok.data FROM d JOIN ok ON ok.id = d.id WHERE ok.data IS NOT NULL
), e AS (
    INSERT INTO document_events (
        document_id, owner_id, type, status, stage, progress, message, data, actor
    )
    SELECT d.id, d.owner_id, 'document.uploaded', d.status, d.stage, d.progress,
           ok.event_message, ok.event_data::jsonb, ok.email
    FROM d JOIN ok ON ok.id = d.id ORDER BY ok.ord
    RETURNING document_id AS event_document_id, id AS event_id, created_at AS event_created_at,
              actor AS event_actor, message AS event_message, data AS event_data
)
SELECT d.*, e.* FROM d JOIN e ON e.event_document_id = d.id
"""

BY_IDEMPOTENCY_KEY = "SELECT * FROM documents WHERE owner_id = $1 AND idempotency_key = $2"


@dataclass(frozen=True, slots=True)
class WholeUpload:
    id: uuid.UUID
    owner_id: uuid.UUID
    idempotency_key: str | None
    filename: str
    declared_type: str | None
    size_bytes: int
    sha256: str
    message: str
    data: bytes | None  # None when the bytes are already in filesystem storage
    event_message: str
    event_data: str  # JSON


Inserted = tuple[dict[str, Any], dict[str, Any]]  # the document's row, its event's columns


async def insert_whole(driver: Any, uploads: list[WholeUpload]) -> dict[uuid.UUID, Inserted]:
    """Insert the uploads that may be inserted; the result has an entry for each of those.
    `driver`: a pooled connection's asyncpg connection (`driver`)."""
    rows = await driver.fetch(
        INSERT_WHOLE,
        [u.id for u in uploads],
        [u.owner_id for u in uploads],
        [u.idempotency_key for u in uploads],
        [u.filename for u in uploads],
        [u.declared_type for u in uploads],
        [u.size_bytes for u in uploads],
        [u.sha256 for u in uploads],
        [u.message for u in uploads],
        [u.data for u in uploads],
        [u.event_message for u in uploads],
        [u.event_data for u in uploads],
        list(range(len(uploads))),
    )
    inserted: dict[uuid.UUID, Inserted] = {}
    for row in rows:
        doc = dict(row)
        event = {key: doc.pop(key) for key in EVENT_COLUMNS}
        doc.update(_empty_json())
        inserted[doc["id"]] = (doc, event)
    return inserted


async def by_idempotency_key(
    conn: AsyncConnection, owner_id: uuid.UUID, key: str
) -> dict[str, Any] | None:
    row = await (await driver(conn)).fetchrow(BY_IDEMPOTENCY_KEY, owner_id, key)
    return dict(row) if row is not None else None


async def driver(conn: AsyncConnection) -> Any:
    """The asyncpg connection under a pooled SQLAlchemy connection. Statements sent on it
    directly autocommit: SQLAlchemy has begun no transaction on it."""
    raw = await conn.get_raw_connection()
    return raw.driver_connection
