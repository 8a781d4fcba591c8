# a benchmark reports by printing
"""Memory of the API process and the worker while a 200 MiB PDF goes from upload to review,
beside the same processes handling a 100 KB PDF of the same shape, same run, both storage
backends.

Per backend (DOCFLOW_STORAGE_BACKEND=database, then filesystem): a private rig, one API process
and one worker with one pool process (`docflow worker -c 1`, so one process runs every stage),
DOCFLOW_MAX_UPLOAD_BYTES raised to 256 MiB. The PDFs are generated on disk a MiB at a time:
eight text pages, each drawing one large uncompressed grayscale image of random bytes (big on
disk, cheap to parse, nothing to inflate). Each file is uploaded from disk with a streaming
multipart body (httpx reads the file as it sends), after one small warm-up document. A sampler
thread reads RSS, USS and RssAnon of the API process and of each worker process every 50 ms,
from a second before the upload until the document reaches review; we print peak minus idle
(the median of that second) for each. Target: every process grows by < 64 MiB for the 200 MiB
file. The worker's temporary copies go to a private TMPDIR, checked empty at the end.

Not part of `bench/run.py` (it would add about two minutes to `make bench`); run it alone:

    python bench/bench_bigfile.py [--mib 200] [--backends database filesystem]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
import psutil
from _rig import Result, Rig, fmt, rig, wait_http

MIB = 1024 * 1024
TARGET_GROWTH = 64 * MIB
METRICS = ("rss", "uss", "anon")
PAGES = 8


def write_pdf(path: Path, size: int, pages: int = PAGES) -> int:
    """A PDF of about `size` bytes, written a MiB at a time: `pages` pages of text, each drawing
    one square 8-bit grayscale image of random bytes, stored without a filter. Returns its size.
    """
    side = max(8, int((size / pages) ** 0.5))
    offsets: dict[int, int] = {}
    with path.open("wb") as fh:

        def obj(number: int, *parts: bytes) -> None:
            offsets[number] = fh.tell()
            fh.write(b"%d 0 obj\n" % number)
            for part in parts:
                fh.write(part)
            fh.write(b"\nendobj\n")

        fh.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
        kids = b" ".join(b"%d 0 R" % (4 + 3 * i) for i in range(pages))
        obj(1, b"<< /Type /Catalog /Pages 2 0 R >>")
        obj(2, b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages))
        obj(3, b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
        for i in range(pages):
            page, content, image = 4 + 3 * i, 5 + 3 * i, 6 + 3 * i
            obj(
                page,
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R"
                b" /Resources << /Font << /F1 3 0 R >> /XObject << /Im1 %d 0 R >> >> >>"
                % (content, image),
            )
            ops = (
                b"BT /F1 14 Tf 72 720 Td (Page %d of the annual report: revenue grew, costs "
                b"fell, and the outlook for next year is stable.) Tj ET\n"
                b"q 400 0 0 400 100 150 cm /Im1 Do Q" % (i + 1)
            )
            obj(content, b"<< /Length %d >>\nstream\n" % len(ops), ops, b"\nendstream")
            offsets[image] = fh.tell()
            fh.write(
                b"%d 0 obj\n<< /Type /XObject /Subtype /Image /Width %d /Height %d"
                b" /ColorSpace /DeviceGray /BitsPerComponent 8 /Length %d >>\nstream\n"
                % (image, side, side, side * side)
            )
            left = side * side
            while left:
                step = min(left, MIB)
                fh.write(os.urandom(step))
                left -= step
            fh.write(b"\nendstream\nendobj\n")
        xref = fh.tell()
        fh.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(offsets) + 1))
        for number in sorted(offsets):
            fh.write(b"%010d 00000 n \n" % offsets[number])
        fh.write(
            b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
            % (len(offsets) + 1, xref)
        )
        return fh.tell()


# ---- memory sampling ------------------------------------------------------------------------


def memory(pid: int) -> dict[str, int]:
    """RSS, USS (pages only this process holds) and RssAnon (heap, not file-backed) in bytes."""
    proc = psutil.Process(pid)
    values = {"rss": proc.memory_info().rss, "uss": proc.memory_full_info().uss, "anon": 0}
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                values["anon"] = int(line.split()[1]) * 1024
    return values


@dataclass
class Sampler:
    """Samples every process in `roots` (and their children) every `interval` seconds."""

    roots: dict[str, int]
    interval: float = 0.05
    samples: dict[str, list[tuple[float, dict[str, int]]]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def names(self) -> dict[str, int]:
        found = {}
        for name, pid in self.roots.items():
            found[name] = pid
            with contextlib.suppress(psutil.Error):
                for child in psutil.Process(pid).children(recursive=True):
                    found[f"{name} child {child.pid}"] = child.pid
        return found

    def run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            for name, pid in self.names().items():
                with contextlib.suppress(psutil.Error):
                    self.samples.setdefault(name, []).append((now, memory(pid)))
            self._stop.wait(self.interval)

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=self.run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def growth(self, started: float) -> dict[str, dict[str, int]]:
        """Per process and metric: peak after `started` minus the median before it."""
        out: dict[str, dict[str, int]] = {}
        for name, rows in self.samples.items():
            before = [values for at, values in rows if at < started]
            after = [values for at, values in rows if at >= started]
            if not before or not after:
                continue
            out[name] = {
                m: max(v[m] for v in after) - int(statistics.median(v[m] for v in before))
                for m in METRICS
            }
        return out


# ---- one document through the pipeline ------------------------------------------------------


@dataclass
class Upload:
    status: str
    error: str | None
    timings: dict[str, dict[str, Any]]
    upload_s: float
    review_s: float
    growth: dict[str, dict[str, int]]  # process -> metric -> bytes


def upload_and_wait(base: str, token: str, path: Path, r: Rig, roots: dict[str, int]) -> Upload:
    """Upload `path` (streamed from disk) and wait for review while sampling memory."""
    with Sampler(roots) as sampler:
        time.sleep(1.0)  # the idle baseline
        started = time.monotonic()
        with httpx.Client(base_url=base, timeout=600) as client, path.open("rb") as fh:
            response = client.post(
                "/api/v1/documents",
                files={"file": (path.name, fh, "application/pdf")},
                headers={"Authorization": f"Bearer {token}"},
            )
        response.raise_for_status()
        uploaded = time.monotonic() - started
        status, error, timings = _wait_final(r, response.json()["id"], timeout=600)
        finished = time.monotonic() - started
        time.sleep(0.2)
    return Upload(status, error, timings, uploaded, finished, sampler.growth(started))


def _wait_final(
    r: Rig, document_id: str, timeout: float
) -> tuple[str, str | None, dict[str, dict[str, Any]]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, error, timings = r.sql(
            "select status, error, timings from documents where id = %s", document_id
        )[0]
        if status in ("review", "failed", "rejected"):
            return str(status), None if error is None else str(error), dict(timings or {})  # type: ignore[call-overload]
        time.sleep(0.1)
    raise RuntimeError(f"document {document_id} not done after {timeout:.0f}s")


def _wall(timing: dict[str, Any]) -> float:
    """A stage's wall time: claim, copy of the original, compute and commit."""
    if "started_at" not in timing or "finished_at" not in timing:
        return math.nan
    started = datetime.fromisoformat(timing["started_at"])
    return (datetime.fromisoformat(timing["finished_at"]) - started).total_seconds()


def one_backend(backend: str, big: Path, small: Path, warm: Path) -> list[Result]:
    label = f"{big.stat().st_size / MIB:.0f} MiB"
    limit = max(256 * MIB, big.stat().st_size + MIB)
    with rig(
        f"bigfile-{backend}",
        {"DOCFLOW_MAX_UPLOAD_BYTES": str(limit), "DOCFLOW_STORAGE_BACKEND": backend},
    ) as r:
        spool = r.tmp / "worker-tmp"
        spool.mkdir()
        env = {"DOCFLOW_STORAGE_PATH": str(r.tmp / "files")}
        api, base = r.api(env)
        worker = r.worker(1, {**env, "TMPDIR": str(spool)})
        wait_http(f"{base}/api/v1/health/ready", [api, worker], timeout=120)
        token = r.token(base)
        roots = {"api": api.pid, "worker": worker.pid}
        upload_and_wait(base, token, warm, r, roots)  # imports, pools, models: untimed
        small_run = upload_and_wait(base, token, small, r, roots)
        big_run = upload_and_wait(base, token, big, r, roots)
        left = [p for p in spool.rglob("*") if p.is_file()]
    walls = ", ".join(
        f"{stage} {_wall(big_run.timings.get(stage, {})):.1f}s"
        for stage in ("validate", "extract", "analyze", "categorize")
    )
    print(
        f"\n{backend} storage: {label} PDF uploaded in {big_run.upload_s:.1f}s "
        f"({big.stat().st_size / MIB / big_run.upload_s:.0f} MiB/s), {big_run.status} after "
        f"{big_run.review_s:.1f}s; stage wall times (claim, copy, compute, commit) {walls}; "
        f"worker temp files left: {len(left)}"
    )
    if big_run.error or small_run.error:
        print(f"  errors: big {big_run.error!r}, small {small_run.error!r}")
    columns = "".join(f"{m + ' +100 KB':>14}{f'{m} +{label}':>15}" for m in METRICS)
    print(f"  {'process':<18}{columns}   (peak - idle, MiB)")
    worst: dict[str, float] = {}
    for name in sorted(big_run.growth):
        b, s = big_run.growth[name], small_run.growth.get(name, {})
        cells = "".join(f"{fmt(s.get(m, 0) / MIB):>14}{fmt(b[m] / MIB):>15}" for m in METRICS)
        print(f"  {name:<18}{cells}")
        role = name.split()[0]
        worst[role] = max(worst.get(role, 0.0), b["rss"] / MIB)
        worst[f"{role} small"] = max(worst.get(f"{role} small", 0.0), s.get("rss", 0) / MIB)
    ok = big_run.status == "review" and not left
    return [
        Result(
            f"{role.upper()} RSS growth {label} ({backend[:2]})",
            "MiB",
            worst.get(role),
            worst.get(f"{role} small"),
            "< 64 MiB",
            higher_is_better=False,
            met=ok and worst.get(role, math.inf) * MIB < TARGET_GROWTH,
            note=f"baseline = same process, 100 KB file; {big_run.status}",
        )
        for role in ("api", "worker")
    ]


def run(mib: int = 200, backends: tuple[str, ...] = ("database", "filesystem")) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="docflow-bigfile-") as tmp:
        big, small, warm = Path(tmp) / "big.pdf", Path(tmp) / "small.pdf", Path(tmp) / "warm.pdf"
        started = time.perf_counter()
        size = write_pdf(big, mib * MIB)
        write_pdf(small, 100 * 1024)
        write_pdf(warm, 20 * 1024)
        print(
            f"Big file: {size / MIB:.0f} MiB PDF, {PAGES} text pages each drawing a "
            f"{size / PAGES / MIB:.0f} MiB uncompressed image, written in "
            f"{time.perf_counter() - started:.1f}s; baseline {small.stat().st_size / 1024:.0f} KB"
        )
        results: list[Result] = []
        for backend in backends:
            results.extend(one_backend(backend, big, small, warm))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=200)
    parser.add_argument(
        "--backends",
        nargs="+",
        default=["database", "filesystem"],
        choices=["database", "filesystem"],
    )
    args = parser.parse_args()
    print()
    for row in run(args.mib, tuple(args.backends)):
        times = f"{row.ours / row.baseline:.0f}x" if row.ours and row.baseline else "-"
        print(
            f"{row.name:<34}{fmt(row.ours):>7} {row.unit}, 100 KB file {fmt(row.baseline):>5} "
            f"{row.unit} ({times:>4}); target {row.target}: {'met' if row.met else 'NOT MET'}"
        )


if __name__ == "__main__":
    main()
