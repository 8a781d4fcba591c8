"""Lost sends, slow stages, Redis and PostgreSQL restarts, concurrent reapers, streams across an
outage: every document still settles, and the API says 503, never 500, while a server is down."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time

import httpx
import pytest

from tests.faults.conftest import Rig
from tests.faults.invariants import check
from tests.faults.test_worker_loss import _client, _upload, _wait_settled
from tests.fixtures.files import SAMPLE_TEXTS, make_image_only_pdf, make_pdf
from tests.helpers import follow, wait_api

TEXT = SAMPLE_TEXTS["invoice"].encode()


def test_crash_between_commit_and_enqueue_is_recovered_by_the_reaper(rig: Rig) -> None:
    # This API's broker is unreachable: its commits land, its sends are lost.
    _, base = rig.api(env={"DOCFLOW_BROKER_URL": "redis://127.0.0.1:1/0"})
    wait_api(base)
    client, auth = _client(base)
    ids = [_upload(client, auth, f"orphan-{n}.txt", TEXT) for n in range(5)]
    rows = rig.sql("select status from documents")
    assert {r[0] for r in rows} == {"uploaded"}
    rig.worker("w1")
    rig.beat()
    _wait_settled(rig, ids, timeout=90)
    assert set(check(rig).values()) == {"review"}
    requeued = rig.sql("select document_id from document_events where type = 'stage.requeued'")
    assert sorted(str(r[0]) for r in requeued) == sorted(ids), "each orphan re-enqueued once"


def test_two_reapers_at_once_enqueue_each_orphan_once(rig: Rig) -> None:
    _, base = rig.api(env={"DOCFLOW_BROKER_URL": "redis://127.0.0.1:1/0"})
    wait_api(base)
    client, auth = _client(base)
    ids = [_upload(client, auth, f"orphan-{n}.txt", TEXT) for n in range(20)]
    # and some whose worker vanished mid-stage: processing, lease long expired
    rig.sql(
        "update documents set status = 'processing', lease_owner = 'gone:1:x', attempts = 1, "
        "lease_until = now() - interval '1 minute' where id = any(%s::uuid[])",
        ids[:10],
    )
    rig.sql("update documents set enqueued_at = now() - interval '1 minute'")
    barrier = threading.Barrier(4)
    outputs: list[bytes] = []

    def reaper() -> None:
        barrier.wait()
        proc = rig.run("reaper", "reap")
        proc.process.wait(60)
        outputs.append(proc.log.read_bytes())

    threads = [threading.Thread(target=reaper) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = rig.sql(
        "select document_id, type from document_events "
        "where type in ('stage.retry', 'stage.requeued')"
    )
    per_doc: dict[str, int] = {}
    for doc_id, _ in events:
        per_doc[str(doc_id)] = per_doc.get(str(doc_id), 0) + 1
    assert per_doc == dict.fromkeys(ids, 1), outputs
    queued = sum(int(rig.redis_llen("faults:documents")) for _ in [0])
    assert queued == 20, "exactly one task per orphan sits in the broker"


def test_a_stage_outliving_the_visibility_timeout_runs_once(rig: Rig) -> None:
    slow = {"DOCFLOW_VISIBILITY_TIMEOUT": "1"}
    _, base = rig.api(env=slow)
    wait_api(base)
    client, auth = _client(base)
    doc = _upload(
        client,
        auth,
        "slow.pdf",
        _slow_pdf(),
    )
    first = rig.worker("w1", concurrency=1, env=slow)
    second = rig.worker("w2", concurrency=1, env=slow)
    _wait_settled(rig, [doc], timeout=180)
    assert check(rig)[doc] == "review", rig.sql("select error from documents")
    started = rig.sql(
        "select count(*) from document_events where document_id = %s and "
        "type = 'stage.started' and stage = 'extract'",
        doc,
    )
    assert started[0][0] == 1, "the lease held off the redelivered copy"
    logs = first.log.read_text() + second.log.read_text()
    assert logs.count("already done or claimed elsewhere") >= 1, "the broker did redeliver"


def test_redis_restart_mid_run(rig: Rig) -> None:
    _, base = rig.api()
    rig.worker("w1")
    rig.beat()
    wait_api(base)
    client, auth = _client(base)
    pdf = make_pdf([f"Page {i}. " + SAMPLE_TEXTS["report"] for i in range(40)])
    ids = [_upload(client, auth, f"doc-{n}.pdf", pdf) for n in range(15)]
    rig.redis.stop()
    # Uploads are still accepted and stored while Redis is away.
    during = [_upload(client, auth, f"during-{n}.txt", TEXT) for n in range(3)]
    ready = client.get("/api/v1/health/ready")
    assert ready.status_code == 503
    assert ready.json()["error"]["details"]["checks"]["redis"]["ok"] is False
    time.sleep(2)
    rig.redis.start()
    _wait_settled(rig, ids + during, timeout=180)
    assert set(check(rig).values()) == {"review"}


def test_postgres_restart_mid_run_gives_503_not_500(rig: Rig) -> None:
    _, base = rig.api()
    rig.worker("w1")
    rig.beat()
    wait_api(base)
    client, auth = _client(base)
    pdf = make_pdf([f"Page {i}. " + SAMPLE_TEXTS["report"] for i in range(40)])
    ids = [_upload(client, auth, f"doc-{n}.pdf", pdf) for n in range(10)]
    rig.stop_postgres()
    codes = set()
    for _ in range(5):
        codes.add(client.get("/api/v1/documents", headers=auth).status_code)
        response = client.post("/api/v1/documents", headers=auth, files={"file": ("x.txt", TEXT)})
        codes.add(response.status_code)
        if response.status_code == 503:
            assert response.json()["error"]["code"] == "service_unavailable"
    ready = client.get("/api/v1/health/ready")
    assert (
        ready.status_code == 503
        and ready.json()["error"]["details"]["checks"]["postgres"]["ok"] is False
    )
    assert codes == {503}, codes
    time.sleep(3)
    rig.start_postgres()
    deadline = time.monotonic() + 30
    while client.get("/api/v1/documents", headers=auth).status_code != 200:
        assert time.monotonic() < deadline, "the API did not recover by itself"
        time.sleep(0.5)
    _wait_settled(rig, ids, timeout=180)
    assert set(check(rig).values()) == {"review"}


def test_stream_survives_redis_outage_and_delivers_the_final_status(rig: Rig) -> None:
    _, base = rig.api()
    wait_api(base)
    client, auth = _client(base)
    doc = _upload(client, auth, "later.txt", TEXT)

    async def watch() -> list[str]:
        async with httpx.AsyncClient(base_url=base, timeout=30) as aclient:
            frames = await follow(aclient, auth, doc, until={"review"}, last_event_id=0, timeout=90)
        return [f.event for f in frames]

    async def scenario() -> list[str]:
        task = asyncio.create_task(watch())
        await asyncio.sleep(1)
        await asyncio.to_thread(rig.redis.stop)
        await asyncio.sleep(3)
        await asyncio.to_thread(rig.redis.start)
        rig.worker("w1")  # the document can only move once Redis (the broker) is back
        rig.beat()
        return await task

    events = asyncio.run(scenario())
    assert events[-1] == "document.review"
    assert events.count("document.review") == 1
    assert check(rig)[doc] == "review"


@pytest.fixture(autouse=True)
def _llen(rig: Rig) -> None:
    import redis

    def llen(key: str) -> int:
        return int(redis.Redis.from_url(rig.env["REDIS_URL"]).llen(key))

    rig.redis_llen = llen  # type: ignore[attr-defined]


def _slow_pdf() -> bytes:
    """A PDF whose extraction outlasts a 1 s visibility timeout plus the broker's 1 s sweep by a
    wide margin: scanned pages go through OCR (about a second each); without Tesseract, many
    text pages."""
    if shutil.which("tesseract"):
        return make_image_only_pdf("Scanned quarterly report, total 1,250 EUR", pages=8)
    return make_pdf([f"Page {i}. " + SAMPLE_TEXTS["report"][:400] for i in range(1900)])
