# a benchmark reports by printing
"""Export rows/s over finalised documents, CSV and JSON, beside PostgreSQL's COPY of the same
query, with the API process's RSS sampled during the export (it must stay flat).

The rows are seeded with one INSERT ... SELECT generate_series (not through the pipeline). Ours:
GET /api/v1/export?format=csv|json read to the end over HTTP. Baseline: `COPY (the same query)
TO STDOUT` via psycopg (what psql's \\copy does): the exact SELECT the endpoint runs, compiled
from docflow.export.service with literal values, read to the end by this process. So the ratio
is what serving it over HTTP costs beside PostgreSQL producing it. Goal: >= 0.7x COPY.

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


def same_query(fmt: str) -> str:
    """The exact SELECT the export endpoint hands to COPY (an admin, no filter)."""
    from sqlalchemy.dialects import postgresql

    from docflow.documents.repository import DocumentFilter
    from docflow.export.service import csv_query, json_query
    from docflow.models import Role, User

    admin = User(role=Role.ADMIN.value)
    stmt = (csv_query if fmt == "csv" else json_query)(admin, DocumentFilter())
    compiled = stmt.compile(
        dialect=postgresql.psycopg.dialect(),  # type: ignore[no-untyped-call]
        compile_kwargs={"literal_binds": True},
    )
    return str(compiled)


def copy_baseline(dsn: str, fmt: str) -> tuple[float, int]:
    """psql's \\copy of the same query: COPY (query) TO STDOUT, read to the end here."""
    import psycopg

    query = same_query(fmt)
    sql = (
        f"copy ({query}) to stdout with (format csv, header)"
        if fmt == "csv"
        else f"copy ({query}) to stdout with (format csv, quote e'\\x01', delimiter e'\\x02')"
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
