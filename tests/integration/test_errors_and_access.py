"""Every error has one shape, and nobody reaches a document that is not theirs."""

from __future__ import annotations

import logging

import httpx
import pytest
from tests.conftest import Stack
from tests.fixtures.files import SAMPLE_TEXTS
from tests.helpers import assert_envelope, login, upload, wait_status

from docflow.app import create_app


@pytest.fixture
async def client(stack: Stack) -> httpx.AsyncClient:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as c:
        yield c


async def test_framework_errors_use_the_envelope(client: httpx.AsyncClient, stack: Stack) -> None:
    me = await login(client, stack.users["uploader"])
    assert_envelope(await client.get("/api/v1/nothing-here", headers=me), 404, "not_found")
    assert_envelope(await client.delete("/api/v1/documents", headers=me), 405, "method_not_allowed")
    error = assert_envelope(
        await client.get("/api/v1/documents/not-a-uuid", headers=me), 422, "validation_error"
    )
    assert error["details"]["errors"][0]["loc"] == ["path", "document_id"]
    assert_envelope(
        await client.get("/api/v1/documents", headers=me, params={"page_size": 100000}),
        422,
        "validation_error",
    )
    assert_envelope(await client.get("/api/v1/documents"), 401, "unauthorized")
    assert_envelope(
        await client.get("/api/v1/documents", headers={"Authorization": "Bearer nonsense"}),
        401,
        "unauthorized",
    )
    assert_envelope(
        await client.post(
            "/api/v1/auth/login", json={"email": stack.users["uploader"], "password": "nope"}
        ),
        401,
        "unauthorized",
    )
    assert_envelope(
        await client.post("/api/v1/auth/login", json={"email": "x@y.z"}), 422, "validation_error"
    )
    assert_envelope(await client.post("/api/v1/documents", headers=me), 422, "validation_error")
    assert_envelope(
        await client.get("/api/v1/documents/00000000-0000-0000-0000-000000000000", headers=me),
        404,
        "not_found",
    )


async def test_unexpected_crash_is_a_500_with_a_request_id_and_nothing_internal() -> None:
    app = create_app()

    @app.get("/api/v1/boom")
    async def boom() -> None:
        raise RuntimeError("secret database password is hunter2")

    logged: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = logged.append  # type: ignore[method-assign]
    logging.getLogger("docflow.api").addHandler(handler)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            response = await c.get("/api/v1/boom")
    finally:
        logging.getLogger("docflow.api").removeHandler(handler)
    error = assert_envelope(response, 500, "internal_error")
    request_id = error["details"]["request_id"]
    assert response.headers["x-request-id"] == request_id
    assert "hunter2" not in response.text and "Traceback" not in response.text
    assert any(request_id in r.getMessage() and r.exc_info for r in logged), "the log has it"


async def test_invalid_transitions_are_409(client: httpx.AsyncClient, stack: Stack) -> None:
    me = await login(client, stack.users["uploader"])
    boss = await login(client, stack.users["reviewer"])
    doc = await upload(client, me, "memo.txt", SAMPLE_TEXTS["letter"].encode(), "text/plain")
    await wait_status(client, me, doc["id"], {"review"})
    ok = await client.post(f"/api/v1/review/{doc['id']}/approve", headers=boss)
    assert ok.status_code == 200
    for action, body in (
        ("approve", None),
        ("reject", {"reason": "late"}),
        ("reprocess", {"from_stage": "extract"}),
    ):
        error = assert_envelope(
            await client.post(f"/api/v1/review/{doc['id']}/{action}", headers=boss, json=body),
            409,
            "invalid_transition",
        )
        assert error["details"]["status"] == "finalised"
    assert_envelope(
        await client.post(
            f"/api/v1/review/{doc['id']}/reject",
            headers=boss,
            json={"reason": "x", "status": "review"},
        ),
        422,
        "validation_error",
    )


async def test_another_users_document_is_404_on_every_route(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    owner = await login(client, stack.users["uploader"])
    stranger = await login(client, stack.users["other"])
    boss = await login(client, stack.users["reviewer"])
    doc = await upload(client, owner, "private.txt", SAMPLE_TEXTS["resume"].encode(), "text/plain")
    await wait_status(client, owner, doc["id"], {"review"})
    base = f"/api/v1/documents/{doc['id']}"
    for path in (base, f"{base}/text", f"{base}/events", f"{base}/stream"):
        assert_envelope(await client.get(path, headers=stranger), 404, "not_found")
        # reviewers see every document (a stream is only opened, then closed)
        async with client.stream("GET", path, headers=boss) as response:
            assert response.status_code == 200
    for action in ("approve", "reject", "reprocess"):
        # an uploader may not review at all, even their own documents
        assert_envelope(
            await client.post(
                f"/api/v1/review/{doc['id']}/{action}",
                headers=owner,
                json={"reason": "x"} if action == "reject" else None,
            ),
            403,
            "forbidden",
        )
    listing = (await client.get("/api/v1/documents", headers=stranger)).json()
    assert doc["id"] not in {d["id"] for d in listing["items"]}
    exported = (await client.get("/api/v1/export", headers=stranger)).json()
    assert doc["id"] not in {d["id"] for d in exported}
