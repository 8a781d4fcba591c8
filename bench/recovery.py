"""Recovery bound: how long until a lost worker's document moves again, with default settings.

Kills the worker child that holds an extract lease (SIGKILL, as the OOM killer would) and times
the gap until another worker resumes the stage. Prints each measurement beside the bound the
settings promise: lease_seconds + reaper_interval_seconds.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.files import SAMPLE_TEXTS, make_pdf  # noqa: E402

from docflow.config import Settings  # noqa: E402
from docflow.embedded import EmbeddedPostgres, EmbeddedRedis, free_port  # noqa: E402
from docflow.migrate import upgrade  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kills", type=int, default=3)
    args = parser.parse_args()
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    bound = defaults.lease_seconds + defaults.reaper_interval_seconds
    tmp = Path(tempfile.mkdtemp(prefix="docflow-recovery-"))
    pg, rd = EmbeddedPostgres(tmp / "pg"), EmbeddedRedis(tmp / "redis")
    dsn = make_url(pg.start()).set(database="docflow").render_as_string(hide_password=False)
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "REDIS_URL": rd.start(),
        "DOCFLOW_REDIS_NAMESPACE": "recovery",
        "DOCFLOW_VAR_DIR": str(tmp),
    }
    for key in ("DOCFLOW_LEASE_SECONDS", "DOCFLOW_REAPER_INTERVAL_SECONDS"):
        env.pop(key, None)
    upgrade(
        make_url(dsn).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    )
    port = free_port()
    cli = [sys.executable, "-m", "docflow.cli"]
    log = (tmp / "procs.log").open("wb")
    subprocess.run(
        [
            *cli,
            "users",
            "create",
            "--email",
            "b@example.com",
            "--password",
            "benchmark-pass",
            "--role",
            "admin",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    procs = [
        subprocess.Popen([*cli, *a], env=env, stdout=log, stderr=log, start_new_session=True)
        for a in (["api", "--port", str(port)], ["worker", "-c", "2"], ["beat"])
    ]
    base = f"http://127.0.0.1:{port}"
    gaps: list[float] = []
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            _wait(lambda: client.get("/api/v1/health/ready").status_code == 200, 120)
            token = client.post(
                "/api/v1/auth/login", json={"email": "b@example.com", "password": "benchmark-pass"}
            ).json()
            auth = {"Authorization": f"Bearer {token['access_token']}"}
            client.cookies.clear()
            pdf = make_pdf([f"Page {i}. " + SAMPLE_TEXTS["report"][:400] for i in range(1900)])
            for n in range(args.kills):
                doc = client.post(
                    "/api/v1/documents", headers=auth, files={"file": (f"r{n}.pdf", pdf)}
                ).json()["id"]
                owner = _wait(lambda d=doc: _lease(dsn, d), 120)
                os.kill(int(owner.split(":")[1]), signal.SIGKILL)
                killed = time.monotonic()
                _wait(lambda d=doc, o=owner: (_lease(dsn, d) or o) != o, bound * 3)
                gaps.append(time.monotonic() - killed)
                print(
                    f"kill {n + 1}: document moved again after {gaps[-1]:.1f} s "
                    f"(bound {bound:.0f} s)",
                    flush=True,
                )
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        rd.stop()
        pg.stop()
    print(
        f"recovery after a lost worker: median {statistics.median(gaps):.1f} s, "
        f"max {max(gaps):.1f} s; bound lease {defaults.lease_seconds} s + reaper "
        f"{defaults.reaper_interval_seconds:.0f} s = {bound:.0f} s"
    )


def _lease(dsn: str, doc: str) -> str | None:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "select lease_owner from documents where id = %s and stage = 'extract'",
            (uuid.UUID(doc),),
        ).fetchone()
    return str(row[0]) if row and row[0] else None


def _wait(check, timeout: float):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError("gave up waiting")


if __name__ == "__main__":
    main()
