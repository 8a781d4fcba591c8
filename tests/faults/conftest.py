"""Private servers and processes for tests that kill and restart things.

Each test gets its own embedded PostgreSQL and Redis, so stopping them disturbs nobody else.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from docflow.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from tests.conftest import Proc, create_user, spawn

PASSWORD = "correct-horse-battery"


@dataclass
class Rig:
    tmp: Path
    pg: EmbeddedPostgres
    redis: EmbeddedRedis
    env: dict[str, str]
    procs: list[Proc] = field(default_factory=list)

    @property
    def dsn(self) -> str:
        return self.env["DATABASE_URL"]

    def run(self, name: str, *args: str, env: dict[str, str] | None = None) -> Proc:
        proc = spawn(
            name,
            [sys.executable, "-m", "docflow.cli", *args],
            {**self.env, **(env or {})},
            self.tmp,
        )
        self.procs.append(proc)
        return proc

    def api(self, env: dict[str, str] | None = None) -> tuple[Proc, str]:
        port = free_port()
        return self.run("api", "api", "--port", str(port), env=env), f"http://127.0.0.1:{port}"

    def worker(self, name: str, concurrency: int = 2, env: dict[str, str] | None = None) -> Proc:
        return self.run(
            f"worker-{name}", "worker", "-c", str(concurrency), "-n", f"{name}@%h", env=env
        )

    def beat(self) -> Proc:
        return self.run(
            "beat", "beat", env={"DOCFLOW_VAR_DIR": str(self.tmp / f"beat-{uuid.uuid4().hex[:4]}")}
        )

    def sql(self, query: str, *params: object) -> list[tuple[object, ...]]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def restart_redis(self, down_for: float = 3.0) -> None:
        self.redis.stop()
        time.sleep(down_for)
        self.redis.start()

    def stop_postgres(self) -> None:
        self.pg.stop()

    def start_postgres(self) -> None:
        self.pg.handle.ensure_postgres_running()


def kill_group(proc: Proc) -> None:
    """SIGKILL a process and all its children, as an OOM killer or a power cut would."""
    try:
        os.killpg(proc.process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.process.wait()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    pg = EmbeddedPostgres(tmp_path / "pg")
    base = pg.start()
    redis = EmbeddedRedis(tmp_path / "redis")
    redis_url = redis.start()
    from sqlalchemy.engine import make_url

    from docflow.migrate import upgrade

    dsn = make_url(base).set(database="docflow").render_as_string(hide_password=False)
    upgrade(
        make_url(dsn).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    )
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "REDIS_URL": redis_url,
        "DOCFLOW_REDIS_NAMESPACE": "faults",
        "DOCFLOW_SECRET_KEY": f"fault-secret-{uuid.uuid4().hex}",
        "DOCFLOW_LEASE_SECONDS": "4",
        "DOCFLOW_REAPER_INTERVAL_SECONDS": "1",
        "DOCFLOW_UPLOADED_GRACE_SECONDS": "2",
        "DOCFLOW_MAX_ATTEMPTS": "3",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DOCFLOW_UI_DIR", None)
    create_user(env, "u@example.com", "admin")
    rig = Rig(tmp_path, pg, redis, env)
    try:
        yield rig
    finally:
        for proc in rig.procs:
            if proc.process.poll() is None:
                try:
                    os.killpg(proc.process.pid, signal.SIGTERM)
                    proc.process.wait(10)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    kill_group(proc)
        for stop in (redis.stop, pg.stop):
            try:
                stop()
            except Exception as exc:  # keep tearing down; a leaked server would outlive the run
                print(f"teardown: {stop.__qualname__} failed: {exc!r}")  # noqa: T201
