"""Listing: pagination, filters and ranked search over names and content."""

from __future__ import annotations

import httpx
from tests.conftest import Stack, create_user
from tests.fixtures.files import SAMPLE_TEXTS
from tests.helpers import login, upload, wait_status


async def test_search_filters_and_pagination(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as client:
        create_user(stack.infra.env, "searcher@example.com", "uploader")
        me = await login(client, "searcher@example.com")
        ids = {}
        for name, text in (
            ("acme-invoice-2031.txt", SAMPLE_TEXTS["invoice"]),
            ("employment contract.txt", SAMPLE_TEXTS["contract"]),
            ("curriculum.txt", SAMPLE_TEXTS["resume"]),
        ):
            ids[name] = (await upload(client, me, name, text.encode(), "text/plain"))["id"]
        for doc_id in ids.values():
            await wait_status(client, me, doc_id, {"review"})

        by_name = (
            await client.get("/api/v1/documents", headers=me, params={"q": "acme invoce"})
        ).json()
        assert by_name["items"][0]["id"] == ids["acme-invoice-2031.txt"]  # trigram tolerates a typo
        by_content = (
            await client.get("/api/v1/documents", headers=me, params={"q": "termination"})
        ).json()
        assert [d["id"] for d in by_content["items"]] == [ids["employment contract.txt"]]

        page1 = (await client.get("/api/v1/documents", headers=me, params={"page_size": 2})).json()
        page2 = (
            await client.get("/api/v1/documents", headers=me, params={"page_size": 2, "page": 2})
        ).json()
        assert page1["total"] == 3 and len(page1["items"]) == 2 and len(page2["items"]) == 1
        assert not {d["id"] for d in page1["items"]} & {d["id"] for d in page2["items"]}

        invoices = (
            await client.get("/api/v1/documents", headers=me, params={"category": "invoice"})
        ).json()
        assert [d["id"] for d in invoices["items"]] == [ids["acme-invoice-2031.txt"]]
        in_review = (
            await client.get(
                "/api/v1/documents", headers=me, params={"status": ["review", "failed"]}
            )
        ).json()
        assert in_review["total"] == 3
        none = (
            await client.get(
                "/api/v1/documents", headers=me, params={"created_from": "2100-01-01T00:00:00Z"}
            )
        ).json()
        assert none["total"] == 0
