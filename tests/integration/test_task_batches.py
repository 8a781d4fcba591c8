"""A backlog's validate tasks share messages (documents/intake.py), and a worker runs every
document a message names: each still gets its whole pipeline and its whole event log."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from tests.conftest import Stack, start_api, start_worker
from tests.helpers import TO_REVIEW, login, queued_tasks, wait_api, wait_status

from docflow import jobs
from docflow.documents import intake
from docflow.models import Stage

FLOW = ["document.uploaded", *TO_REVIEW]


def _messages(redis_url: str, key: str) -> list[list[str]]:
    """The argument lists of the task messages queued at `key`, oldest first."""
    return [ids for _, ids in queued_tasks(redis_url, key)]


async def _post(client: httpx.AsyncClient, me: dict[str, str], name: str) -> dict[str, Any]:
    data = f"A short note called {name}, to be read and filed. ".encode() * 8
    response = await client.post(
        "/api/v1/documents", headers=me, files={"file": (name, data, "text/plain")}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_backlogs_tasks_share_messages_and_a_worker_runs_every_document(
    stack: Stack,
) -> None:
    namespace = stack.infra.namespace + "-batch"
    env = {"DOCFLOW_REDIS_NAMESPACE": namespace}
    api, url = start_api(stack.infra, extra_env=env)  # no worker yet: the queue backs up
    worker = None
    try:
        wait_api(url)
        limits = httpx.Limits(max_connections=48, max_keepalive_connections=48)
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
            me = await login(client, stack.users["uploader"])
            first = await _post(client, me, "first.txt")
            key = f"{namespace}:documents"
            # Nothing was waiting: its task goes out at once (just after the answer), alone.
            await asyncio.sleep(0.02)
            assert _messages(stack.infra.redis_url, key) == [[first["id"]]]
            burst = await asyncio.gather(*(_post(client, me, f"b{i}.txt") for i in range(40)))
            await asyncio.sleep(0.3)  # longer than a task lingers for company
            messages = _messages(stack.infra.redis_url, key)
            named = [document_id for args in messages for document_id in args]
            ids = [first["id"], *(doc["id"] for doc in burst)]
            assert sorted(named) == sorted(ids)  # every document in exactly one message
            assert max(len(args) for args in messages) > 1
            assert max(len(args) for args in messages) <= 16
            assert len(messages) < len(ids)

            worker = start_worker(stack.infra, "batcher", extra_env=env)
            for document_id in ids:
                done = await wait_status(client, me, document_id, {"review", "failed"}, 90)
                assert done["status"] == "review", done
                assert done["category"] and done["keywords"]
            for document_id in (ids[0], ids[-1]):
                log = await client.get(f"/api/v1/documents/{document_id}/events", headers=me)
                assert [e["type"] for e in log.json()] == FLOW
            assert _messages(stack.infra.redis_url, key) == []
    finally:
        for proc in (api, worker):
            if proc is not None:
                proc.stop()


async def test_a_round_of_tasks_for_an_empty_queue_sends_one_alone_and_the_rest_together(
    stack: Stack,  # noqa: ARG001  (its Redis)
) -> None:
    """The queue is empty for the first task of an announcer's round only: the rest share
    messages instead of each going alone (as a burst's first round once sent them)."""
    queue = f"probe-{uuid.uuid4().hex[:8]}"  # no worker takes from it
    tasks = [jobs.Job(jobs.stage_task(Stage.VALIDATE), uuid.uuid4(), queue) for _ in range(20)]
    try:
        now = await intake._Writer()._now(tasks)
    finally:
        # The cached broker client is bound to this test's event loop: the next user, in a
        # loop of its own, must build another.
        await jobs._broker_async().aclose()
        jobs._broker_async.cache_clear()
    assert [1 + len(job.more) for job in now] == [1, 16, 3]
    sent = [document_id for job in now for document_id in (job.document_id, *job.more)]
    assert sent == [task.document_id for task in tasks]  # each once, in upload order
