"""The two event streams as lean ASGI endpoints.

A process holds thousands of streams for hours, so what a stream keeps alive matters more than
what it costs once. These endpoints run outside FastAPI's dependency machinery (whose
per-request exit stacks and wrappers would live as long as the stream) and outside
StreamingResponse (a task group and two tasks per stream): one task writes the stream, and a
pending `receive()` ends it when the client goes away. Opening one is one query: the user, the
document's visibility and its snapshot together. The app's middlewares still apply (request id,
security headers, rate limits, metrics), and errors before the first byte are raised as usual,
so they reach the client in the standard envelope.

The OpenAPI document describes both routes through the stubs in documents/router.py.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from fastapi.exceptions import RequestValidationError
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from docflow import ratelimit
from docflow.config import get_settings
from docflow.deps import token_user
from docflow.documents import service as documents
from docflow.errors import AppError
from docflow.events import sse
from docflow.events.hub import EventHub, Subscriber

HEADERS = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    *((name.lower().encode(), value.encode()) for name, value in sse.HEADERS.items()),
)
BODY = "http.response.body"
# For the OpenAPI stubs in documents/router.py.
OPENAPI_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "An endless text/event-stream: `retry:`, an `event: snapshot` frame, then "
        "events (persisted ones carry `id:`), a keep-alive comment every ~15 s.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
}


class EventStream:
    """GET /documents/stream (every document the caller sees) or /documents/{id}/stream.

    A class, so that Starlette routes requests to it as a plain ASGI app.
    """

    def __init__(self, *, per_document: bool) -> None:
        self.per_document = per_document

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hub: EventHub = scope["app"].state.hub
        document_id = _document_id(scope) if self.per_document else None
        user_id, method = await token_user(HTTPConnection(scope), get_settings())  # a GET: no CSRF
        # Subscribe before anything is read, so that no event falls between the read and live.
        sub = Subscriber(
            str(document_id) if document_id else None,
            None if document_id else str(user_id),
            hub.queue_size,
        )
        hub.add(sub)
        try:
            scope.setdefault("state", {})["auth_method"] = method
            await self._serve(scope, receive, send, hub, sub, user_id, document_id)
        finally:
            hub.remove(sub)

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        hub: EventHub,
        sub: Subscriber,
        user_id: uuid.UUID,
        document_id: uuid.UUID | None,
    ) -> None:
        settings = get_settings()
        moved = False
        if document_id is not None:
            _, state, cursor = await documents.open_document_stream(user_id, document_id)
            snapshot: sse.Snapshot = lambda: documents.document_snapshot(document_id)  # noqa: E731
            replay: sse.Replay = lambda after, limit: documents.replay(  # noqa: E731
                after, limit, document_id=document_id
            )
        else:
            viewer, state, cursor = await documents.open_user_stream(user_id)
            sees_all = viewer.sees_all
            owner = None if sees_all else user_id
            if sees_all:  # reviewers and admins: every document, not only their own
                hub.remove(sub)
                sub.owner_id = None
                hub.add(sub)
                moved = True  # events of others' documents may have passed meanwhile
            snapshot = lambda: documents.user_snapshot(user_id, sees_all)  # noqa: E731
            replay = lambda after, limit: documents.replay(after, limit, owner_id=owner)  # noqa: E731
        await ratelimit.check_user(settings, scope["method"], scope["path"], str(user_id))
        last_event_id = _last_event_id(scope)
        body = sse.stream(
            hub,
            sub,
            opening=(state, cursor),
            snapshot=snapshot,
            replay=replay,
            last_event_id=last_event_id,
            retry_ms=settings.sse_retry_ms,
            keepalive=settings.sse_keepalive_seconds,
            catch_up_first=moved,
        )
        del state
        await _drain_request(receive)
        # The request is in; the only thing receive() can still say is that the client left.
        watcher = asyncio.ensure_future(receive())
        watcher.add_done_callback(lambda _: sub.close())
        try:
            # A new message each time: middlewares add their headers to the one they are given.
            await send({"type": "http.response.start", "status": 200, "headers": list(HEADERS)})
            async for chunk in body:
                await send({"type": BODY, "body": chunk.encode(), "more_body": True})
            if not sub.closed:
                await send({"type": BODY, "body": b"", "more_body": False})
        finally:
            watcher.cancel()
            await body.aclose()


async def _drain_request(receive: Receive) -> None:
    message = await receive()
    while message["type"] == "http.request" and message.get("more_body"):
        message = await receive()


def _document_id(scope: Scope) -> uuid.UUID:
    raw = scope["path_params"]["document_id"]
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise RequestValidationError(
            [
                {
                    "loc": ("path", "document_id"),
                    "msg": "Input should be a valid UUID",
                    "type": "uuid_parsing",
                    "input": raw,
                }
            ]
        ) from None


def _last_event_id(scope: Scope) -> int | None:
    value = next((v for k, v in scope["headers"] if k == b"last-event-id"), b"").decode().strip()
    if value == "":
        return None
    if not value.isdigit():
        raise AppError("Last-Event-ID must be an event id.", details={"last_event_id": value})
    return int(value)


class Handoff(Response):
    """What the OpenAPI stubs answer, should a request ever reach them: the stream itself."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__()
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


MY_DOCUMENTS = EventStream(per_document=False)
ONE_DOCUMENT = EventStream(per_document=True)
