"""What every benchmark shares: private servers, the processes under test, results, statistics.

Each benchmark gets its own embedded PostgreSQL and Redis in a temporary directory, so it
disturbs nobody else on a shared machine and nobody else's data slows it down. Everything
started here is stopped here, also on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
PASSWORD = "correct-horse-battery"
ADMIN = "bench-admin@example.com"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# ---- results --------------------------------------------------------------------------------


@dataclass
class Result:
    """One row of the summary table: our figure beside its baseline's, from the same run."""

    name: str
    unit: str
    ours: float | None
    baseline: float | None
    target: str = ""
    # ratio = ours / baseline when higher is better, baseline / ours when lower is better
    higher_is_better: bool = True
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if not self.ours or not self.baseline:
            return None
        return self.ours / self.baseline if self.higher_is_better else self.baseline / self.ours


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: Sequence[float]) -> float:
    return pct(values, 50)


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if abs(value) >= 10_000:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def raise_nofile(wanted: int) -> int:
    """Raise the open-files limit (inherited by children) up to the hard limit; returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = hard if hard != resource.RLIM_INFINITY else wanted
    new = min(max(soft, wanted), ceiling)
    if new != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return new


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and its children (uvicorn runs in one process here)."""
    proc = psutil.Process(pid)
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += child.memory_info().rss
    return total


def cpu_seconds(pid: int) -> float:
    proc = psutil.Process(pid)
    procs = [proc, *proc.children(recursive=True)]
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
    return total


# ---- processes ------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout: float = 15) -> None:
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Rig:
    tmp: Path
    env: dict[str, str]
    database_url: str
    redis_url: str
    procs: list[Proc] = field(default_factory=list)

    @property
    def psycopg_dsn(self) -> str:
        from sqlalchemy.engine import make_url

        return (
            make_url(self.database_url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        log = self.tmp / f"{name}-{uuid.uuid4().hex[:6]}.log"
        handle = log.open("wb")
        process = subprocess.Popen(
            argv,
            env={**self.env, **(env or {})},
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )
        proc = Proc(name, process, log)
        self.procs.append(proc)
        return proc

    def api(self, env: dict[str, str] | None = None) -> tuple[Proc, str]:
        from docflow.embedded import free_port

        port = free_port()
        proc = self.spawn(
            "api", [sys.executable, "-m", "docflow.cli", "api", "--port", str(port)], env
        )
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/api/v1/health", [proc])
        return proc, base

    def bare(self, env: dict[str, str] | None = None) -> tuple[Proc, int]:
        """The bare Starlette baseline (bench/bare_app.py), started and answering."""
        from docflow.embedded import free_port

        port = free_port()
        argv = [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(BENCH),
            "bare_app:app",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        proc = self.spawn("bare", argv, env)
        wait_http(f"http://127.0.0.1:{port}/health", [proc])
        return proc, port

    def worker(self, concurrency: int = 2, env: dict[str, str] | None = None) -> Proc:
        """The rig's one worker, its pool children pinned to CPUs of their own as `make run`
        runs them (DOCFLOW_WORKER_PIN_CPUS=false in the environment, or in `env`, to compare)."""
        name = f"bench{uuid.uuid4().hex[:4]}"
        pin = self.env.get("DOCFLOW_WORKER_PIN_CPUS", "true")
        env = {"DOCFLOW_WORKER_PIN_CPUS": pin, **(env or {})}
        return self.spawn(
            f"worker-{name}",
            [
                sys.executable,
                "-m",
                "docflow.cli",
                "worker",
                "-c",
                str(concurrency),
                "-n",
                f"{name}@%h",
            ],
            env,
        )

    def python(self, name: str, script: str, *args: str) -> Proc:
        return self.spawn(name, [sys.executable, str(BENCH / script), *args])

    def sql(self, query: str, *params: object) -> list[tuple[object, ...]]:
        import psycopg

        with psycopg.connect(self.psycopg_dsn, autocommit=True) as conn:
            cur = conn.execute(query, params)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    def create_user(self, email: str, role: str) -> None:
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
            env=self.env,
            check=True,
            capture_output=True,
            cwd=ROOT,
        )

    def token(self, base_url: str, email: str = ADMIN) -> str:
        response = httpx.post(
            f"{base_url}/api/v1/auth/login", json={"email": email, "password": PASSWORD}, timeout=30
        )
        response.raise_for_status()
        return str(response.json()["access_token"])


def wait_http(url: str, procs: list[Proc], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.process.poll() is not None:
                raise RuntimeError(f"{proc.name} exited early:\n{proc.tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=3).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready after {timeout:.0f}s")


@contextlib.contextmanager
def rig(label: str, extra_env: dict[str, str] | None = None) -> Iterator[Rig]:
    """Private PostgreSQL + Redis, migrated, with one admin account; all stopped on exit."""
    from sqlalchemy.engine import make_url

    from docflow.embedded import EmbeddedPostgres, EmbeddedRedis

    tmp = Path(tempfile.mkdtemp(prefix=f"docflow-bench-{label}-"))
    pg, redis = EmbeddedPostgres(tmp / "pg"), EmbeddedRedis(tmp / "redis")
    procs: list[Proc] = []
    try:
        base = pg.start()
        redis_url = redis.start()
        dsn = make_url(base).set(database="docflow").render_as_string(hide_password=False)
        env = {
            **os.environ,
            "DATABASE_URL": dsn,
            "REDIS_URL": redis_url,
            "DOCFLOW_REDIS_NAMESPACE": f"bench-{label}",
            "DOCFLOW_SECRET_KEY": f"bench-secret-{uuid.uuid4().hex}",
            # The benchmarks measure the application, not its abuse limits (which would cap
            # one user at 300 uploads a minute).
            "DOCFLOW_RATE_LIMITS_ENABLED": "false",
            "DOCFLOW_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        env.pop("DOCFLOW_UI_DIR", None)
        # The migration and CLI read these from the environment.
        for key in ("DATABASE_URL", "REDIS_URL", "DOCFLOW_REDIS_NAMESPACE", "DOCFLOW_SECRET_KEY"):
            os.environ[key] = env[key]
        from docflow.config import get_settings
        from docflow.migrate import upgrade

        get_settings.cache_clear()
        upgrade(
            make_url(dsn).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        )
        the_rig = Rig(tmp, env, dsn, redis_url, procs)
        the_rig.create_user(ADMIN, "admin")
        yield the_rig
    finally:
        for proc in reversed(procs):
            proc.stop()
        redis.stop()
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def redis_clients(redis_url: str) -> tuple[int, int, int]:
    """(connected clients, clients in pub/sub mode, PSUBSCRIBE patterns) from CLIENT LIST."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        rows = client.client_list()
        subscribed = sum(1 for r in rows if int(r.get("sub", 0)) or int(r.get("psub", 0)))
        patterns = sum(int(r.get("psub", 0)) for r in rows) + int(client.pubsub_numpat())
        # Do not count the connection asking.
        return len(rows) - 1, subscribed, patterns
    finally:
        client.close()


def seed_documents(r: Rig, count: int, status: str = "finalised") -> str:
    """`count` documents for the admin account in one INSERT … SELECT generate_series (not
    through the pipeline); returns the owner's id."""
    owner = str(r.sql("select id from users where email = %s", ADMIN)[0][0])
    r.sql(
        """
        insert into documents (id, owner_id, filename, title, size_bytes, sha256, status, progress,
            attempts, keywords, fields, metadata, timings, category, category_confidence, language,
            page_count, word_count, reading_time_minutes, summary, content_type, kind,
            reviewed_by, reviewed_at, created_at, updated_at)
        select gen_random_uuid(), %s, 'report-' || g || '.pdf', 'Quarterly report ' || g,
            20000 + g %% 5000, md5(g::text) || md5((g + 1)::text), %s, 100, 0,
            '["revenue", "forecast", "quarter"]'::jsonb, '{}'::jsonb, '{}'::jsonb, '{}'::jsonb,
            'report', 0.8731, 'en', 1 + g %% 3, 300 + g %% 700, 1.5,
            'Summary of document ' || g || ': revenue grew, costs fell, outlook "stable".',
            'application/pdf', 'pdf', %s, now(), now() - make_interval(secs => g), now()
        from generate_series(1, %s) as g
        """,
        owner,
        status,
        owner,
        count,
    )
    r.sql("analyze documents")
    return owner
