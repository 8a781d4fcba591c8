# reports its figures as one JSON line on stdout
"""A cheap load generator on raw asyncio sockets (uvloop), run as its own process.

Costlier clients (httpx, one object per connection) would measure themselves on a 2-core
machine; this one sends prebuilt request bytes and parses just enough HTTP/1.1 to find the end
of each response.

    python bench/_loadgen.py requests --port P --request FILE --connections 32 --seconds 10
    python bench/_loadgen.py streams --port P --request-template FILE --count 5000 ...
    python bench/_loadgen.py open-loop --port P --requests FILE --rate 400 --connections 64
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    index = lower.find(b"content-length:")
    if index >= 0:
        end = lower.find(b"\r\n", index)
        body = await reader.readexactly(int(lower[index + 15 : end]))
        return status, body
    if b"transfer-encoding: chunked" in lower:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return status, b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
    return status, b""


async def closed_loop(
    port: int, request: bytes, connections: int, seconds: float, warmup: float
) -> dict[str, object]:
    """K keep-alive connections, each sending the next request when the last answer is in."""
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    errors = 0
    start = time.monotonic()
    measure_from = start + warmup
    deadline = measure_from + seconds

    async def one() -> None:
        nonlocal errors
        reader = writer = None
        while time.monotonic() < deadline:
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                assert reader is not None
                sent = time.monotonic()
                writer.write(request)
                status, _ = await read_response(reader)
                done = time.monotonic()
                if sent >= measure_from and done <= deadline:
                    statuses[status] = statuses.get(status, 0) + 1
                    latencies.append(done - sent)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                errors += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
                await asyncio.sleep(0.05)
        if writer is not None:
            writer.close()

    await asyncio.gather(*(one() for _ in range(connections)))
    latencies.sort()
    ok = sum(n for s, n in statuses.items() if 200 <= s < 300)
    return {
        "rps": ok / seconds,
        "statuses": {str(k): v for k, v in statuses.items()},
        "errors": errors,
        "p50_ms": latencies[len(latencies) // 2] * 1000 if latencies else None,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000 if latencies else None,
    }


def pack_requests(requests: list[bytes]) -> bytes:
    """Requests for `open-loop`, one file: each as an 8-byte length and its bytes."""
    return b"".join(len(r).to_bytes(8, "big") + r for r in requests)


def unpack_requests(data: bytes) -> list[bytes]:
    requests, at = [], 0
    while at < len(data):
        size = int.from_bytes(data[at : at + 8], "big")
        requests.append(data[at + 8 : at + 8 + size])
        at += 8 + size
    return requests


async def open_loop(
    port: int, requests: list[bytes], rate: float, connections: int
) -> dict[str, object]:
    """Request i is due at start + i / rate, whatever the answers so far (no coordinated
    omission): it goes out on an idle keep-alive connection, or a new one while fewer than
    `connections` are open; `worst_lag_ms` says how late the latest one left."""
    statuses: dict[int, int] = {}
    errors = 0
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    opened = 0
    freed = asyncio.Event()
    worst = 0.0
    pending: set[asyncio.Task[None]] = set()

    Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]

    async def one(request: bytes, conn: Connection | None) -> None:
        nonlocal errors, opened
        writer = None
        try:
            if conn is None:
                conn = await asyncio.open_connection("127.0.0.1", port)
            reader, writer = conn
            writer.write(request)
            status, _ = await read_response(reader)
            statuses[status] = statuses.get(status, 0) + 1
            idle.append(conn)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors += 1
            opened -= 1
            if writer is not None:
                writer.close()
        freed.set()

    loop = asyncio.get_running_loop()
    start = loop.time()
    for index, request in enumerate(requests):
        due = start + index / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        while not idle and opened >= connections:
            freed.clear()
            await freed.wait()
        worst = max(worst, loop.time() - due)
        conn = idle.pop() if idle else None
        if conn is None:
            opened += 1
        task = asyncio.create_task(one(request, conn))
        pending.add(task)
        task.add_done_callback(pending.discard)
    while pending:
        await asyncio.gather(*list(pending))
    sent_seconds = loop.time() - start
    for _, writer in idle:
        writer.close()
    return {
        "statuses": {str(k): v for k, v in statuses.items()},
        "errors": errors,
        "worst_lag_ms": worst * 1000,
        "seconds": sent_seconds,
        "connections": opened,
    }


async def hold_streams(
    port: int,
    template: str,
    count: int,
    targets: list[str],
    parallel: int,
    hold: float,
    open_timeout: float,
) -> dict[str, object]:
    """Open `count` SSE streams (at most `parallel` handshakes at once), hold them, count bytes."""
    opened = failed = 0
    frames = 0
    writers: list[asyncio.StreamWriter] = []
    gate = asyncio.Semaphore(parallel)
    readers: list[asyncio.Task[None]] = []

    async def drain(reader: asyncio.StreamReader) -> None:
        nonlocal frames
        with contextlib.suppress(Exception):
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    return
                frames += chunk.count(b"\n\n")

    async def open_one(index: int) -> None:
        nonlocal opened, failed
        async with gate:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                path = targets[index % len(targets)]
                writer.write(template.replace("{path}", path).encode())
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
                if head[9:12] != b"200":
                    failed += 1
                    writer.close()
                    return
                writers.append(writer)
                readers.append(asyncio.create_task(drain(reader)))
                opened += 1
            except (OSError, asyncio.IncompleteReadError, TimeoutError, asyncio.LimitOverrunError):
                failed += 1

    started = time.monotonic()
    tasks = [asyncio.create_task(open_one(i)) for i in range(count)]
    done, pending = await asyncio.wait(tasks, timeout=open_timeout)
    for task in pending:
        task.cancel()
    open_seconds = time.monotonic() - started
    print(
        json.dumps(
            {"event": "opened", "opened": opened, "failed": failed, "seconds": open_seconds}
        ),
        flush=True,
    )
    # Held until the parent says so on stdin (or `hold` seconds pass).
    loop = asyncio.get_running_loop()
    before = frames
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.readline), hold)
    result = {
        "event": "done",
        "opened": opened,
        "failed": failed,
        "open_seconds": open_seconds,
        "frames_while_held": frames - before,
        "frames": frames,
    }
    for writer in writers:
        writer.close()
    for task in readers:
        task.cancel()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["requests", "streams", "open-loop"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--request", help="file holding the raw request bytes")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--request-template", help="raw request with {path}")
    parser.add_argument("--requests", help="file of length-prefixed requests (open-loop)")
    parser.add_argument("--rate", type=float, default=100, help="requests/s (open-loop)")
    parser.add_argument("--targets", help="file with one path per line")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--parallel", type=int, default=64)
    parser.add_argument("--hold", type=float, default=120)
    parser.add_argument("--open-timeout", type=float, default=180)
    args = parser.parse_args()
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    if args.mode == "open-loop":
        with open(args.requests, "rb") as handle:
            requests = unpack_requests(handle.read())
        result = asyncio.run(open_loop(args.port, requests, args.rate, args.connections))
    elif args.mode == "requests":
        with open(args.request, "rb") as handle:
            request = handle.read()
        result = asyncio.run(
            closed_loop(args.port, request, args.connections, args.seconds, args.warmup)
        )
    else:
        with open(args.request_template, encoding="utf-8", newline="") as handle:
            template = handle.read()
        with open(args.targets, encoding="utf-8") as handle:
            targets = [line.strip() for line in handle if line.strip()]
        result = asyncio.run(
            hold_streams(
                args.port,
                template,
                args.count,
                targets,
                args.parallel,
                args.hold,
                args.open_timeout,
            )
        )
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
