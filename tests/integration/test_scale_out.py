"""Processes share nothing but PostgreSQL and Redis: a stream moves between API processes, and
every storage backend carries the same upload → pipeline → export path."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from tests.conftest import Stack, create_user, start_api, start_worker, wait_ready
from tests.fixtures.files import SAMPLE_TEXTS, make_pdf
from tests.helpers import follow, login, upload, wait_status

from docflow.migrate import upgrade


async def test_reconnect_to_another_api_process_resumes_without_gap_or_duplicate(
    stack: Stack,
) -> None:
    second, second_url = start_api(stack.infra)
    try:
        wait_ready(second_url, [second])
        async with (
            httpx.AsyncClient(base_url=stack.base_url, timeout=30) as one,
            httpx.AsyncClient(base_url=second_url, timeout=30) as two,
        ):
            me = await login(one, stack.users["uploader"])
            doc = await upload(
                one,
                me,
                "moving.pdf",
                make_pdf([f"Page {i}. " + SAMPLE_TEXTS["report"] for i in range(60)]),
                "application/pdf",
            )
            first = await follow(one, me, doc["id"], stop_after=3, last_event_id=0)
            seen = [f.id for f in first if f.id is not None]
            rest = await follow(two, me, doc["id"], last_event_id=seen[-1], until={"review"})
            resumed = [f.id for f in rest if f.id is not None]
            log = (await two.get(f"/api/v1/documents/{doc['id']}/events", headers=me)).json()
            assert seen + resumed == [e["id"] for e in log]
            assert rest[-1].event == "document.review"
    finally:
        second.stop()


@pytest.mark.parametrize("backend", ["filesystem"])
async def test_filesystem_storage_backend_runs_the_same_path(
    stack: Stack, tmp_path: Path, backend: str
) -> None:
    """The default (database) backend runs through every other test; this runs the other one
    with its own database, API and worker sharing a directory, as two hosts would share a volume
    (its own database, so no other test ever meets a row whose original lives on that disk)."""
    url_of = make_url(stack.infra.database_url)
    database = url_of.set(database=f"{url_of.database}_{backend}")
    upgrade(database.set(drivername="postgresql+psycopg").render_as_string(hide_password=False))
    env = {
        "DATABASE_URL": database.render_as_string(hide_password=False),
        "DOCFLOW_STORAGE_BACKEND": backend,
        "DOCFLOW_STORAGE_PATH": str(tmp_path / "files"),
        "DOCFLOW_REDIS_NAMESPACE": stack.infra.namespace + "-fs",
    }
    _users(stack, {**stack.infra.env, **env})
    api, url = start_api(stack.infra, extra_env=env)
    worker = start_worker(stack.infra, name="fs", extra_env=env)
    try:
        wait_ready(url, [api, worker])
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            me = await login(client, stack.users["uploader"])
            boss = await login(client, stack.users["reviewer"])
            pdf = make_pdf([f"Page {i}. " + SAMPLE_TEXTS["invoice"] for i in range(3)])
            doc = await upload(client, me, "on-disk.pdf", pdf, "application/pdf")
            body = await wait_status(client, me, doc["id"], {"review", "failed"})
            assert body["status"] == "review", body
            assert body["page_count"] == 3
            stored = list((tmp_path / "files").rglob(doc["id"].replace("-", "")))
            assert len(stored) == 1 and stored[0].read_bytes() == pdf
            assert (
                await client.post(f"/api/v1/review/{doc['id']}/approve", headers=boss)
            ).status_code == 200
            rows = (await client.get("/api/v1/export", headers=me)).json()
            assert doc["id"] in {r["id"] for r in rows}
    finally:
        api.stop()
        worker.stop()
        admin = create_engine(url_of.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database.database}" WITH (FORCE)'))
        admin.dispose()


def _users(stack: Stack, env: dict[str, str]) -> None:
    for role in ("uploader", "reviewer"):
        create_user(env, stack.users[role], role)
