"""HTTP for documents: upload, read, list, text, events and the live streams."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from docflow.config import get_settings
from docflow.deps import CurrentUser, SessionDep, uploader
from docflow.documents import service as documents
from docflow.documents import streams
from docflow.documents.params import FilterDep
from docflow.documents.schemas import (
    DocumentPage,
    DocumentRead,
    DocumentText,
    EventRead,
    document_json,
)
from docflow.documents.upload_stream import FORM_OVERHEAD_BYTES, UPLOAD_BODY, receive_file
from docflow.errors import PayloadTooLarge
from docflow.models import Document, DocumentEvent

router = APIRouter(prefix="/documents", tags=["documents"])


async def readable_document(
    document_id: uuid.UUID, session: SessionDep, user: CurrentUser
) -> Document:
    return await documents.get_visible(session, user, document_id)


ReadableDocument = Annotated[Document, Depends(readable_document)]
LastEventId = Annotated[str | None, Header(alias="Last-Event-ID")]


async def upload(request: Request) -> Response:
    """POST /documents as a plain Starlette endpoint: the busiest write in the API skips
    FastAPI's dependency solving and response-model round trip (the stub below documents it)."""
    settings = get_settings()
    owner_id = await uploader(request, settings)
    length = request.headers.get("content-length")
    limit = settings.max_upload_bytes + FORM_OVERHEAD_BYTES
    if length and length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(
            "The file is larger than the upload limit.",
            details={"limit_bytes": settings.max_upload_bytes},
        )
    file = await receive_file(request, "file", settings.max_upload_bytes)
    key = request.headers.get("idempotency-key")
    doc, created = await documents.upload(settings, owner_id, file, key)
    if created and isinstance(doc, dict):  # a fresh whole upload's row, as the model types it
        document_id, body = doc["id"], document_json(doc)
    else:
        read = DocumentRead.model_validate(doc)
        document_id, body = read.id, read.model_dump_json().encode()
    headers = {"Location": f"/api/v1/documents/{document_id}"}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return Response(
        body,
        status_code=201 if created else 200,
        headers=headers,
        media_type="application/json",
    )


router.add_route(router.prefix, upload, methods=["POST"], include_in_schema=False)


@router.post(
    "",
    status_code=201,
    response_model=DocumentRead,
    openapi_extra=UPLOAD_BODY,
    responses={200: {"model": DocumentRead, "description": "Replayed (same Idempotency-Key)"}},
)
async def upload_document(
    request: Request,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,  # noqa: ARG001
) -> Response:
    """Upload a document (multipart field `file`) and start its pipeline.

    The size limit holds while the body streams in (413); the type is decided from the content
    against an allowlist (415 when the content contradicts the file's name). A repeated
    Idempotency-Key answers 200 with the first upload's document.
    """
    return await upload(request)


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


# The streams are served by lean ASGI endpoints (documents/streams.py), routed before the
# stubs below; the stubs describe them in the OpenAPI document.
router.add_route(
    f"{router.prefix}/stream",
    streams.MY_DOCUMENTS,  # type: ignore[arg-type]  # an ASGI app, which Starlette accepts
    methods=["GET"],
    include_in_schema=False,
)


@router.get("/stream", response_class=Response, responses=streams.OPENAPI_RESPONSES)
async def stream_my_documents(last_event_id: LastEventId = None) -> Response:  # noqa: ARG001
    """Server-Sent Events for all the caller's documents (the list view; reviewers and admins:
    every document). A snapshot, then every persisted event after Last-Event-ID, then live."""
    return streams.Handoff(streams.MY_DOCUMENTS)


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


router.add_route(
    f"{router.prefix}/{{document_id}}/stream",
    streams.ONE_DOCUMENT,  # type: ignore[arg-type]
    methods=["GET"],
    include_in_schema=False,
)


@router.get("/{document_id}/stream", response_class=Response, responses=streams.OPENAPI_RESPONSES)
async def stream_document(
    document_id: uuid.UUID,  # noqa: ARG001 (the parameters are for the OpenAPI document)
    last_event_id: LastEventId = None,  # noqa: ARG001
) -> Response:
    """Server-Sent Events: a snapshot, then every persisted event after Last-Event-ID, then live."""
    return streams.Handoff(streams.ONE_DOCUMENT)
