# a benchmark reports by printing
"""Run every benchmark (or the ones named) and print one summary table: ours, baseline, ratio,
target, met. Each benchmark starts its own private PostgreSQL/Redis and stops what it started.

    python bench/run.py                       # all, about five minutes on 2 cores
    python bench/run.py pipeline latency      # some: pipeline latency streams upload export
                                              #       extract analyze
    python bench/run.py --full                # the issue's sizes: 1,000 documents, 10,000 streams
    python bench/run.py --quick               # smaller sizes, a few minutes

Benchmarks never fail the build: a missed target is reported, not raised. The exit status is
non-zero only when a benchmark could not run at all.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _rig import BENCH, Result, fmt


def extract(quick: bool) -> list[Result]:
    """bench/extract_bench.py (owned beside this runner): parse its two rates."""
    script = BENCH / "extract_bench.py"
    if not script.exists():
        return [
            Result(
                "PDF extraction pages/s",
                "pages/s",
                None,
                None,
                ">= 0.8x raw",
                note="bench/extract_bench.py missing",
            )
        ]
    args = ["--rounds", "3"] if quick else []
    out = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    print(out.rstrip())
    raw = re.search(r"raw pypdfium2\s+([\d.]+)", out)
    ours = re.search(r"docflow extract\s+([\d.]+)", out)
    o, b = (float(ours.group(1)) if ours else None), (float(raw.group(1)) if raw else None)
    return [
        Result(
            "PDF extraction pages/s",
            "pages/s",
            o,
            b,
            ">= 0.8x raw",
            met=bool(o and b and o / b >= 0.8),
            note="CPU time, generated corpus",
        )
    ]


def analyze(quick: bool) -> list[Result]:
    script = BENCH / "analyze_bench.py"
    if script.exists():
        out = subprocess.run(
            [sys.executable, str(script), "--rounds", "3" if quick else "5"],
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        ).stdout
        print(out.rstrip())
    return []


def main() -> None:
    import bench_export
    import bench_latency
    import bench_pipeline
    import bench_streams
    import bench_upload

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("only", nargs="*", help="run only these")
    parser.add_argument("--full", action="store_true", help="the issue's full sizes")
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    args = parser.parse_args()
    full, quick = args.full, args.quick and not args.full
    plan: dict[str, Callable[[], list[Result]]] = {
        "extract": lambda: extract(quick),
        "latency": lambda: bench_latency.run(200, 4 if quick else 8),
        "upload": lambda: bench_upload.run(5 if quick else 8, 2 if quick else 5),
        "pipeline": lambda: bench_pipeline.run(240 if quick else 1000),
        "streams": lambda: bench_streams.run(
            [2000, 5000, 10_000] if full else ([300, 800] if quick else [1200, 10_000])
        ),
        "export": lambda: bench_export.run(100_000 if quick else 1_000_000),
        "analyze": lambda: analyze(quick),
    }
    unknown = [name for name in args.only if name not in plan]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {list(plan)}")
    chosen = args.only or list(plan)
    rows: list[Result] = []
    broken = []
    started = time.monotonic()
    for name in chosen:
        print(f"\n== {name} " + "=" * (70 - len(name)), flush=True)
        t0 = time.monotonic()
        try:
            rows.extend(plan[name]())
        except Exception:
            traceback.print_exc()
            broken.append(name)
            rows.append(Result(name, "", None, None, note="could not run (see above)"))
        print(f"   ({time.monotonic() - t0:.0f}s)", flush=True)
    print(
        f"\nSummary ({time.monotonic() - started:.0f}s; ratio > 1 means better than the "
        "baseline in the benchmark's own direction)"
    )
    head = f"{'benchmark':<30}{'unit':>8}{'ours':>11}{'baseline':>11}{'ratio':>8}  {'target':<22}{'met':<5} note"
    print(head)
    print("-" * len(head))
    for row in rows:
        ratio = row.ratio
        met = "-" if row.met is None else ("yes" if row.met else "NO")
        print(
            f"{row.name:<30}{row.unit:>8}{fmt(row.ours):>11}{fmt(row.baseline):>11}"
            f"{(f'{ratio:.2f}x' if ratio else '-'):>8}  {row.target:<22}{met:<5} {row.note}"
        )
    if broken:
        sys.exit(1)


if __name__ == "__main__":
    main()
