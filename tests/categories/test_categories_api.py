"""The taxonomy through the API: who may read and change it, renames, and approvals that name
a category that does not exist."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import Stack
from tests.fixtures.files import SAMPLE_TEXTS
from tests.helpers import assert_envelope, login, upload, wait_status

DEFAULTS = {
    "invoice",
    "receipt",
    "contract",
    "resume",
    "letter",
    "report",
    "academic_paper",
    "form",
    "other",
}


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as c:
        yield c


async def _categories(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, dict]:
    response = await client.get("/api/v1/categories", headers=headers)
    assert response.status_code == 200, response.text
    return {c["name"]: c for c in response.json()}


async def test_every_signed_in_user_sees_the_default_taxonomy(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    assert_envelope(await client.get("/api/v1/categories"), 401, "unauthorized")
    me = await login(client, stack.users["uploader"])
    listed = await _categories(client, me)
    assert DEFAULTS <= set(listed)
    assert listed["resume"]["rule_key"] == "resume"


async def test_only_admins_add_categories(client: httpx.AsyncClient, stack: Stack) -> None:
    reviewer = await login(client, stack.users["reviewer"])
    admin = await login(client, stack.users["admin"])
    denied = await client.post("/api/v1/categories", json={"name": "memo"}, headers=reviewer)
    assert_envelope(denied, 403, "forbidden")

    created = await client.post(
        "/api/v1/categories", json={"name": " Medical Record "}, headers=admin
    )
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "medical_record"
    assert created.json()["rule_key"] is None
    assert "medical_record" in await _categories(client, reviewer)

    again = await client.post("/api/v1/categories", json={"name": "medical_record"}, headers=admin)
    assert_envelope(again, 409, "conflict")
    bad = await client.post("/api/v1/categories", json={"name": "a/b?"}, headers=admin)
    assert_envelope(bad, 422, "validation_error")


async def test_approving_with_an_unknown_category_is_refused(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    me = await login(client, stack.users["uploader"])
    reviewer = await login(client, stack.users["reviewer"])
    doc = await upload(client, me, "letter.txt", SAMPLE_TEXTS["letter"].encode(), "text/plain")
    await wait_status(client, me, doc["id"], {"review"})

    refused = await client.post(
        f"/api/v1/review/{doc['id']}/approve", json={"category": "no_such_thing"}, headers=reviewer
    )
    error = assert_envelope(refused, 422, "validation_error")
    assert "invoice" in error["details"]["allowed"]
    # Nothing changed: the document still waits for review.
    still = await client.get(f"/api/v1/documents/{doc['id']}", headers=me)
    assert still.json()["status"] == "review"


async def test_rename_moves_the_documents_with_it(client: httpx.AsyncClient, stack: Stack) -> None:
    me = await login(client, stack.users["uploader"])
    reviewer = await login(client, stack.users["reviewer"])
    admin = await login(client, stack.users["admin"])
    created = await client.post("/api/v1/categories", json={"name": "memo"}, headers=admin)
    assert created.status_code == 201, created.text
    memo_id = created.json()["id"]
    doc = await upload(
        client,
        me,
        "memo.txt",
        b"Memo to all staff: the office closes at noon on "
        b"Friday for the staff party. Please lock your drawers.",
        "text/plain",
    )
    await wait_status(client, me, doc["id"], {"review"})
    approved = await client.post(
        f"/api/v1/review/{doc['id']}/approve", json={"category": "memo"}, headers=reviewer
    )
    assert approved.status_code == 200, approved.text

    denied = await client.patch(
        f"/api/v1/categories/{memo_id}", json={"name": "x"}, headers=reviewer
    )
    assert_envelope(denied, 403, "forbidden")
    clash = await client.patch(
        f"/api/v1/categories/{memo_id}", json={"name": "letter"}, headers=admin
    )
    assert_envelope(clash, 409, "conflict")
    renamed = await client.patch(
        f"/api/v1/categories/{memo_id}", json={"name": "internal_memo"}, headers=admin
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "internal_memo"
    assert renamed.json()["document_count"] == 1

    after = (await client.get(f"/api/v1/documents/{doc['id']}", headers=me)).json()
    assert after["category"] == "internal_memo"
    listed = (
        await client.get("/api/v1/documents", params={"category": "internal_memo"}, headers=me)
    ).json()
    assert [d["id"] for d in listed["items"]] == [doc["id"]]
    names = await _categories(client, me)
    assert "memo" not in names
    assert "internal_memo" in names
    missing = await client.patch("/api/v1/categories/999999", json={"name": "zzz"}, headers=admin)
    assert_envelope(missing, 404, "not_found")
