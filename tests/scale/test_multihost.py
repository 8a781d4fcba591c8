"""Docflow on four hosts sharing nothing but PostgreSQL and Redis (issue 9).

`data` runs PostgreSQL and Redis, `api` the API and beat, `w1` and `w2` a Celery worker each,
every host in its own network namespace with its own address. Documents uploaded to the API are
worked on by both worker hosts; then w2's link goes down mid-run and w1 finishes everything,
resuming the stages w2 held once their leases expire. Skipped where namespaces cannot be made.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any, LiteralString

import httpx
import psycopg
import pytest

from tests.conftest import create_user
from tests.fixtures.files import SAMPLE_TEXTS, make_docx, make_pdf
from tests.helpers import Frame, follow, login, upload
from tests.scale.cluster import (
    Cluster,
    address,
    base_env,
    build_network,
    cut_off,
    make_tmp,
    remove_stale_tmp,
    teardown_network,
    unavailable_reason,
)

ADMIN = "scale-admin@example.com"
STAGES = ("validate", "extract", "analyze", "categorize")
# reportlab's built-in font covers Latin-1 only; the other samples go into text and DOCX files.
PDF_TEXTS = [t for t in SAMPLE_TEXTS.values() if all(ord(c) <= 0xFF for c in t)]
ALL_TEXTS = list(SAMPLE_TEXTS.values())
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

pytestmark = pytest.mark.slow

# A long stage (a 150-page PDF's extract or analyze) that w2 claimed within the last 200 ms.
JUST_STARTED_ON_W2 = """
    select d.id from documents d
    join document_events e
      on e.document_id = d.id and e.type = 'stage.started' and e.stage = d.stage
    where d.lease_owner like 'w2:%%' and d.stage in ('extract', 'analyze')
      and e.created_at > clock_timestamp() - interval '200 milliseconds'
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"multi-host test needs network namespaces: {reason}")
    # Leftovers of an earlier run that died before its teardown (same names, so one run at a time).
    teardown_network()
    remove_stale_tmp()
    tmp = make_tmp()
    db_url = f"postgresql://postgres@{address('data')}:5432/docflow"
    redis_url = f"redis://{address('data')}:6379/0"
    c = Cluster(tmp, base_env(tmp, (db_url, redis_url)))
    try:
        build_network()
        c.start_data()
        from docflow.migrate import upgrade

        # The test process sits in the root namespace and reaches `data` over the bridge.
        upgrade(db_url.replace("postgresql://", "postgresql+psycopg://"))
        create_user(c.env, ADMIN, "admin")
        c.docflow("api", "api", "api", "--host", address("api"), "--port", "8000")
        c.docflow("api", "beat", "beat")
        for name in ("w1", "w2"):
            c.docflow(
                name,
                f"worker-{name}",
                "worker",
                "-c",
                "2",
                "-n",
                f"{name}@%h",
                env={"DOCFLOW_HOSTNAME": name},
            )
        c.wait_api()
        c.wait_workers(["w1", "w2"])
        yield c
    finally:
        c.stop_all()
        teardown_network()
        shutil.rmtree(tmp, ignore_errors=True)


@asynccontextmanager
async def api_client(c: Cluster) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=c.base_url, timeout=30, trust_env=False) as client:
        yield client


def sql(c: Cluster, query: LiteralString, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(c.database_url, connect_timeout=5, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def small_files(count: int) -> list[tuple[str, bytes, str]]:
    """Text files, two-page PDFs and DOCX, in turn."""
    files = []
    for n in range(count):
        text = f"{ALL_TEXTS[n % len(ALL_TEXTS)]}\nReference SCALE-{n:03d}."
        if n % 3 == 0:
            files.append((f"note-{n}.txt", text.encode(), "text/plain"))
        elif n % 3 == 1:
            pdf_text = PDF_TEXTS[n % len(PDF_TEXTS)]
            pages = [pdf_text, f"Page two of scale document {n}.\n{pdf_text}"]
            files.append((f"scan-{n}.pdf", make_pdf(pages), "application/pdf"))
        else:
            files.append((f"memo-{n}.docx", make_docx(text.split("\n")), DOCX))
    return files


def heavy_files(count: int, pages: int = 150) -> list[tuple[str, bytes, str]]:
    """Long PDFs, slow enough that cutting a host off lands mid-stage."""
    base = make_pdf([f"{PDF_TEXTS[p % len(PDF_TEXTS)]}\nPage {p + 1}." for p in range(pages)])
    # A comment after %%EOF makes each file distinct, as appended updates do in real PDFs.
    return [
        (f"report-{n}.pdf", base + f"%scale copy {n}\n".encode(), "application/pdf")
        for n in range(count)
    ]


async def upload_all(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    files: list[tuple[str, bytes, str]],
    followed: int,
) -> tuple[list[str], list[asyncio.Task[list[Frame]]]]:
    """Upload in order; follow the first few from their very first event (Last-Event-ID 0)."""
    ids: list[str] = []
    streams: list[asyncio.Task[list[Frame]]] = []
    for name, data, content_type in files:
        doc = await upload(client, auth, name, data, content_type)
        assert doc["status"] in {"uploaded", "processing"}, doc
        ids.append(doc["id"])
        if len(streams) < followed:
            streams.append(
                asyncio.create_task(follow(client, auth, doc["id"], last_event_id=0, timeout=170))
            )
    return ids, streams


async def wait_review(
    c: Cluster, client: httpx.AsyncClient, auth: dict[str, str], ids: list[str], timeout: float
) -> None:
    pending, deadline = set(ids), time.monotonic() + timeout
    while pending:
        bodies = await asyncio.gather(
            *(client.get(f"/api/v1/documents/{i}", headers=auth) for i in pending)
        )
        for body in (b.json() for b in bodies):
            assert body["status"] not in {"failed", "rejected"}, body
            if body["status"] == "review":
                pending.discard(body["id"])
        if pending and time.monotonic() > deadline:
            stuck = sql(
                c,
                "select id, status, stage, lease_owner, message from documents "
                "where id = any(%s::uuid[])",
                list(pending),
            )
            raise AssertionError(f"not in review after {timeout:.0f}s: {stuck}\n{c.logs()}")
        await asyncio.sleep(0.5)


async def events_of(
    client: httpx.AsyncClient, auth: dict[str, str], ids: list[str]
) -> dict[str, list[dict[str, Any]]]:
    responses = await asyncio.gather(
        *(client.get(f"/api/v1/documents/{i}/events", headers=auth) for i in ids)
    )
    return {i: r.json() for i, r in zip(ids, responses, strict=True)}


def completions(events: list[dict[str, Any]]) -> Counter[str | None]:
    return Counter(e["stage"] for e in events if e["type"] == "stage.completed")


def assert_stream_has_every_stage(frames: list[Frame]) -> None:
    seen = {(f.event, f.data.get("stage")) for f in frames}
    for stage in STAGES:
        assert ("stage.started", stage) in seen, (stage, seen)
        assert ("stage.completed", stage) in seen, (stage, seen)
    assert frames[-1].event == "document.review", [f.event for f in frames]
    ids = [f.id for f in frames if f.id is not None]
    assert ids == sorted(set(ids)), f"stream repeated or reordered events: {ids}"


async def test_documents_are_processed_on_both_worker_hosts(cluster: Cluster) -> None:
    async with api_client(cluster) as client:
        auth = await login(client, ADMIN)
        ids, streams = await upload_all(client, auth, small_files(30), followed=4)
        await wait_review(cluster, client, auth, ids, timeout=120)
        for frames in await asyncio.gather(*streams):
            assert_stream_has_every_stage(frames)
        events = await events_of(client, auth, ids)

    for doc_id, trail in events.items():
        assert completions(trail) == Counter(STAGES), (doc_id, trail)
        assert trail[-1]["type"] == "document.review"
    started = [e for trail in events.values() for e in trail if e["type"] == "stage.started"]
    hosts = Counter(e["data"].get("worker") for e in started)
    assert set(hosts) == {"w1", "w2"}, f"both worker hosts should have worked: {hosts}"
    for event in started:
        assert event["actor"].startswith(f"worker:{event['data']['worker']}:"), event


async def test_work_finishes_on_w1_when_w2_is_cut_off_mid_run(cluster: Cluster) -> None:
    async with api_client(cluster) as client:
        auth = await login(client, ADMIN)
        ids, streams = await upload_all(client, auth, heavy_files(30), followed=3)

        # Wait until w2 has just begun a long stage (well before it can finish), then pull its
        # cable: the stage is certain to be in its hands when the link goes down.
        deadline = time.monotonic() + 90
        held: list[tuple[Any, ...]] = []
        while not held:
            assert time.monotonic() < deadline, f"w2 never held a lease\n{cluster.logs()}"
            held = sql(cluster, JUST_STARTED_ON_W2)
            if not held:
                await asyncio.sleep(0.05)
        cut_off("w2")
        # Past this point nothing w2 sends can reach PostgreSQL: what it holds now is orphaned.
        await asyncio.sleep(1)
        in_hand = {
            str(r[0]): r[1]
            for r in sql(cluster, "select id, stage from documents where lease_owner like 'w2:%%'")
        }
        (cut_event,) = sql(cluster, "select coalesce(max(id), 0) from document_events")[0]
        assert in_hand, "w2 held a stage when it was cut off"
        remaining = sql(cluster, "select count(*) from documents where status <> 'review'")[0][0]
        assert remaining > len(in_hand), "the cut should land mid-run, with work still queued"

        await wait_review(cluster, client, auth, ids, timeout=150)
        for frames in await asyncio.gather(*streams):
            assert_stream_has_every_stage(frames)
        events = await events_of(client, auth, ids)
        statuses = {r[0] for r in sql(cluster, "select distinct status from documents")}

    assert statuses == {"review"}, statuses
    for doc_id, trail in events.items():
        assert completions(trail) == Counter(STAGES), f"each stage exactly once: {doc_id} {trail}"
    for doc_id, stage in in_hand.items():
        trail = events[doc_id]
        retries = [e for e in trail if e["type"] == "stage.retry" and e["stage"] == stage]
        assert retries, f"{doc_id} lost with w2 during {stage} shows no retry: {trail}"
        assert retries[0]["actor"] == "system:reaper"
        assert retries[0]["data"]["reason"] == "lease_expired"
        resumed = next(
            e
            for e in trail
            if e["type"] == "stage.started" and e["stage"] == stage and e["id"] > retries[0]["id"]
        )
        assert resumed["data"]["worker"] == "w1" and resumed["data"]["attempt"] >= 2, resumed
        assert "resuming after a lost worker" in resumed["message"], resumed
    after_cut = [
        e
        for trail in events.values()
        for e in trail
        if e["id"] > cut_event and e["type"] in {"stage.started", "stage.completed"}
    ]
    assert after_cut, "work continued after the cut"
    workers = {e["actor"].split(":")[1] for e in after_cut}
    assert workers == {"w1"}, f"only w1 can work once w2 is cut off: {workers}"
