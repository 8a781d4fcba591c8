"""Queues by weight, and back-pressure the user can see."""

from __future__ import annotations

import asyncio

import httpx
import psycopg
import pytest
from tests.conftest import Stack, start_api, wait_ready
from tests.fixtures.files import SAMPLE_TEXTS, make_pdf, make_png_text
from tests.helpers import login, upload, wait_api, wait_status


async def test_heavy_documents_wait_for_a_heavy_worker_and_small_ones_do_not(stack: Stack) -> None:
    env = {"DOCFLOW_REDIS_NAMESPACE": stack.infra.namespace + "-q", "DOCFLOW_HEAVY_BYTES": "60000"}
    api, url = start_api(stack.infra, extra_env=env)
    # a worker sized for small documents only
    light = start_worker_on(stack, env, "documents,maintenance", "light")
    heavy = None
    try:
        wait_ready(url, [api, light])
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            me = await login(client, stack.users["uploader"])
            big = await upload(
                client,
                me,
                "big.pdf",
                make_pdf([f"Page {i}. " + SAMPLE_TEXTS["report"] for i in range(80)]),
                "application/pdf",
            )
            # small in bytes, but only validation can tell it needs OCR
            scan = await upload(
                client, me, "scan.png", make_png_text("Invoice total 120 EUR"), "image/png"
            )
            small = await upload(
                client, me, "small.txt", SAMPLE_TEXTS["letter"].encode(), "text/plain"
            )
            assert (await wait_status(client, me, small["id"], {"review"}))["status"] == "review"
            for held in (big, scan):
                waiting = (await client.get(f"/api/v1/documents/{held['id']}", headers=me)).json()
                assert waiting["status"] == "processing" and waiting["stage"] == "extract"
            heavy = start_worker_on(stack, env, "documents-heavy", "heavy")
            assert (await wait_status(client, me, big["id"], {"review"}))["status"] == "review"
            assert (await wait_status(client, me, scan["id"], {"review"}))["status"] == "review"
            log = (await client.get(f"/api/v1/documents/{big['id']}/events", headers=me)).json()
            queues = {
                e["stage"]: e["data"].get("queue") for e in log if e["type"] == "stage.started"
            }
            assert queues == {
                "validate": "documents",
                "extract": "documents-heavy",
                "analyze": "documents",
                "categorize": "documents",
            }
    finally:
        for proc in (api, light, heavy):
            if proc is not None:
                proc.stop()


def start_worker_on(stack: Stack, env: dict[str, str], queues: str, name: str):  # type: ignore[no-untyped-def]
    import sys

    from tests.conftest import spawn

    return spawn(
        f"worker-{name}",
        [
            sys.executable,
            "-m",
            "docflow.cli",
            "worker",
            "-c",
            "1",
            "-Q",
            queues,
            "-n",
            f"{name}@%h",
        ],
        {**stack.infra.env, **env},
        stack.infra.tmp,
    )


async def test_a_deep_queue_still_accepts_uploads_and_says_how_far_back(stack: Stack) -> None:
    # The queue is counted in documents, in the database the whole suite shares: what other
    # tests left waiting for a worker is ahead too.
    with psycopg.connect(stack.infra.database_url) as conn:
        before = conn.execute(
            "select count(*) from documents where status in ('uploaded', 'processing')"
            " and lease_until is null"
        ).fetchone()[0]  # type: ignore[index]
    env = {
        "DOCFLOW_REDIS_NAMESPACE": stack.infra.namespace + "-bp",
        "DOCFLOW_QUEUE_BACKLOG_BOUND": str(before + 2),
    }
    api, url = start_api(stack.infra, extra_env=env)  # and no worker at all
    try:
        wait_api(url)
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            me = await login(client, stack.users["uploader"])
            docs = [
                await upload(client, me, f"q{n}.txt", b"queued text " * 20, "text/plain")
                for n in range(5)
            ]
            assert all(d["status"] == "uploaded" for d in docs)
            assert docs[0]["message"] == "Waiting for a worker"
            ahead = f"Queued: {before + 4} documents ahead"
            assert docs[4]["message"].startswith(ahead + " of this one")
            log = (await client.get(f"/api/v1/documents/{docs[4]['id']}/events", headers=me)).json()
            assert log[0]["message"].startswith(f"Uploaded q4.txt. {ahead}")
            assert log[0]["status"] == "uploaded"
    finally:
        api.stop()


@pytest.mark.usefixtures("infra")  # the suite's database, in DATABASE_URL
async def test_a_burst_past_the_backlog_bound_reads_the_queue_figures_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every upload past the bound tells its owner the queue's depth and, from the recent
    # throughput, how long that is. Uploads that ask at the same moment share one read of each
    # figure: each used to read the throughput itself, on a connection of its own (a burst of
    # uploads opened dozens of database sessions at once, just when the API was busiest).
    from docflow.config import get_settings
    from docflow.db import async_engine
    from docflow.documents import service
    from docflow.documents.repository import DocumentRepository

    reads = {"waiting": 0, "throughput": 0}
    counted_waiting = DocumentRepository.waiting_for_workers
    counted_throughput = DocumentRepository.finished_per_second

    async def waiting(repo: DocumentRepository) -> int:
        reads["waiting"] += 1
        return await counted_waiting(repo)

    async def throughput(repo: DocumentRepository) -> float:
        reads["throughput"] += 1
        return await counted_throughput(repo)

    monkeypatch.setattr(service._waiting_reading, "read", waiting)
    monkeypatch.setattr(service._throughput_reading, "read", throughput)
    monkeypatch.setattr(service._waiting_reading, "read_at", -1e9)
    monkeypatch.setattr(service._throughput_reading, "read_at", -1e9)
    settings = get_settings().model_copy(update={"queue_backlog_bound": -1})
    try:
        messages = await asyncio.gather(*(service._where_in_queue(settings) for _ in range(40)))
        # One read of each, and every upload counted behind the ones before it.
        assert reads == {"waiting": 1, "throughput": 1}
        ahead = sorted(int(m.split()[1]) for m in messages if m)
        assert len(ahead) == 40 and ahead == list(range(ahead[0], ahead[0] + 40))
    finally:
        await async_engine().dispose()
