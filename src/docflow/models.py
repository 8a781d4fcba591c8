"""The tables. PostgreSQL is the record of everything; Redis only carries hints."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Computed,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Role(StrEnum):
    UPLOADER = "uploader"
    REVIEWER = "reviewer"
    ADMIN = "admin"


class Status(StrEnum):
    UPLOADED = "uploaded"
    PROCESSING = "processing"
    REVIEW = "review"
    FINALISED = "finalised"
    REJECTED = "rejected"
    FAILED = "failed"


class Stage(StrEnum):
    VALIDATE = "validate"
    EXTRACT = "extract"
    ANALYZE = "analyze"
    CATEGORIZE = "categorize"


STAGES: tuple[Stage, ...] = tuple(Stage)


def _now() -> Any:
    return func.now()


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=Role.UPLOADER.value)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())

    @property
    def sees_all(self) -> bool:
        """Reviewers and admins see and act on every document; uploaders only their own."""
        return self.role in {Role.REVIEWER.value, Role.ADMIN.value}


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    family_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class Document(Base):
    __tablename__ = "documents"
    # updated_at is set by the server on every UPDATE; fetch it back with RETURNING so an async
    # session never has to lazy-load it after a flush.
    __mapper_args__ = {"eager_defaults": True}
    __table_args__ = (
        UniqueConstraint("owner_id", "idempotency_key", name="uq_documents_owner_idempotency"),
        Index("ix_documents_owner_created", "owner_id", "created_at"),
        Index("ix_documents_status_updated", "status", "updated_at"),
        Index(
            "ix_documents_search_name_trgm",
            "search_name",
            postgresql_using="gin",
            postgresql_ops={"search_name": "gin_trgm_ops"},
        ),
        # The reaper's two scans stay cheap however many finished documents there are.
        Index(
            "ix_documents_lease_until",
            "lease_until",
            postgresql_where=text("status = 'processing'"),
        ),
        Index(
            "ix_documents_waiting",
            "enqueued_at",
            postgresql_where=text("status IN ('uploaded', 'processing') AND lease_until IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))

    filename: Mapped[str] = mapped_column(String(255))
    title: Mapped[str | None] = mapped_column(String(500))
    search_name: Mapped[str] = mapped_column(
        Text, Computed("coalesce(title, '') || ' ' || filename", persisted=True)
    )
    declared_type: Mapped[str | None] = mapped_column(String(255))
    content_type: Mapped[str | None] = mapped_column(String(255))
    kind: Mapped[str | None] = mapped_column(String(32))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))

    status: Mapped[str] = mapped_column(String(16), default=Status.UPLOADED.value)
    stage: Mapped[str | None] = mapped_column(String(16))
    progress: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    # Claim bookkeeping: who runs the current stage, until when, and how many tries it has had.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    page_count: Mapped[int | None] = mapped_column(Integer)
    word_count: Mapped[int | None] = mapped_column(Integer)
    language: Mapped[str | None] = mapped_column(String(16))
    reading_time_minutes: Mapped[float | None] = mapped_column(Float)
    summary: Mapped[str | None] = mapped_column(Text)
    keywords: Mapped[list[str]] = mapped_column(JSONB, default=list)
    fields: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    doc_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, default=dict)
    category: Mapped[str | None] = mapped_column(String(64))
    category_confidence: Mapped[float | None] = mapped_column(Float)
    timings: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)

    reviewed_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    review_note: Mapped[str | None] = mapped_column(Text)

    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=_now(), index=True
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=_now(), onupdate=_now()
    )


class DocumentText(Base):
    __tablename__ = "document_texts"
    __table_args__ = (Index("ix_document_texts_tsv", "tsv", postgresql_using="gin"),)

    document_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True
    )
    content: Mapped[str] = mapped_column(Text)
    # Bounded so a huge text cannot exceed tsvector's size limit.
    tsv: Mapped[Any] = mapped_column(
        TSVECTOR, Computed("to_tsvector('english', left(content, 200000))", persisted=True)
    )


class DocumentBlob(Base):
    """The original file, in chunks, for the database storage backend."""

    __tablename__ = "document_blobs"

    document_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class DocumentEvent(Base):
    """The audit trail and the replay log of the event stream."""

    __tablename__ = "document_events"
    # Fetch id and created_at on insert: the event is published after commit with both.
    __mapper_args__ = {"eager_defaults": True}
    __table_args__ = (
        Index("ix_document_events_document_id_id", "document_id", "id"),
        Index("ix_document_events_owner_id_id", "owner_id", "id"),
        # Recent throughput (an upload's queue estimate) counts these without a table scan.
        Index(
            "ix_document_events_review",
            "created_at",
            postgresql_where=text("type = 'document.review'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    owner_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    type: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    stage: Mapped[str | None] = mapped_column(String(16))
    progress: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    actor: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class Category(Base):
    """The taxonomy reviewers choose from; an admin adds and renames entries."""

    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(Integer, Identity(always=True), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # The built-in rule set that speaks for this category ("resume" for a renamed "cv");
    # None for a category an admin added, which only the learned classifier can predict.
    rule_key: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=_now(), onupdate=_now()
    )


class ClassifierModel(Base):
    """One trained category classifier; the categorize stage uses the newest version."""

    __tablename__ = "classifier_models"

    id: Mapped[int] = mapped_column(Integer, Identity(always=True), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    sample_count: Mapped[int] = mapped_column(Integer)
    classes: Mapped[list[str]] = mapped_column(JSONB, default=list)
    # Training figures shown to admins: per-class counts, corrections used, duration.
    info: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class ApiToken(Base):
    """A personal token for scripts: shown once, stored as a hash, listable and revocable."""

    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    # The first characters of the token, so a person can tell their tokens apart in a list.
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
