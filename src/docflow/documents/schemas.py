from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, computed_field

UNCERTAIN_BELOW = 0.5


class DocumentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, populate_by_name=True)

    id: uuid.UUID
    owner_id: uuid.UUID
    filename: str
    title: str | None
    content_type: str | None
    declared_type: str | None
    kind: str | None
    size_bytes: int
    sha256: str
    status: str
    stage: str | None
    progress: int
    message: str | None
    error: str | None
    attempts: int
    page_count: int | None
    word_count: int | None
    language: str | None
    reading_time_minutes: float | None
    summary: str | None
    keywords: list[str]
    fields: dict[str, Any]
    metadata: dict[str, Any] = Field(validation_alias="doc_metadata")
    category: str | None
    category_confidence: float | None
    timings: dict[str, Any]
    reviewed_by: uuid.UUID | None
    reviewed_at: datetime | None
    review_note: str | None
    created_at: datetime
    updated_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def category_uncertain(self) -> bool:
        """True when the category's confidence is too low to trust without a look."""
        return self.category_confidence is not None and self.category_confidence < UNCERTAIN_BELOW


_READ_FIELDS = tuple(DocumentRead.model_fields)


def document_json(row: Mapping[str, Any]) -> bytes:
    """DocumentRead's JSON for a row as a mapping of its columns, of the types the model
    declares (a fresh upload's, on the busiest write): the bytes
    `DocumentRead.model_validate(row).model_dump_json()` gives, without building the model
    (a third of the cost). `tests/integration/test_upload_batches.py` compares the two."""
    body = {name: row[name] for name in _READ_FIELDS}
    confidence = body["category_confidence"]
    body["category_uncertain"] = confidence is not None and confidence < UNCERTAIN_BELOW
    return orjson.dumps(body, default=_uuid_text, option=orjson.OPT_UTC_Z)


def _uuid_text(value: Any) -> str:
    """asyncpg's UUIDs (orjson writes only uuid.UUID itself); nothing else is expected."""
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} in a document row")


class DocumentPage(BaseModel):
    items: list[DocumentRead]
    total: int
    page: int
    page_size: int


class DocumentText(BaseModel):
    document_id: uuid.UUID
    text: str


class EventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    document_id: uuid.UUID
    type: str
    status: str
    stage: str | None
    progress: int
    message: str | None
    data: dict[str, Any]
    actor: str
    created_at: datetime
