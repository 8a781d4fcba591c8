"""Small helpers for tests that talk to the running stack: sign in, upload, follow a stream."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import redis

from docflow.events.log import events_in

PASSWORD = "correct-horse-battery"
TERMINAL_OR_REVIEW = {"review", "finalised", "rejected", "failed"}
# A document's events from its first stage to review, when nothing goes wrong.
TO_REVIEW = [
    *["stage.started", "stage.completed"] * 4,
    "document.review",
]


def published(pubsub: Any) -> list[dict[str, Any]]:
    """The events published on a subscribed channel until it goes quiet (3 s at most): each
    message is a commit's events, one per line (events.log.messages)."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.3)
        if message is None and seen:
            break
        if message is not None:
            seen += [json.loads(text) for text in events_in(message["data"])]
    return seen


def queued_tasks(redis_url: str, key: str) -> list[tuple[str, list[str]]]:
    """(task name, its positional arguments: the document ids) of each Celery message waiting
    at Redis list `key`, oldest first."""
    client = redis.Redis.from_url(redis_url)
    try:
        raw = client.lrange(key, 0, -1)
    finally:
        client.close()
    messages = [json.loads(m) for m in reversed(raw)]
    return [(m["headers"]["task"], json.loads(base64.b64decode(m["body"]))[0]) for m in messages]


@dataclass
class Frame:
    event: str
    data: dict[str, Any]
    id: int | None


async def login(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    client.cookies.clear()  # API-client mode: the bearer token alone authenticates
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def upload(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    name: str,
    data: bytes,
    content_type: str = "application/octet-stream",
    extra: dict[str, str] | None = None,
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/documents",
        headers={**headers, **(extra or {})},
        files={"file": (name, data, content_type)},
    )
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


async def frames(response: httpx.Response) -> AsyncIterator[Frame]:
    event, data, event_id = "message", [], None
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield Frame(event, json.loads("\n".join(data)), event_id)
            event, data, event_id = "message", [], None
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                event_id = int(value)


async def collect_list_stream(
    client: httpx.AsyncClient, headers: dict[str, str], into: list[Frame]
) -> None:
    """Read the caller's list stream (GET /documents/stream) into `into` until cancelled."""
    async with client.stream(
        "GET", "/api/v1/documents/stream", headers=headers, timeout=None
    ) as response:
        assert response.status_code == 200
        async for frame in frames(response):
            into.append(frame)


async def follow(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    doc_id: str,
    *,
    until: set[str] | None = None,
    last_event_id: int | None = None,
    stop_after: int | None = None,
    timeout: float = 60,
) -> list[Frame]:
    """Read the document's stream until its status reaches `until` (or `stop_after` id'd events)."""
    until = until or {"review", "failed", "rejected", "finalised"}
    got: list[Frame] = []
    extra = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    async with asyncio.timeout(timeout):
        async with client.stream(
            "GET", f"/api/v1/documents/{doc_id}/stream", headers={**headers, **extra}, timeout=None
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            async for frame in frames(response):
                got.append(frame)
                if stop_after is not None and sum(f.id is not None for f in got) >= stop_after:
                    break
                if frame.event == "stage.progress" or frame.data.get("status") not in until:
                    continue
                # A snapshot ends the read only when no replay was asked for.
                if frame.event != "snapshot" or last_event_id is None:
                    break
    return got


async def wait_status(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    doc_id: str,
    statuses: set[str],
    timeout: float = 60,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = (
            await client.get(f"/api/v1/documents/{doc_id}", headers=headers)
        ).json()
        if body.get("status") in statuses:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"{doc_id} stuck in {body.get('status')}: {body.get('message')}")
        await asyncio.sleep(0.2)


def wait_api(base_url: str, timeout: float = 60) -> None:
    """Until the API answers its liveness check (an API with no worker is never ready)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/api/v1/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("api did not come up")


def assert_envelope(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error
