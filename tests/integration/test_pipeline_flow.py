"""A user's path through the core: upload, watch every stage live, review, export."""

from __future__ import annotations

import asyncio
import csv
import io
import json

import httpx
import pytest
from tests.conftest import Stack, create_user
from tests.fixtures.files import SAMPLE_TEXTS, make_docx, make_pdf
from tests.helpers import Frame, collect_list_stream, follow, login, upload, wait_status

STAGES = ["validate", "extract", "analyze", "categorize"]


@pytest.fixture
async def client(stack: Stack) -> httpx.AsyncClient:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as c:
        yield c


def _pages(n: int) -> list[str]:
    return [f"Page {i + 1}. " + SAMPLE_TEXTS["report"] for i in range(n)]


async def test_pdf_and_docx_stream_every_stage_then_approve_and_export(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # A user of its own, so the export holds exactly what this test approved.
    create_user(stack.infra.env, "flow-uploader@example.com", "uploader")
    me = await login(client, "flow-uploader@example.com")
    boss = await login(client, stack.users["reviewer"])
    # The list view's stream, opened before the uploads, sees every event of every document,
    # live progress included.
    mine: list[Frame] = []
    watcher = asyncio.create_task(collect_list_stream(client, me, mine))
    await asyncio.sleep(0.5)
    pdf = await upload(
        client,
        me,
        "quarterly report.pdf",
        make_pdf(_pages(40), title="Q3 report"),
        "application/pdf",
    )
    assert pdf["status"] == "uploaded"
    docx = await upload(
        client,
        me,
        "invoice.docx",
        make_docx(SAMPLE_TEXTS["invoice"].split(". ")),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    )

    for doc in (pdf, docx):
        frames = await follow(client, me, doc["id"], until={"review"}, last_event_id=0)
        assert frames[0].event == "snapshot"
        persisted = [f for f in frames if f.id is not None]
        ids = [f.id for f in persisted]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        assert persisted[0].event == "document.uploaded"
        started = [f.data["stage"] for f in persisted if f.event == "stage.started"]
        completed = [f.data["stage"] for f in persisted if f.event == "stage.completed"]
        assert started == STAGES and completed == STAGES
        assert persisted[-1].event == "document.review"
        assert persisted[-1].data["progress"] == 100
        progress = [f.data["progress"] for f in persisted]
        assert progress == sorted(progress)
        assert all(f.data["message"] for f in persisted)

    await asyncio.sleep(0.5)
    watcher.cancel()
    pages = [f for f in mine if f.event == "stage.progress" and f.data["document_id"] == pdf["id"]]
    assert pages and pages[-1].data["data"] == {"done": 40, "total": 40}
    assert all(f.id is None for f in pages), "page progress is live-only"
    assert "page 40 of 40" in pages[-1].data["message"]
    reviews = {f.data["document_id"] for f in mine if f.event == "document.review"}
    assert reviews == {pdf["id"], docx["id"]}

    body = (await client.get(f"/api/v1/documents/{pdf['id']}", headers=me)).json()
    assert body["status"] == "review"
    assert body["page_count"] == 40 and body["word_count"] > 100
    assert body["language"] == "en" and body["title"] == "Q3 report"
    assert body["summary"] and body["keywords"] and body["category"]
    assert 0 <= body["category_confidence"] <= 1
    assert len(body["sha256"]) == 64 and body["content_type"] == "application/pdf"
    assert set(body["timings"]) == set(STAGES)
    assert all(t["duration_ms"] >= 0 for t in body["timings"].values())
    text = (await client.get(f"/api/v1/documents/{pdf['id']}/text", headers=me)).json()["text"]
    assert "Page 40." in text

    docx_body = (await client.get(f"/api/v1/documents/{docx['id']}", headers=me)).json()
    assert docx_body["category"] == "invoice"

    approved = await client.post(
        f"/api/v1/review/{pdf['id']}/approve",
        headers=boss,
        json={"category": "academic_paper", "keywords": ["quarterly", "report"]},
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "finalised"
    assert approved.json()["keywords"] == ["quarterly", "report"]

    exported = await client.get("/api/v1/export", params={"format": "json"}, headers=me)
    assert exported.status_code == 200
    rows = json.loads(exported.text)
    assert [r["id"] for r in rows] == [pdf["id"]]  # the docx is still in review
    assert rows[0]["category"] == "academic_paper"
    csv_response = await client.get("/api/v1/export", params={"format": "csv"}, headers=me)
    assert csv_response.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv_response.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(csv_response.text)))
    assert [r["id"] for r in table] == [pdf["id"]]
    assert table[0]["filename"] == "quarterly report.pdf"

    trail = (await client.get(f"/api/v1/documents/{pdf['id']}/events", headers=me)).json()
    last = trail[-1]
    assert last["type"] == "review.approved" and last["actor"] == stack.users["reviewer"]
    assert last["data"]["corrections"]["category"] == {
        "from": body["category"],
        "to": "academic_paper",
    }


async def test_reconnect_with_last_event_id_gets_exactly_the_missing_events(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    me = await login(client, stack.users["uploader"])
    doc = await upload(client, me, "long.pdf", make_pdf(_pages(80)), "application/pdf")
    first = await follow(client, me, doc["id"], stop_after=3, last_event_id=0)
    seen = [f.id for f in first if f.id is not None]
    assert len(seen) == 3
    rest = await follow(client, me, doc["id"], last_event_id=seen[-1], until={"review"})
    assert rest[0].event == "snapshot"
    resumed = [f.id for f in rest if f.id is not None]
    log = (await client.get(f"/api/v1/documents/{doc['id']}/events", headers=me)).json()
    assert resumed == [e["id"] for e in log if e["id"] > seen[-1]]
    assert seen + resumed == [e["id"] for e in log]


async def test_late_client_gets_a_snapshot_that_already_says_done(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    me = await login(client, stack.users["uploader"])
    doc = await upload(client, me, "note.txt", SAMPLE_TEXTS["letter"].encode(), "text/plain")
    await wait_status(client, me, doc["id"], {"review"})
    frames = await follow(client, me, doc["id"])
    assert len(frames) == 1 and frames[0].event == "snapshot"
    assert frames[0].data["status"] == "review" and frames[0].data["progress"] == 100
    assert frames[0].data["last_event_id"] > 0


async def test_reject_during_processing_stops_the_pipeline(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    me = await login(client, stack.users["uploader"])
    boss = await login(client, stack.users["reviewer"])
    doc = await upload(client, me, "big.pdf", make_pdf(_pages(150)), "application/pdf")
    frames = await follow(client, me, doc["id"], stop_after=4, timeout=60)
    assert frames[-1].data["status"] in {"processing", "uploaded"}
    rejected = await client.post(
        f"/api/v1/review/{doc['id']}/reject", headers=boss, json={"reason": "wrong upload"}
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    await wait_status(client, me, doc["id"], {"rejected"})
    await asyncio.sleep(3)  # long enough for any in-flight stage to finish and try to commit
    body = (await client.get(f"/api/v1/documents/{doc['id']}", headers=me)).json()
    assert body["status"] == "rejected"
    log = (await client.get(f"/api/v1/documents/{doc['id']}/events", headers=me)).json()
    after = log[[e["type"] for e in log].index("review.rejected") + 1 :]
    assert after == [], "nothing happens to a rejected document"
    again = await client.post(f"/api/v1/review/{doc['id']}/approve", headers=boss)
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_transition"


async def test_reprocess_from_a_stage_runs_again_and_keeps_one_text(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    me = await login(client, stack.users["uploader"])
    boss = await login(client, stack.users["reviewer"])
    doc = await upload(client, me, "contract.txt", SAMPLE_TEXTS["contract"].encode(), "text/plain")
    await wait_status(client, me, doc["id"], {"review"})
    response = await client.post(
        f"/api/v1/review/{doc['id']}/reprocess",
        headers=boss,
        json={"from_stage": "analyze", "note": "check keywords"},
    )
    assert response.status_code == 200 and response.json()["status"] == "processing"
    await wait_status(client, me, doc["id"], {"review"})
    log = (await client.get(f"/api/v1/documents/{doc['id']}/events", headers=me)).json()
    types = [e["type"] for e in log]
    after = types[types.index("review.reprocess") :]
    assert after == [
        "review.reprocess",
        "stage.started",
        "stage.completed",
        "stage.started",
        "stage.completed",
        "document.review",
    ]
    assert log[types.index("review.reprocess")]["message"] == "check keywords"
    text = (await client.get(f"/api/v1/documents/{doc['id']}/text", headers=me)).json()["text"]
    assert "Agreement" in text or "agreement" in text


async def test_bad_files_fail_with_a_reason_and_never_stay_processing(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    me = await login(client, stack.users["uploader"])
    empty = await upload(client, me, "empty.txt", b"", "text/plain")
    broken = await upload(
        client, me, "broken.pdf", b"%PDF-1.7\n1 0 obj<<>>\nnot really", "application/pdf"
    )
    locked = await upload(
        client, me, "locked.pdf", make_pdf(["secret"], password="pw"), "application/pdf"
    )
    good = await upload(client, me, "fine.txt", SAMPLE_TEXTS["letter"].encode(), "text/plain")
    for doc in (empty, broken, locked):
        body = await wait_status(client, me, doc["id"], {"failed", "review"})
        assert body["status"] == "failed", body
        assert body["error"] and "Traceback" not in body["error"]
    assert (
        "empty"
        in (await client.get(f"/api/v1/documents/{empty['id']}", headers=me))
        .json()["error"]
        .lower()
    )
    locked_body = (await client.get(f"/api/v1/documents/{locked['id']}", headers=me)).json()
    assert "password" in locked_body["error"].lower()
    assert (await wait_status(client, me, good["id"], {"review", "failed"}))["status"] == "review"


async def test_idempotency_key_returns_the_same_document(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    me = await login(client, stack.users["uploader"])
    key = {"Idempotency-Key": "upload-abc-123"}
    first = await client.post(
        "/api/v1/documents",
        headers={**me, **key},
        files={"file": ("a.txt", b"hello world " * 20, "text/plain")},
    )
    second = await client.post(
        "/api/v1/documents",
        headers={**me, **key},
        files={"file": ("a.txt", b"hello world " * 20, "text/plain")},
    )
    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    listing = (await client.get("/api/v1/documents", headers=me, params={"q": "a.txt"})).json()
    assert sum(1 for d in listing["items"] if d["id"] == first.json()["id"]) == 1
