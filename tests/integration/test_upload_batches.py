"""Uploads arriving together are written together (documents/intake.py): each still gets its own
document, bytes, event and task, and what one of them gets wrong stays its own problem."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator

import httpx
import psycopg
import pytest
import redis
from tests.conftest import Stack
from tests.helpers import PASSWORD, assert_envelope, login, wait_status


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=60, limits=limits) as c:
        yield c


def _post(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    name: str,
    data: bytes,
    content_type: str = "text/plain",
) -> asyncio.Task[httpx.Response]:
    return asyncio.ensure_future(
        client.post(
            "/api/v1/documents",
            headers=headers,
            files={"file": (name, data, content_type)},
        )
    )


async def test_a_burst_of_uploads_each_gets_its_document_bytes_event_and_review(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    me = await login(client, stack.users["uploader"])
    texts = {f"burst-{i}.txt": f"Burst note {i}. ".encode() * (20 + i) for i in range(40)}
    responses = await asyncio.gather(*(_post(client, me, n, d) for n, d in texts.items()))
    assert [r.status_code for r in responses] == [201] * len(texts)
    docs = [r.json() for r in responses]
    assert len({d["id"] for d in docs}) == len(texts)
    for doc, (name, data) in zip(docs, texts.items(), strict=True):
        assert doc["filename"] == name and doc["size_bytes"] == len(data)
        assert doc["status"] == "uploaded" and doc["stage"] == "validate"
    ids = [uuid.UUID(d["id"]) for d in docs]
    with psycopg.connect(stack.infra.database_url) as conn:
        events = conn.execute(
            "select document_id, count(*) from document_events"
            " where type = 'document.uploaded' and document_id = any(%s) group by 1",
            (ids,),
        ).fetchall()
        stored = dict(
            conn.execute(
                "select document_id, data from document_blobs where document_id = any(%s)",
                (ids,),
            ).fetchall()
        )
    assert sorted(n for _, n in events) == [1] * len(texts)
    assert {str(k): bytes(v) for k, v in stored.items()} == {
        d["id"]: texts[d["filename"]] for d in docs
    }
    # Every task was sent: the worker takes each one to review.
    for doc in docs:
        assert (await wait_status(client, me, doc["id"], {"review"}, timeout=180))["status"] == (
            "review"
        )
    stream = await client.get(f"/api/v1/documents/{docs[0]['id']}/events", headers=me)
    assert stream.json()[0]["type"] == "document.uploaded"


async def test_the_same_idempotency_key_sent_at_once_makes_one_document(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    me = await login(client, stack.users["uploader"])
    key = {**me, "Idempotency-Key": f"race-{uuid.uuid4().hex}"}
    responses = await asyncio.gather(
        *(
            _post(client, key, "race.txt", b"the same upload, sent twelve times " * 9)
            for _ in range(12)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 11 + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    replayed = [r for r in responses if r.status_code == 200]
    assert all(r.headers["Idempotent-Replayed"] == "true" for r in replayed)


async def test_an_upload_the_database_refuses_fails_alone(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    """A NUL in the part's content type cannot be stored as text: that upload answers 422,
    and the uploads written in the same moment (maybe the same batch) are all stored."""
    me = await login(client, stack.users["uploader"])
    good = [_post(client, me, f"beside-{i}.txt", b"an ordinary note " * 30) for i in range(15)]
    bad = _post(client, me, "bad.txt", b"an ordinary note " * 30, "text/plain\x00evil")
    responses = await asyncio.gather(*good)
    assert [r.status_code for r in responses] == [201] * 15
    assert_envelope(await bad, 422, "validation_error")
    listing = await client.get("/api/v1/documents", headers=me, params={"q": "bad.txt"})
    assert all(d["filename"] != "bad.txt" for d in listing.json()["items"])


async def test_a_disabled_account_cannot_upload_and_leaves_nothing(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    admin = await login(client, stack.users["admin"])
    email = f"gone-{uuid.uuid4().hex[:8]}@example.com"
    made = await client.post(
        "/api/v1/users", headers=admin, json={"email": email, "password": PASSWORD}
    )
    assert made.status_code == 201
    me = await login(client, email)
    first = await _post(client, me, "before.txt", b"written while active " * 10)
    assert first.status_code == 201
    off = await client.patch(
        f"/api/v1/users/{made.json()['id']}", headers=admin, json={"is_active": False}
    )
    assert off.status_code == 200
    refused = await _post(client, me, "after.txt", b"written after disabling " * 10)
    assert_envelope(refused, 401, "unauthorized")
    with psycopg.connect(stack.infra.database_url) as conn:
        names = conn.execute(
            "select filename from documents where owner_id = %s", (made.json()["id"],)
        ).fetchall()
    assert names == [("before.txt",)]


def test_tasks_sent_from_the_event_loop_are_what_celery_itself_sends(stack: Stack) -> None:
    """The upload path writes Celery messages itself; a worker must not tell them apart."""
    from docflow import jobs
    from docflow.config import get_settings

    settings = get_settings()
    queue = f"probe-{uuid.uuid4().hex[:8]}"
    document_id = uuid.uuid4()
    job = jobs.Job("documents.validate", document_id, queue)
    # A backlog's tasks share a message that names several documents (documents/intake.py).
    several = jobs.Job("documents.validate", uuid.uuid4(), queue, more=(uuid.uuid4(), uuid.uuid4()))
    asyncio.run(
        jobs.send_async([job, jobs.Job("documents.validate", uuid.uuid4(), queue), several])
    )
    jobs.send(job)
    jobs.send(several)
    client = redis.Redis.from_url(stack.infra.redis_url)
    key = f"{settings.redis_namespace}:{queue}"
    try:
        ours, second, ours_several, celerys, celerys_several = (
            json.loads(client.rpop(key))  # type: ignore[arg-type]
            for _ in range(5)
        )
    finally:
        client.delete(key)
    assert ours["headers"]["argsrepr"] == repr([str(document_id)])  # first in, first out
    assert base64.b64decode(ours["body"]) == base64.b64decode(celerys["body"])
    assert base64.b64decode(ours_several["body"]) == base64.b64decode(celerys_several["body"])
    assert json.loads(base64.b64decode(ours_several["body"]))[0] == several.args
    assert ours_several["headers"]["argsrepr"] == celerys_several["headers"]["argsrepr"]
    own = {"id", "root_id", "correlation_id", "delivery_tag", "origin", "reply_to"}

    def shape(message: dict[str, object]) -> dict[str, object]:
        return {
            k: {kk: vv for kk, vv in v.items() if kk not in own} if isinstance(v, dict) else v
            for k, v in message.items()
            if k != "body"
        }

    assert shape(ours) == shape(celerys)
    assert (
        ours["headers"]["id"] == ours["headers"]["root_id"] == ours["properties"]["correlation_id"]
    )
    assert second["headers"]["id"] != ours["headers"]["id"]


async def test_the_upload_route_answers_like_every_route(
    client: httpx.AsyncClient, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """POST /documents skips FastAPI's routing (app.Docflow.express) but not our middlewares
    or error handlers: request id, security headers, envelopes, a crash's 500."""
    me = await login(client, stack.users["uploader"])
    sent = {**me, "X-Request-ID": "upload-req-7"}
    response = await _post(client, sent, "a.txt", b"express lane")
    assert response.status_code == 201, response.text
    assert response.headers["x-request-id"] == "upload-req-7"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["location"] == f"/api/v1/documents/{response.json()['id']}"
    missing = await client.post("/api/v1/documents", headers=me, data={"note": "no file"})
    assert_envelope(missing, 422, "validation_error")
    assert missing.headers["x-request-id"]
    assert_envelope(await _post(client, {}, "a.txt", b"x"), 401, "unauthorized")
    refused = await _post(client, me, "a.pdf", b"plain text, not a PDF", "application/pdf")
    assert_envelope(refused, 415, "unsupported_media_type")

    from docflow.app import create_app
    from docflow.documents import service

    async def crash(*_: object, **__: object) -> None:
        raise RuntimeError("secret in the traceback")

    monkeypatch.setattr(service, "upload", crash)
    app = create_app()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as local:
        token = me["Authorization"]
        boom = await local.post(
            "/api/v1/documents",
            headers={"Authorization": token},
            files={"file": ("a.txt", b"x", "text/plain")},
        )
    error = assert_envelope(boom, 500, "internal_error")
    assert boom.headers["x-request-id"] == error["details"]["request_id"]
    assert "secret" not in boom.text


async def test_bursts_with_gaps_between_them_are_each_written_and_announced(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # Writers keep their connection a while after a burst (intake.HOLD_SECONDS) and are woken
    # by the next one; a burst after a longer gap finds them gone and starts new ones. Either
    # way every upload is written, answered and announced (its task reaches a worker).
    from docflow.documents.intake import HOLD_SECONDS

    me = await login(client, stack.users["uploader"])
    docs = []
    for burst, gap in enumerate((0.0, HOLD_SECONDS / 5, HOLD_SECONDS * 2, 0.01)):
        await asyncio.sleep(gap)
        texts = {f"gap-{burst}-{i}.txt": f"Gap {burst} note {i}. ".encode() * 30 for i in range(12)}
        responses = await asyncio.gather(*(_post(client, me, n, d) for n, d in texts.items()))
        assert [r.status_code for r in responses] == [201] * len(texts)
        docs += [r.json() for r in responses]
    assert len({d["id"] for d in docs}) == 48
    for doc in docs:
        assert (await wait_status(client, me, doc["id"], {"review"}, timeout=180))["status"] == (
            "review"
        )
    # Announced by the API itself, not re-sent by the reaper for a task lost on the way.
    with psycopg.connect(stack.infra.database_url) as conn:
        requeued = conn.execute(
            "select count(*) from document_events where type = 'stage.requeued'"
            " and document_id = any(%s)",
            ([uuid.UUID(d["id"]) for d in docs],),
        ).fetchone()
    assert requeued == (0,)


async def test_an_upload_answers_the_documents_json_as_the_model_writes_it(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # A fresh upload's answer is written from its row without building the model
    # (schemas.document_json): the same bytes as the model's own JSON, every field present.
    from docflow.documents.schemas import DocumentRead

    me = await login(client, stack.users["uploader"])
    response = await _post(
        client, me, "r\u00e9sum\u00e9 \u201cfinal\u201d.txt", b"Caf\xc3\xa9 notes. " * 40
    )
    assert response.status_code == 201
    body = response.content
    assert DocumentRead.model_validate_json(body).model_dump_json().encode() == body
    doc = response.json()
    assert set(doc) == {*DocumentRead.model_fields, "category_uncertain"}
    assert doc["filename"] == "r\u00e9sum\u00e9 \u201cfinal\u201d.txt"
    assert doc["status"] == "uploaded" and doc["created_at"].endswith("Z")
    assert response.headers["location"] == f"/api/v1/documents/{doc['id']}"
