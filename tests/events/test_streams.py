"""The streams as a client sees them: who sees what, errors in the envelope, the headers every
response carries, and a stream that ends when its client goes away."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from tests.conftest import Stack
from tests.fixtures.files import SAMPLE_TEXTS
from tests.helpers import (
    Frame,
    assert_envelope,
    collect_list_stream,
    frames,
    login,
    upload,
    wait_status,
)


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as c:
        yield c


async def _until(done: Callable[[], Awaitable[bool]], seconds: float = 10) -> None:
    async with asyncio.timeout(seconds):
        while True:
            if await done():
                return
            await asyncio.sleep(0.05)


async def _open_streams(client: httpx.AsyncClient) -> int:
    body = (await client.get("/metrics")).text
    match = re.search(r"^docflow_open_streams (\S+)", body, re.M)
    assert match, body
    return int(float(match.group(1)))


async def test_list_streams_show_uploaders_their_own_and_reviewers_everything(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    mine, theirs = (
        await login(client, stack.users["uploader"]),
        await login(client, stack.users["other"]),
    )
    boss = await login(client, stack.users["reviewer"])
    seen_by: dict[str, list[Frame]] = {"mine": [], "boss": []}
    watchers = [
        asyncio.create_task(collect_list_stream(client, mine, seen_by["mine"])),
        asyncio.create_task(collect_list_stream(client, boss, seen_by["boss"])),
    ]
    try:

        async def opened() -> bool:  # both snapshots arrived
            return all(seen_by.values())

        await _until(opened)
        assert seen_by["mine"][0].data["scope"] == "own"
        assert seen_by["boss"][0].data["scope"] == "all"
        text = SAMPLE_TEXTS["resume"].encode()
        own = await upload(client, mine, "own.txt", text, "text/plain")
        other = await upload(client, theirs, "other.txt", text, "text/plain")
        for doc, headers in ((own, mine), (other, theirs)):
            await wait_status(client, headers, doc["id"], {"review"})

        async def reviewer_saw_both() -> bool:
            done = {
                f.data.get("document_id")
                for f in seen_by["boss"]
                if f.data.get("status") == "review"
            }
            return {own["id"], other["id"]} <= done

        await _until(reviewer_saw_both)
    finally:
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
    documents = {f.data.get("document_id") for f in seen_by["mine"][1:]}
    assert own["id"] in documents and other["id"] not in documents
    ids = [f.id for f in seen_by["boss"] if f.id is not None]
    assert len(ids) == len(set(ids)), "the reviewer's stream repeated an event"


async def test_stream_errors_come_in_the_envelope_with_the_usual_headers(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    me = await login(client, stack.users["uploader"])
    doc = await upload(client, me, "e.txt", SAMPLE_TEXTS["resume"].encode(), "text/plain")
    path = f"/api/v1/documents/{doc['id']}/stream"
    assert_envelope(await client.get(path), 401, "unauthorized")
    assert_envelope(await client.get("/api/v1/documents/stream"), 401, "unauthorized")
    bad_token = {"Authorization": "Bearer not-a-token"}
    assert_envelope(await client.get(path, headers=bad_token), 401, "unauthorized")
    missing = f"/api/v1/documents/{uuid.uuid4()}/stream"
    assert_envelope(await client.get(missing, headers=me), 404, "not_found")
    invalid = assert_envelope(
        await client.get("/api/v1/documents/not-a-uuid/stream", headers=me),
        422,
        "validation_error",
    )
    assert "document_id" in invalid["message"]
    refused = await client.get(path, headers={**me, "Last-Event-ID": "abc"})
    assert_envelope(refused, 400, "bad_request")
    for response in (refused, await client.get(path)):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-request-id"]
    assert_envelope(await client.post(path, headers=me), 405, "method_not_allowed")
    # A script's API token opens streams too.
    created = await client.post("/api/v1/auth/tokens", headers=me, json={"name": "follow"})
    script = {"Authorization": f"Bearer {created.json()['token']}"}
    async with client.stream("GET", path, headers=script) as response:
        assert response.status_code == 200
    async with client.stream(
        "GET", path, headers={**me, "X-Request-ID": "stream-req-1"}
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-request-id"] == "stream-req-1", dict(response.headers)
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-cache, no-transform"
        assert response.headers["x-accel-buffering"] == "no"
        async for frame in frames(response):
            assert frame.event == "snapshot" and frame.data["id"] == doc["id"]
            break


async def test_a_stream_resumes_after_last_event_id_and_ends_with_its_client(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    me = await login(client, stack.users["uploader"])
    doc = await upload(client, me, "r.txt", SAMPLE_TEXTS["resume"].encode(), "text/plain")
    await wait_status(client, me, doc["id"], {"review"})
    events = (await client.get(f"/api/v1/documents/{doc['id']}/events", headers=me)).json()
    assert len(events) >= 3
    before = await _open_streams(client)
    path = f"/api/v1/documents/{doc['id']}/stream"
    resume = {**me, "Last-Event-ID": str(events[0]["id"])}
    async with client.stream("GET", path, headers=resume) as response:
        got: list[Frame] = []
        reader = frames(response)  # held: a dropped reader would close the connection
        async with asyncio.timeout(10):
            async for frame in reader:
                got.append(frame)
                if frame.id == events[-1]["id"]:
                    break
        assert got[0].event == "snapshot" and got[0].data["status"] == "review"
        assert [f.id for f in got[1:]] == [e["id"] for e in events[1:]]
        assert await _open_streams(client) == before + 1

    # The client went away: the stream ends and leaves the hub at once, not at its next write.
    async def left() -> bool:
        return await _open_streams(client) == before

    await _until(left, 5)
