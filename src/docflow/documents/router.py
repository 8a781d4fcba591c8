"""HTTP for documents: upload, read, list, text, events and the live streams."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from docflow.deps import CurrentUser, SessionDep, SettingsDep
from docflow.documents import service as documents
from docflow.documents.params import FilterDep
from docflow.documents.schemas import DocumentPage, DocumentRead, DocumentText, EventRead
from docflow.documents.upload_stream import FORM_OVERHEAD_BYTES, UPLOAD_BODY, receive_file
from docflow.errors import AppError, PayloadTooLarge
from docflow.events import sse
from docflow.models import Document, DocumentEvent

router = APIRouter(prefix="/documents", tags=["documents"])


async def readable_document(
    document_id: uuid.UUID, session: SessionDep, user: CurrentUser
) -> Document:
    return await documents.get_visible(session, user, document_id)


ReadableDocument = Annotated[Document, Depends(readable_document)]


@router.post("", status_code=201, response_model=DocumentRead, openapi_extra=UPLOAD_BODY)
async def upload_document(
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    user: CurrentUser,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Document:
    """Upload a document (multipart field `file`) and start its pipeline.

    The size limit holds while the body streams in (413); the type is decided from the content
    against an allowlist (415 when the content contradicts the file's name).
    """
    length = request.headers.get("content-length")
    limit = settings.max_upload_bytes + FORM_OVERHEAD_BYTES
    if length and length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(
            "The file is larger than the upload limit.",
            details={"limit_bytes": settings.max_upload_bytes},
        )
    file = await receive_file(request, "file", settings.max_upload_bytes)
    doc, created = await documents.upload(session, settings, user, file, idempotency_key)
    if not created:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/api/v1/documents/{doc.id}"
    return doc


@router.get("", response_model=DocumentPage)
async def list_documents(
    session: SessionDep,
    user: CurrentUser,
    f: FilterDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 25,
) -> DocumentPage:
    """The caller's documents (every document, for reviewers), newest first or ranked by `q`."""
    rows, total = await documents.list_documents(session, user, f, page, page_size)
    return DocumentPage(
        items=[DocumentRead.model_validate(r) for r in rows],
        total=total,
        page=page,
        page_size=page_size,
    )


@router.get("/stream")
async def stream_my_documents(
    user: CurrentUser,
    request: Request,
    settings: SettingsDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Server-Sent Events for all the caller's documents (the list view)."""
    owner = None if user.sees_all else user.id
    hub = request.app.state.hub

    async def body() -> AsyncIterator[str]:
        async with hub.subscribe(owner_id=owner) as sub:
            async for chunk in sse.stream(
                hub,
                sub,
                snapshot=lambda: documents.user_snapshot(user),
                replay=lambda after: documents.replay(after, owner_id=owner),
                last_event_id=_event_id(last_event_id),
                retry_ms=settings.sse_retry_ms,
                keepalive=settings.sse_keepalive_seconds,
            ):
                yield chunk

    return StreamingResponse(body(), media_type="text/event-stream", headers=sse.HEADERS)


@router.get("/{document_id}", response_model=DocumentRead)
async def get_document(doc: ReadableDocument) -> Document:
    """A document's current state, metadata, analysis and stage timings."""
    return doc


@router.get("/{document_id}/text", response_model=DocumentText)
async def get_document_text(doc: ReadableDocument, session: SessionDep) -> DocumentText:
    """The full extracted text."""
    return DocumentText(document_id=doc.id, text=await documents.text_of(session, doc))


@router.get("/{document_id}/events", response_model=list[EventRead])
async def get_document_events(
    doc: ReadableDocument,
    session: SessionDep,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> list[DocumentEvent]:
    """The audit trail: every transition and stage, with actor and reason, oldest first."""
    return await documents.events_of(session, doc, after, limit)


@router.get("/{document_id}/stream")
async def stream_document(
    doc: ReadableDocument,
    request: Request,
    settings: SettingsDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Server-Sent Events: a snapshot, then every persisted event after Last-Event-ID, then live."""
    hub, document_id = request.app.state.hub, doc.id

    async def body() -> AsyncIterator[str]:
        async with hub.subscribe(document_id=document_id) as sub:
            async for chunk in sse.stream(
                hub,
                sub,
                snapshot=lambda: documents.document_snapshot(document_id),
                replay=lambda after: documents.replay(after, document_id=document_id),
                last_event_id=_event_id(last_event_id),
                retry_ms=settings.sse_retry_ms,
                keepalive=settings.sse_keepalive_seconds,
            ):
                yield chunk

    return StreamingResponse(body(), media_type="text/event-stream", headers=sse.HEADERS)


def _event_id(value: str | None) -> int | None:
    if value is None or value.strip() == "":
        return None
    if not value.strip().isdigit():
        raise AppError("Last-Event-ID must be an event id.", details={"last_event_id": value})
    return int(value.strip())
