"""The reviewer's correction is the signal: after approving corrected documents, the next
similar document comes out in the corrected category."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.conftest import Stack
from tests.fixtures.corpus import CUSTOM_CATEGORY, generate, one
from tests.fixtures.files import SAMPLE_TEXTS, make_pdf
from tests.helpers import assert_envelope, login, upload, wait_status


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as c:
        yield c


async def _process(
    client: httpx.AsyncClient, headers: dict[str, str], docs: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    uploaded = []
    for name, text in docs:
        stem, _, extension = name.rpartition(".")
        if extension == "pdf":
            sent = await upload(client, headers, name, make_pdf([text]), "application/pdf")
        else:
            sent = await upload(client, headers, f"{stem}.txt", text.encode(), "text/plain")
        uploaded.append(sent)
    return [await wait_status(client, headers, d["id"], {"review"}, timeout=120) for d in uploaded]


async def _classifier(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get("/api/v1/categories/classifier", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_corrections_teach_the_next_similar_document(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    me = await login(client, stack.users["uploader"])
    reviewer = await login(client, stack.users["reviewer"])
    admin = await login(client, stack.users["admin"])
    created = await client.post("/api/v1/categories", json={"name": CUSTOM_CATEGORY}, headers=admin)
    assert created.status_code in (201, 409), created.text
    assert_envelope(
        await client.post("/api/v1/categories/classifier/train", headers=reviewer), 403, "forbidden"
    )

    orders = generate(6, seed=11, categories=[CUSTOM_CATEGORY])
    others = generate(3, seed=12, categories=["invoice", "letter"])
    batch = [(d.filename, d.text) for d in orders + others]
    processed = await _process(client, me, batch)
    # Before learning, the rules read purchase orders as invoices (they bill, list, total).
    misfiled = [
        d
        for d, src in zip(processed, orders + others, strict=False)
        if src.category == CUSTOM_CATEGORY and d["category"] != CUSTOM_CATEGORY
    ]
    assert len(misfiled) >= 4, [d["category"] for d in processed]

    # The reviewer files every document under its true category; the purchase orders are
    # corrections. The corrections come last, so the final approvals make training due.
    ordered = sorted(
        zip(processed, orders + others, strict=True),
        key=lambda pair: pair[1].category == CUSTOM_CATEGORY,
    )
    for doc, source in ordered:
        response = await client.post(
            f"/api/v1/review/{doc['id']}/approve",
            json={"category": source.category},
            headers=reviewer,
        )
        assert response.status_code == 200, response.text
        assert response.json()["category"] == source.category

    # Training runs in the background on the maintenance queue, prompted by the approvals.
    deadline = time.monotonic() + 120
    while True:
        status = await _classifier(client, me)
        learnt = CUSTOM_CATEGORY in status["classes"] and status["sample_count"] >= 12
        if status["active"] and learnt:
            break
        assert time.monotonic() < deadline, status
        await asyncio.sleep(0.5)
    assert status["info"]["corrections"] >= 4

    new_order = one(CUSTOM_CATEGORY, seed=99)
    fresh = await _process(
        client,
        me,
        [(new_order.filename, new_order.text), ("northwind.txt", SAMPLE_TEXTS["invoice"])],
    )
    assert fresh[0]["category"] == CUSTOM_CATEGORY, fresh[0]
    assert fresh[0]["category_confidence"] >= 0.5
    assert fresh[0]["category_uncertain"] is False
    # Learning the new category did not unlearn the old ones.
    assert fresh[1]["category"] == "invoice", fresh[1]


async def test_admin_can_ask_for_a_retrain(client: httpx.AsyncClient, stack: Stack) -> None:
    admin = await login(client, stack.users["admin"])
    before = await _classifier(client, admin)
    queued = await client.post("/api/v1/categories/classifier/train", headers=admin)
    assert queued.status_code == 202, queued.text
    assert queued.json() == {"queued": True}
    if before["version"] is None:
        return  # too few approved documents yet: nothing to train, and nothing breaks
    deadline = time.monotonic() + 60
    while (await _classifier(client, admin))["version"] == before["version"]:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.5)
