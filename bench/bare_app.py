"""The baselines' server: bare Starlette endpoints doing the least the same job needs.

Run by uvicorn with the same defaults as Docflow's API (uvloop, httptools, no access log):

    python -m uvicorn --app-dir bench bare_app:app --port P --no-access-log

- POST /upload: parse the multipart body, read the file, answer 201 with a small JSON body
  (no auth, no database, no queue: the ceiling our upload is compared with).
- GET /stream/{topic}: an SSE stream fed from an in-process queue per connection; a ticker
  publishes BARE_RATE events a second to random topics out of BARE_TOPICS (what our hub does
  with Redis messages, minus Redis, auth and the database).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

SUBSCRIBERS: dict[str, set[asyncio.Queue[str]]] = {}


async def upload(request: Request) -> Response:
    form = await request.form()
    file: Any = form["file"]
    data = await file.read()
    return JSONResponse(
        {"id": str(uuid.uuid4()), "size_bytes": len(data), "filename": file.filename},
        status_code=201,
    )


async def stream(request: Request) -> Response:
    topic = request.path_params["topic"]
    queue: asyncio.Queue[str] = asyncio.Queue(256)

    async def body() -> AsyncIterator[str]:
        group = SUBSCRIBERS.setdefault(topic, set())
        group.add(queue)
        try:
            yield "retry: 3000\n\n"
            yield f"event: snapshot\ndata: {json.dumps({'topic': topic})}\n\n"
            while True:
                try:
                    data = await asyncio.wait_for(queue.get(), 15)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                yield f"event: stage.progress\ndata: {data}\n\n"
        finally:
            group.discard(queue)

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def ticker() -> None:
    rate = float(os.environ.get("BARE_RATE", "0"))
    topics = int(os.environ.get("BARE_TOPICS", "100"))
    if rate <= 0:
        return
    interval = 1 / rate
    while True:
        await asyncio.sleep(interval)
        topic = f"t{random.randrange(topics)}"
        data = json.dumps({"type": "stage.progress", "topic": topic, "t": time.monotonic_ns()})
        for queue in SUBSCRIBERS.get(topic, ()):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(data)


@contextlib.asynccontextmanager
async def lifespan(_app: Starlette) -> AsyncIterator[None]:
    task = asyncio.create_task(ticker())
    yield
    task.cancel()


async def health(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/upload", upload, methods=["POST"]),
        Route("/stream/{topic}", stream),
    ],
    lifespan=lifespan,
)
