"""One Settings object, read from the environment (DOCFLOW_*, DATABASE_URL, REDIS_URL)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DOCFLOW_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/docflow",
        validation_alias=AliasChoices("DATABASE_URL", "DOCFLOW_DATABASE_URL"),
    )
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        validation_alias=AliasChoices("REDIS_URL", "DOCFLOW_REDIS_URL"),
    )
    # The Celery broker; defaults to REDIS_URL. Separate so the broker can live elsewhere.
    broker_url: str | None = None
    secret_key: str = "dev-insecure-change-me-dev-insecure-change-me"
    # Older signing keys still accepted for tokens they signed (key rotation without logouts).
    previous_secret_keys: list[str] = []
    cookie_secure: bool = False
    jwt_issuer: str = "docflow"
    jwt_audience: str = "docflow-api"
    access_token_minutes: int = 15
    refresh_token_days: int = 14

    # Connections each API process keeps open. A request holds one from its first query to its
    # commit, so this bounds concurrent requests in flight; past it, requests wait (never open
    # throwaway connections: a cold connection costs a handshake and re-prepares every query).
    db_pool_size: int = 32
    db_pool_overflow: int = 8

    storage_backend: Literal["database", "filesystem"] = "database"
    storage_path: Path = Path("var/files")
    max_upload_bytes: int = 50 * 1024 * 1024
    storage_chunk_bytes: int = 512 * 1024

    # Reliability knobs: a running stage holds its lease this long and extends it while it works.
    lease_seconds: int = 15
    max_attempts: int = 3
    reaper_interval_seconds: float = 2.0
    uploaded_grace_seconds: int = 15
    stage_soft_time_limit: int = 240
    stage_time_limit: int = 300
    # Must exceed the hard time limit so the broker never redelivers a task that is still running.
    visibility_timeout: int = 3600
    # Address-space cap per worker child, so a hostile file fails its own document with a
    # MemoryError instead of dragging the machine (and every other document) down. 0 = no cap.
    stage_memory_limit_mb: int = 2048
    # Pin each pool child of a worker to a CPU of its own (when there are enough): a child
    # that migrates between cores loses its caches, ~6% of its CPU per document. For a host
    # that runs one worker (`make run` sets it); several workers pinned alike would share CPUs.
    worker_pin_cpus: bool = False

    # Origins allowed to call the API from a browser; empty = CORS closed (same origin only).
    cors_origins: list[str] = []

    # Rate limits ("N/period", parsed by `limits`). Per IP and per user, each budget apart.
    # Defaults are generous: the edge (nginx) limits are the first line; these stop abuse that
    # gets past it. Login's per-account budget counts failed attempts only (brute force).
    rate_limits_enabled: bool = True
    rate_limit_login_ip: str = "120/minute"
    rate_limit_login_account: str = "10/15minutes"
    rate_limit_upload_ip: str = "600/minute"
    rate_limit_upload_user: str = "300/minute"
    rate_limit_read_ip: str = "12000/minute"
    rate_limit_read_user: str = "6000/minute"
    rate_limit_write_ip: str = "1200/minute"
    rate_limit_write_user: str = "600/minute"
    # Personal API tokens for scripts.
    api_token_max_per_user: int = 20

    # Queues by weight: OCR and large files go to their own queue so small documents are not
    # stuck behind them; workers subscribe to the queues they are sized for.
    heavy_queue: str = "documents-heavy"
    heavy_bytes: int = 5 * 1024 * 1024
    # Above this many waiting tasks an upload is told how far back in the queue it is.
    queue_backlog_bound: int = 50

    sse_keepalive_seconds: float = 15.0
    sse_retry_ms: int = 3000
    sse_client_queue: int = 256
    # Every Redis key, channel and queue Docflow uses starts with this, so several deployments
    # (or test runs) can share one Redis.
    redis_namespace: str = "docflow"

    # Proxies whose X-Forwarded-For is believed (nginx); comma-separated addresses or "*".
    forwarded_allow_ips: str = "127.0.0.1"
    ui_dir: Path | None = None
    log_level: str = "INFO"
    log_json: bool = False

    @property
    def events_channel(self) -> str:
        return f"{self.redis_namespace}:events"

    @property
    def workers_key_prefix(self) -> str:
        return f"{self.redis_namespace}:workers:"

    @property
    def async_database_url(self) -> str:
        return _with_driver(self.database_url, "postgresql+asyncpg")

    @property
    def sync_database_url(self) -> str:
        return _with_driver(self.database_url, "postgresql+psycopg")


def _with_driver(url: str, driver: str) -> str:
    scheme, _, rest = url.partition("://")
    if scheme in {"postgres", "postgresql"} or scheme.startswith("postgresql+"):
        return f"{driver}://{rest}"
    return url


@lru_cache
def get_settings() -> Settings:
    return Settings()
