"""The Celery app for workers and beat."""

from __future__ import annotations

import logging
import resource
import socket
import threading
from typing import Any

import redis
from celery import Celery
from celery.signals import (
    setup_logging,
    worker_init,
    worker_process_init,
    worker_ready,
    worker_shutdown,
)

from docflow import logging as docflow_logging
from docflow.celery_config import configure
from docflow.config import get_settings
from docflow.gctune import tune_gc
from docflow.metrics import install_worker_signals

log = logging.getLogger(__name__)

celery_app = Celery("docflow")
configure(celery_app, get_settings())
celery_app.conf.task_routes = {
    "documents.reap": {"queue": "maintenance"},
    "categories.train": {"queue": "maintenance"},
}
celery_app.conf.imports = ["docflow.worker.tasks"]
# Metrics and the request/document/task ids in every log line a task writes.
install_worker_signals()

_stop = threading.Event()


@setup_logging.connect
def _logging(**_: Any) -> None:
    settings = get_settings()
    docflow_logging.setup(settings.log_level, settings.log_json)


def _presence(hostname: str) -> None:
    """Readiness looks for these keys: a worker that stops renewing drops out in 15 s."""
    client = redis.Redis.from_url(get_settings().redis_url, socket_timeout=3)
    while not _stop.is_set():
        try:
            client.set(f"{get_settings().workers_key_prefix}{hostname}", "1", ex=15)
        except redis.RedisError:
            pass
        _stop.wait(5)
    try:
        client.delete(f"{get_settings().workers_key_prefix}{hostname}")
    except redis.RedisError:
        pass


@worker_process_init.connect
def _limit_memory(**_: Any) -> None:
    """Cap each pool child's address space: a file that would need more fails its own document
    with a MemoryError (runner.py) instead of exhausting the machine for everyone."""
    limit_mb = get_settings().stage_memory_limit_mb
    if limit_mb <= 0:
        return
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    soft = limit_mb * 1024 * 1024
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@worker_process_init.connect
def _tune_gc(**_: Any) -> None:
    """A pool process starts with what its parent loaded (Celery, the models, the stop-word
    lists): frozen, the collector no longer walks it, and young collections come less often."""
    tune_gc()


@worker_init.connect
def _warm_up(**_: Any) -> None:
    """Load the language model and stop-word lists once, in the main process before the pool
    forks: every child inherits them, and nobody's first document waits seconds for them."""
    from docflow.pipeline.analyze import warm_up

    try:
        warm_up()
    except Exception:  # a cold start is slower, not broken
        log.warning("analysis warm-up failed; the first document loads the models", exc_info=True)


@worker_ready.connect
def _ready(sender: Any = None, **_: Any) -> None:
    hostname = getattr(sender, "hostname", None) or socket.gethostname()
    threading.Thread(target=_presence, args=(hostname,), daemon=True, name="presence").start()


@worker_shutdown.connect
def _shutdown(**_: Any) -> None:
    _stop.set()
