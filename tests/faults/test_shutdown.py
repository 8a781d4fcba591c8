"""Told to stop, an API process ends its streams with a retry hint; a worker finishes its task."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import httpx

from tests.faults.conftest import Rig
from tests.faults.invariants import check
from tests.faults.test_worker_loss import _client, _upload, _wait_settled
from tests.fixtures.files import SAMPLE_TEXTS, make_pdf
from tests.helpers import wait_api


def test_api_stop_closes_streams_with_a_retry_hint(rig: Rig) -> None:
    api, base = rig.api()
    wait_api(base)
    client, auth = _client(base)
    doc = _upload(client, auth, "x.txt", SAMPLE_TEXTS["letter"].encode())

    async def scenario() -> tuple[list[str], float]:
        lines: list[str] = []
        async with (
            httpx.AsyncClient(base_url=base, timeout=30) as aclient,
            aclient.stream(
                "GET", f"/api/v1/documents/{doc}/stream", headers=auth, timeout=None
            ) as response,
        ):
            iterator = response.aiter_lines()
            while not any(line.startswith("event: snapshot") for line in lines):
                lines.append(await iterator.__anext__())
            os.kill(api.process.pid, signal.SIGTERM)
            stopped = time.monotonic()
            async with asyncio.timeout(15):
                async for line in iterator:
                    lines.append(line)
            return lines, time.monotonic() - stopped

    lines, took = asyncio.run(scenario())
    assert "retry: 1000" in lines, lines
    assert took < 10, f"the stream held shutdown up for {took:.1f}s"
    api.process.wait(15)
    assert "Application shutdown complete" in api.log.read_text()


def test_worker_warm_shutdown_finishes_its_stage(rig: Rig) -> None:
    _api, base = rig.api()
    worker = rig.worker("w1", concurrency=1)
    rig.beat()
    wait_api(base)
    client, auth = _client(base)
    doc = _upload(
        client,
        auth,
        "long.pdf",
        make_pdf([f"Page {i}. " + SAMPLE_TEXTS["report"][:400] for i in range(1500)]),
    )
    deadline = time.monotonic() + 60
    while not rig.sql(
        "select 1 from documents where stage = 'extract' and lease_owner is not null"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    worker.process.send_signal(signal.SIGTERM)  # as `docker stop` or systemd would
    assert worker.process.wait(60) == 0
    # The stage in hand was finished, not abandoned: extract completed exactly once, no retry.
    events = rig.sql(
        "select type, stage from document_events where document_id = %s order by id", doc
    )
    assert ("stage.completed", "extract") in events
    assert not any(kind == "stage.retry" for kind, _ in events)
    rig.worker("w2", concurrency=1)
    _wait_settled(rig, [doc], timeout=120)
    assert check(rig)[doc] == "review"
