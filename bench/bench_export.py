# a benchmark reports by printing
"""Export rows/s over finalised documents, CSV and JSON, beside PostgreSQL's COPY of the same
query, with the API process's RSS sampled during the export (it must stay flat).

The rows are seeded with one INSERT ... SELECT generate_series (not through the pipeline). Ours:
GET /api/v1/export?format=csv|json read to the end over HTTP. Baseline: COPY (the same columns,
WHERE status = 'finalised' ORDER BY created_at, id) TO STDOUT via psycopg, as CSV, and for JSON
a COPY of row_to_json() over the same query; both read to the end by this process. Goal:
>= 0.7x COPY.

    python bench/bench_export.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _rig import Result, rig, rss_bytes, seed_documents

COLUMNS = (
    "id, filename, title, category, category_confidence, language, page_count, "
    "word_count, keywords, summary, content_type, size_bytes, sha256, owner_id, "
    "reviewed_by, reviewed_at, created_at"
)
QUERY = f"select {COLUMNS} from documents where status = 'finalised' order by created_at, id"


def copy_baseline(dsn: str, fmt: str) -> tuple[float, int]:
    import psycopg

    sql = (
        f"copy ({QUERY}) to stdout with (format csv, header)"
        if fmt == "csv"
        else f"copy (select row_to_json(t) from ({QUERY}) t) to stdout"
    )
    size = 0
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        started = time.perf_counter()
        with cur.copy(sql) as copy:
            for block in copy:
                size += len(block)
        return time.perf_counter() - started, size


def ours(base: str, token: str, fmt: str, pid: int) -> tuple[float, int, list[int]]:
    import httpx

    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.25):
            samples.append(rss_bytes(pid))

    sampler = threading.Thread(target=sample)
    size = 0
    with httpx.Client(base_url=base, timeout=600) as client:
        sampler.start()
        started = time.perf_counter()
        with client.stream(
            "GET",
            "/api/v1/export",
            params={"format": fmt},
            headers={"Authorization": f"Bearer {token}"},
        ) as response:
            response.raise_for_status()
            for block in response.iter_raw(1 << 16):
                size += len(block)
        elapsed = time.perf_counter() - started
    stop.set()
    sampler.join()
    return elapsed, size, samples


def run(rows: int = 1_000_000) -> list[Result]:
    results = []
    with rig("export") as r:
        api, base = r.api()
        token = r.token(base)
        started = time.perf_counter()
        seed_documents(r, rows)
        print(
            f"Export: {rows:,} finalised documents seeded in {time.perf_counter() - started:.0f}s"
        )
        idle_rss = rss_bytes(api.pid)
        for fmt in ("csv", "json"):
            b_time, b_size = copy_baseline(r.psycopg_dsn, fmt)
            o_time, o_size, samples = ours(base, token, fmt, api.pid)
            ours_rate, copy_rate = rows / o_time, rows / b_time
            peak = max(samples, default=idle_rss)
            first = samples[len(samples) // 10] if samples else idle_rss
            print(
                f"  {fmt}: ours {ours_rate:,.0f} rows/s ({o_size / 1e6:.0f} MB in {o_time:.1f}s), "
                f"COPY {copy_rate:,.0f} rows/s ({b_size / 1e6:.0f} MB in {b_time:.1f}s), ratio "
                f"{ours_rate / copy_rate:.2f}x; API RSS idle {idle_rss / 2**20:.0f} MiB, "
                f"at 10% {first / 2**20:.0f} MiB, peak {peak / 2**20:.0f} MiB "
                f"({len(samples)} samples)"
            )
            flat = peak - first < 64 * 2**20
            results.append(
                Result(
                    f"Export rows/s {fmt.upper()}",
                    "rows/s",
                    ours_rate,
                    copy_rate,
                    ">= 0.7x COPY",
                    met=ours_rate / copy_rate >= 0.7,
                    note=f"RSS peak {peak / 2**20:.0f} MiB, "
                    f"{'flat' if flat else 'GROWS'} (+{(peak - first) / 2**20:.0f} MiB)",
                )
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    run(args.rows)


if __name__ == "__main__":
    main()
