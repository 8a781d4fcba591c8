# a benchmark reports by printing
"""Event latency: a worker-side publish to its receipt by an SSE client of the API, beside the
raw Redis pub/sub round trip, with the workers idle and saturated.

A publisher process sends events at a fixed rate (open loop): event i is due at start + i/rate,
carries that due time, and latency is measured from the due time, so a publisher or a server
that stalls is charged for every event it delays (no coordinated omission). Ours goes through
docflow.events.publisher.publish_sync → Redis → the API's event hub → the per-user SSE stream
(GET /api/v1/documents/stream, read on a raw socket). The baseline publishes the same payload
with redis-py to a channel a redis.asyncio subscriber in the reader reads. Clocks: CLOCK_MONOTONIC,
one clock for every process on the machine. Saturated = a worker with 2 pool processes busy with
a queue of real documents (whose own events also flow through the same stream).

    python bench/bench_latency.py [--rate 200] [--seconds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _rig import Result, fmt, pct, rig, wait_http

RAW_CHANNEL = "bench:raw"


def _publisher(mode: str, redis_url: str, rate: float, count: int) -> None:
    """Open loop: event i is due at start + i / rate and carries its due time."""
    import redis

    from docflow.events.publisher import publish_sync, sync_client

    client = redis.Redis.from_url(redis_url)
    client.ping()
    sync_client().ping()
    doc, owner = str(uuid.uuid4()), str(uuid.uuid4())
    # The schedule starts once this process is up: its start-up is not the system's latency.
    start_ns = time.monotonic_ns() + int(0.2e9)
    for index in range(count):
        due = start_ns + int(index * 1e9 / rate)
        delay = (due - time.monotonic_ns()) / 1e9
        if delay > 0:
            time.sleep(delay)
        payload = {
            "id": None,
            "type": "stage.progress",
            "document_id": doc,
            "owner_id": owner,
            "status": "processing",
            "stage": "extract",
            "progress": 50,
            "message": "bench",
            "actor": "bench",
            "created_at": None,
            "data": {"done": index, "total": count, "bench_due": due},
        }
        if mode == "ours":
            publish_sync([payload])
        else:
            client.publish(RAW_CHANNEL, json.dumps(payload, separators=(",", ":")))


def _launch(mode: str, redis_url: str, rate: float, seconds: float) -> tuple[Any, int]:
    count = int(rate * seconds)
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=_publisher, args=(mode, redis_url, rate, count))
    proc.start()
    return proc, count


async def _receive_sse(
    port: int, token: str, expect: int, timeout: float, ready: asyncio.Event
) -> list[float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    writer.write(
        f"GET /api/v1/documents/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    await reader.readuntil(b"\r\n\r\n")
    latencies: list[float] = []
    buffer = b""
    deadline = time.monotonic() + timeout
    while len(latencies) < expect and time.monotonic() < deadline:
        if b"snapshot" in buffer:
            ready.set()
        try:
            chunk = await asyncio.wait_for(
                reader.read(65536), max(deadline - time.monotonic(), 0.01)
            )
        except TimeoutError:
            break
        now = time.monotonic_ns()
        if not chunk:
            break
        buffer += chunk
        *frames, buffer = buffer.split(b"\n\n")
        for frame in frames:
            index = frame.find(b'"bench_due":')
            if index < 0:
                if b"snapshot" in frame:
                    ready.set()
                continue
            due = int(frame[index + 12 :].split(b"}", 1)[0].split(b",", 1)[0])
            latencies.append((now - due) / 1e6)
    writer.close()
    return latencies


async def _receive_raw(
    redis_url: str, expect: int, timeout: float, ready: asyncio.Event
) -> list[float]:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    await pubsub.subscribe(RAW_CHANNEL)
    latencies: list[float] = []
    deadline = time.monotonic() + timeout
    while len(latencies) < expect and time.monotonic() < deadline:
        message = await pubsub.get_message(timeout=0.5)
        if message is None:
            continue
        if message["type"] == "subscribe":
            ready.set()
            continue
        now = time.monotonic_ns()
        due = json.loads(message["data"])["data"]["bench_due"]
        latencies.append((now - due) / 1e6)
    await pubsub.aclose()
    await client.aclose()
    return latencies


def measure(
    mode: str, redis_url: str, port: int, token: str, rate: float, seconds: float
) -> tuple[list[float], int]:
    async def go() -> tuple[list[float], int]:
        ready = asyncio.Event()
        expect = int(rate * seconds)
        timeout = seconds + 40
        if mode == "ours":
            task = asyncio.create_task(_receive_sse(port, token, expect, timeout, ready))
        else:
            task = asyncio.create_task(_receive_raw(redis_url, expect, timeout, ready))
        await asyncio.wait_for(ready.wait(), 15)
        proc, count = _launch(mode, redis_url, rate, seconds)
        latencies = await task
        await asyncio.to_thread(proc.join, 30)
        return latencies, count

    return asyncio.run(go())


def _keep_busy(
    base: str, token: str, stop: threading.Event, documents: list[tuple[str, bytes, str]]
) -> None:
    """Keep the worker's queue full of real documents until `stop`."""
    import httpx

    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as client:
        index = 0
        while not stop.is_set():
            queued = client.get(
                "/api/v1/documents", params={"status": "uploaded", "page_size": 1}
            ).json()["total"]
            if queued < 20:
                for _ in range(20):
                    client.post(
                        "/api/v1/documents", files={"file": documents[index % len(documents)]}
                    )
                    index += 1
            stop.wait(0.5)


def run(rate: float = 200, seconds: float = 8) -> list[Result]:
    from bench_pipeline import corpus

    rows: dict[str, dict[str, list[float]]] = {}
    with rig("latency") as r:
        api, base = r.api()
        worker = r.worker(2)
        wait_http(f"{base}/api/v1/health/ready", [api, worker], timeout=120)
        port, token = int(base.rsplit(":", 1)[1]), r.token(base)
        measure("ours", r.redis_url, port, token, 50, 1)  # warm: connections, first frames
        docs = [d for d in corpus(30) if not d[0].endswith(".txt")]
        for phase in ("idle", "saturated"):
            stop = threading.Event()
            busy = None
            if phase == "saturated":
                busy = threading.Thread(target=_keep_busy, args=(base, token, stop, docs))
                busy.start()
                time.sleep(4)
            rows[phase] = {}
            for mode in ("raw", "ours"):
                latencies, sent = measure(mode, r.redis_url, port, token, rate, seconds)
                rows[phase][mode] = latencies
                lost = sent - len(latencies)
                print(
                    f"  {phase:<10}{mode:<5} n={len(latencies):>5} lost={lost:<4} "
                    f"p50 {fmt(pct(latencies, 50), 2):>7} ms  p99 {fmt(pct(latencies, 99), 2):>7} ms"
                    f"  max {fmt(max(latencies, default=0), 1):>7} ms"
                )
            stop.set()
            if busy:
                busy.join()
    results = []
    idle, sat = rows["idle"], rows["saturated"]
    p50, p99 = pct(idle["ours"], 50), pct(idle["ours"], 99)
    results.append(
        Result(
            "SSE latency idle p50",
            "ms",
            p50,
            pct(idle["raw"], 50),
            "<= 2 ms",
            higher_is_better=False,
            met=p50 <= 2,
            note=f"{rate:.0f}/s open loop",
        )
    )
    results.append(
        Result(
            "SSE latency idle p99",
            "ms",
            p99,
            pct(idle["raw"], 99),
            "<= 10 ms",
            higher_is_better=False,
            met=p99 <= 10,
        )
    )
    s99 = pct(sat["ours"], 99)
    results.append(
        Result(
            "SSE latency saturated p99",
            "ms",
            s99,
            pct(sat["raw"], 99),
            "<= 50 ms",
            higher_is_better=False,
            met=s99 <= 50,
            note=f"p50 {fmt(pct(sat['ours'], 50), 2)} ms",
        )
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=8)
    args = parser.parse_args()
    run(args.rate, args.seconds)


if __name__ == "__main__":
    main()
