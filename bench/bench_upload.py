# a benchmark reports by printing
"""Upload requests/s: POST /api/v1/documents (stored, row written, task enqueued) beside a bare
Starlette multipart endpoint, same client, same file, interleaved rounds.

The load generator (bench/_loadgen.py) is a separate uvloop process on raw sockets with K
keep-alive connections (closed loop, like wrk). No worker runs: the tasks stay queued in Redis,
which is what "enqueued" means. Goal: >= 0.4x the bare endpoint and >= 500 req/s.

    python bench/bench_upload.py [--seconds 8] [--rounds 5] [--connections 32]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _rig import BENCH, Result, fmt, median, rig

BOUNDARY = "----docflowbench7MA4YWxkTrZu0gW"


def multipart_request(
    path: str,
    port: int,
    token: str | None,
    body_text: bytes,
    filename: str = "note.txt",
    content_type: str = "text/plain",
) -> bytes:
    body = (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'
        ).encode()
        + body_text
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    head = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}",
        f"Content-Length: {len(body)}",
    ]
    if token:
        head.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def load(port: int, request: bytes, tmp: Path, seconds: float, connections: int) -> dict:
    path = tmp / f"request-{port}.bin"
    path.write_bytes(request)
    out = subprocess.run(
        [
            sys.executable,
            str(BENCH / "_loadgen.py"),
            "requests",
            "--port",
            str(port),
            "--request",
            str(path),
            "--connections",
            str(connections),
            "--seconds",
            str(seconds),
            "--warmup",
            "2",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 120,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(seconds: float = 8, rounds: int = 5, connections: int = 32) -> list[Result]:
    from tests.fixtures.files import SAMPLE_TEXTS

    text = next(iter(SAMPLE_TEXTS.values())).encode()
    with rig("upload") as r:
        api, base = r.api()
        api_port = int(base.rsplit(":", 1)[1])
        token = r.token(base)
        bare, bare_port = r.bare()
        ours_req = multipart_request("/api/v1/documents", api_port, token, text)
        bare_req = multipart_request("/upload", bare_port, None, text)
        ours_rps, bare_rps, details = [], [], []
        for index in range(rounds):
            b = load(bare_port, bare_req, r.tmp, seconds, connections)
            o = load(api_port, ours_req, r.tmp, seconds, connections)
            bare_rps.append(b["rps"])
            ours_rps.append(o["rps"])
            details.append((b, o))
            print(
                f"  round {index + 1}: bare {b['rps']:.0f} req/s (p50 {fmt(b['p50_ms'])} ms), "
                f"ours {o['rps']:.0f} req/s (p50 {fmt(o['p50_ms'])} ms, p99 "
                f"{fmt(o['p99_ms'])} ms, statuses {o['statuses']}, errors {o['errors']})"
            )
        stored = r.sql("select count(*) from documents")[0][0]
        queued = _queued(r.redis_url)
    ours, base_rps = median(ours_rps), median(bare_rps)
    print(
        f"Upload, {len(text)}-byte text file, {connections} connections, {rounds} interleaved "
        f"rounds of {seconds:.0f}s: ours {ours:.0f} req/s, bare Starlette {base_rps:.0f} req/s, "
        f"ratio {ours / base_rps:.2f}x; {stored} rows stored, {queued} tasks queued"
    )
    met = ours >= 500 and ours / base_rps >= 0.4
    return [
        Result(
            "Upload requests/s",
            "req/s",
            ours,
            base_rps,
            ">= 0.4x and >= 500/s",
            met=met,
            note=f"{connections} conns, median of {rounds}",
        )
    ]


def _queued(redis_url: str) -> int:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        return sum(
            int(client.llen(k)) for k in client.keys("*documents*") if client.type(k) == b"list"
        )
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    run(args.seconds, args.rounds, args.connections)


if __name__ == "__main__":
    main()
