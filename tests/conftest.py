"""The suite's real infrastructure: PostgreSQL, Redis, an API process and a Celery worker.

DATABASE_URL / REDIS_URL name servers to use; without them embedded ones are started. Every run
makes its own database and its own Redis namespace, so runs never see each other's data.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from docflow.embedded import EmbeddedPostgres, EmbeddedRedis, free_port

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "correct-horse-battery"


@dataclass
class Infra:
    database_url: str  # the run's own database
    redis_url: str
    namespace: str
    env: dict[str, str]
    tmp: Path
    _admin_url: str = ""

    def drop(self) -> None:
        name = make_url(self.database_url).database
        engine = create_engine(
            make_url(self._admin_url).set(database="postgres"), isolation_level="AUTOCOMMIT"
        )
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self, timeout: float = 15) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Stack:
    infra: Infra
    base_url: str
    api: Proc
    worker: Proc
    users: dict[str, str] = field(default_factory=dict)  # role name -> email

    @property
    def env(self) -> dict[str, str]:
        return self.infra.env


def spawn(name: str, argv: list[str], env: dict[str, str], tmp: Path) -> Proc:
    log = tmp / f"{name}-{uuid.uuid4().hex[:6]}.log"
    handle = log.open("wb")
    process = subprocess.Popen(
        argv, env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True
    )
    return Proc(name, process, log)


def start_api(
    infra: Infra, port: int | None = None, extra_env: dict[str, str] | None = None
) -> tuple[Proc, str]:
    port = port or free_port()
    proc = spawn(
        "api",
        [sys.executable, "-m", "docflow.cli", "api", "--port", str(port)],
        {**infra.env, **(extra_env or {})},
        infra.tmp,
    )
    return proc, f"http://127.0.0.1:{port}"


def start_worker(
    infra: Infra, name: str = "w1", concurrency: int = 2, extra_env: dict[str, str] | None = None
) -> Proc:
    return spawn(
        f"worker-{name}",
        [sys.executable, "-m", "docflow.cli", "worker", "-c", str(concurrency), "-n", f"{name}@%h"],
        {**infra.env, **(extra_env or {})},
        infra.tmp,
    )


def wait_ready(base_url: str, procs: list[Proc], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.process.poll() is not None:
                raise RuntimeError(f"{proc.name} exited early:\n{proc.tail()}")
        try:
            response = httpx.get(f"{base_url}/api/v1/health/ready", timeout=3)
            if response.status_code == 200:
                return
            last = response.text
        except httpx.HTTPError as exc:
            last = str(exc)
        time.sleep(0.3)
    raise RuntimeError(f"stack not ready: {last}")


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    tmp = tmp_path_factory.mktemp("infra")
    servers: list[EmbeddedPostgres | EmbeddedRedis] = []
    base_db, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if not base_db:
        pg = EmbeddedPostgres(tmp / "pg")
        base_db = pg.start()
        servers.append(pg)
    if not redis_url:
        rd = EmbeddedRedis(tmp / "redis")
        redis_url = rd.start()
        servers.append(rd)
    run = uuid.uuid4().hex[:8]
    database_url = (
        make_url(base_db).set(database=f"docflow_test_{run}").render_as_string(hide_password=False)
    )
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DOCFLOW_REDIS_NAMESPACE": f"dftest-{run}",
        "DOCFLOW_SECRET_KEY": f"test-secret-{uuid.uuid4().hex}",
        "DOCFLOW_LEASE_SECONDS": "6",
        "DOCFLOW_REAPER_INTERVAL_SECONDS": "1",
        "DOCFLOW_UPLOADED_GRACE_SECONDS": "3",
        "DOCFLOW_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    ui = ROOT / "frontend" / "out"
    if ui.is_dir():
        env["DOCFLOW_UI_DIR"] = str(ui)
    os.environ.update(
        {
            k: env[k]
            for k in ("DATABASE_URL", "REDIS_URL", "DOCFLOW_REDIS_NAMESPACE", "DOCFLOW_SECRET_KEY")
        }
    )
    from docflow.config import get_settings
    from docflow.migrate import upgrade

    get_settings.cache_clear()
    upgrade(
        make_url(database_url)
        .set(drivername="postgresql+psycopg")
        .render_as_string(hide_password=False)
    )
    infra = Infra(database_url, redis_url, env["DOCFLOW_REDIS_NAMESPACE"], env, tmp, base_db)
    yield infra
    try:
        infra.drop()
    finally:
        for server in servers:
            server.stop()


def create_user(env: dict[str, str], email: str, role: str) -> None:
    """An account with the test password, made the way an operator would (the CLI)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "docflow.cli",
            "users",
            "create",
            "--email",
            email,
            "--password",
            PASSWORD,
            "--role",
            role,
        ],
        env=env,
        check=True,
        capture_output=True,
        cwd=ROOT,
        timeout=60,
    )


@pytest.fixture(scope="session")
def stack(infra: Infra) -> Iterator[Stack]:
    api, base_url = start_api(infra)
    worker = start_worker(infra)
    try:
        wait_ready(base_url, [api, worker])
        users = {
            "uploader": "uploader@example.com",
            "other": "other@example.com",
            "reviewer": "reviewer@example.com",
            "admin": "admin@example.com",
        }
        for name, email in users.items():
            create_user(infra.env, email, "uploader" if name == "other" else name)
        yield Stack(infra, base_url, api, worker, users)
    finally:
        api.stop()
        worker.stop()
