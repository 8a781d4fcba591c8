# a benchmark reports by printing
"""Concurrent SSE streams held by one API process while events are published, beside a bare
Starlette streaming endpoint.

A client process (bench/_loadgen.py, raw asyncio sockets) opens N per-document streams
(GET /api/v1/documents/{id}/stream, spread over 100 documents) and drains them; meanwhile a
publisher sends events for random ones of those documents through
docflow.events.publisher.publish_sync. We sample the API process's RSS before and with the
streams open: (RSS with N - RSS with 0) / N is the memory per stream. Redis: CLIENT LIST before
and with N open (the count must not grow with N), and the PSUBSCRIBE pattern count (must be 0).
The bare baseline holds the same streams on an in-process queue per connection, same rate.
Goal: 10,000 streams at <= 32 KiB each.

    python bench/bench_streams.py [--streams 1000,3000] [--rate 50]   (--streams 10000 for full)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _rig import (
    BENCH,
    Result,
    cpu_seconds,
    raise_nofile,
    redis_clients,
    rig,
    rss_bytes,
    seed_documents,
)

TOPICS = 100


def hold(
    port: int,
    template: str,
    targets: list[str],
    count: int,
    tmp: Path,
    measure: Any,
    server_pid: int | None = None,
) -> dict[str, Any]:
    """Open `count` streams in a client process, call `measure()` while they are held; with
    `server_pid`, also the server's CPU seconds spent while they opened."""
    (tmp / "template.txt").write_bytes(template.encode())
    (tmp / "targets.txt").write_text("\n".join(targets))
    client = subprocess.Popen(
        [
            sys.executable,
            str(BENCH / "_loadgen.py"),
            "streams",
            "--port",
            str(port),
            "--request-template",
            str(tmp / "template.txt"),
            "--targets",
            str(tmp / "targets.txt"),
            "--count",
            str(count),
            "--parallel",
            "48",
            "--hold",
            "300",
            "--open-timeout",
            "240",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert client.stdout is not None and client.stdin is not None
    cpu0 = cpu_seconds(server_pid) if server_pid else 0.0
    opened = json.loads(client.stdout.readline())
    if server_pid:
        opened["open_cpu_seconds"] = cpu_seconds(server_pid) - cpu0
    time.sleep(3)  # a few publishes reach every group; let the allocator settle
    sample = measure()
    client.stdin.write("\n")
    client.stdin.flush()
    done = json.loads(client.stdout.readline())
    client.wait(30)
    return {**opened, **done, **sample}


def _publish_loop(stop: threading.Event, docs: list[str], owner: str, rate: float) -> None:
    import random

    from docflow.events.publisher import publish_sync

    while not stop.wait(1 / rate):
        publish_sync(
            [
                {
                    "id": None,
                    "type": "stage.progress",
                    "document_id": random.choice(docs),
                    "owner_id": owner,
                    "status": "processing",
                    "stage": "extract",
                    "progress": 40,
                    "message": "bench",
                    "actor": "bench",
                    "created_at": None,
                    "data": {"done": 1, "total": 2},
                }
            ]
        )


def run(levels: list[int], rate: float = 50) -> list[Result]:
    limit = raise_nofile(max(levels) * 2 + 1024)
    if limit < max(levels) + 512:
        print(f"  open-files limit is {limit} (hard): fewer streams than asked can be held")
    rows: list[tuple[int, float, float, dict[str, Any], dict[str, Any]]] = []
    with rig("streams", {"DOCFLOW_SSE_KEEPALIVE_SECONDS": "15"}) as r:
        api, base = r.api()
        api_port, token = int(base.rsplit(":", 1)[1]), r.token(base)
        owner = seed_documents(r, TOPICS, status="review")
        docs = [str(v[0]) for v in r.sql("select id from documents")]
        bare, bare_port = r.bare({"BARE_RATE": str(rate), "BARE_TOPICS": str(TOPICS)})
        ours_tpl = (
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
            f"Authorization: Bearer {token}\r\n\r\n"
        )
        bare_tpl = "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
        ours_targets = [f"/api/v1/documents/{d}/stream" for d in docs]
        bare_targets = [f"/stream/t{i}" for i in range(TOPICS)]
        stop = threading.Event()
        publisher = threading.Thread(target=_publish_loop, args=(stop, docs, owner, rate))
        publisher.start()
        try:
            # Warm both servers (imports, pools, first allocations) before the zero point.
            hold(api_port, ours_tpl, ours_targets, 50, r.tmp, dict)
            hold(bare_port, bare_tpl, bare_targets, 50, r.tmp, dict)
            for count in levels:
                time.sleep(2)
                base_ours, base_bare = rss_bytes(api.pid), rss_bytes(bare.pid)
                clients0 = redis_clients(r.redis_url)

                def sample_ours() -> dict[str, Any]:
                    clients, subscribed, patterns = redis_clients(r.redis_url)
                    return {
                        "rss": rss_bytes(api.pid),
                        "redis_clients": clients,
                        "subscribed": subscribed,
                        "patterns": patterns,
                    }

                o = hold(api_port, ours_tpl, ours_targets, count, r.tmp, sample_ours, api.pid)
                o["redis_clients_before"] = clients0[0]
                b = hold(
                    bare_port,
                    bare_tpl,
                    bare_targets,
                    count,
                    r.tmp,
                    lambda: {"rss": rss_bytes(bare.pid)},
                    bare.pid,
                )
                per_ours = (o["rss"] - base_ours) / max(o["opened"], 1) / 1024
                per_bare = (b["rss"] - base_bare) / max(b["opened"], 1) / 1024
                rows.append((count, per_ours, per_bare, o, b))
                print(
                    f"  {count:>6} asked: ours {o['opened']} open ({o['failed']} failed, "
                    f"{o['open_seconds']:.1f}s to open, "
                    f"{1000 * o['open_cpu_seconds'] / max(o['opened'], 1):.2f} ms API CPU each), "
                    f"{per_ours:.1f} KiB/stream, "
                    f"{o['frames_while_held']} frames while held; Redis clients "
                    f"{o['redis_clients_before']} -> {o['redis_clients']}, subscribed "
                    f"{o['subscribed']}, patterns {o['patterns']} | bare {b['opened']} open, "
                    f"{per_bare:.1f} KiB/stream ({b['open_seconds']:.1f}s to open, "
                    f"{1000 * b['open_cpu_seconds'] / max(b['opened'], 1):.2f} ms CPU each)"
                )
        finally:
            stop.set()
            publisher.join()
    count, per_ours, per_bare, o, _ = rows[-1]
    results = [
        Result(
            f"SSE memory/stream @{o['opened']}",
            "KiB",
            per_ours,
            per_bare,
            "<= 32 KiB",
            higher_is_better=False,
            met=per_ours <= 32 and o["opened"] >= 10_000 if count >= 10_000 else None,
            note="met only counts at 10,000 streams" if count < 10_000 else "",
        )
    ]
    growth = o["redis_clients"] - o["redis_clients_before"]
    results.append(
        Result(
            "Redis clients, +streams",
            "clients",
            float(growth),
            0.0,
            "no growth, 0 patterns",
            higher_is_better=False,
            met=growth <= 1 and o["patterns"] == 0,
            note=f"{o['redis_clients_before']} -> {o['redis_clients']} with "
            f"{o['opened']} streams; patterns {o['patterns']}",
        )
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--streams", default="1000,3000")
    parser.add_argument("--rate", type=float, default=50)
    args = parser.parse_args()
    run([int(v) for v in args.streams.split(",")], args.rate)


if __name__ == "__main__":
    main()
