"""The Celery app for workers and beat."""

from __future__ import annotations

import logging
import os
import resource
import socket
import threading
from typing import Any

import redis
from billiard.process import current_process
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


# The pool's size, as the worker's main process knows it before the children fork.
_pool_size = 0


@worker_init.connect
def _pool(sender: Any = None, **_: Any) -> None:
    global _pool_size
    _pool_size = int(getattr(sender, "concurrency", 0) or 0)


@worker_process_init.connect
def _pin_cpu(**_: Any) -> None:
    """With DOCFLOW_WORKER_PIN_CPUS, pool child i runs on the i-th CPU it may use, when each
    child can have one: it keeps its caches instead of following the scheduler from core to
    core between two round trips to the database (see docs/benchmarks.md)."""
    if not get_settings().worker_pin_cpus:
        return
    index = getattr(current_process(), "index", -1)  # a prefork pool child's, 0-based
    cpu = cpu_for(index, _pool_size, sorted(os.sched_getaffinity(0)))
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


def cpu_for(index: int, pool_size: int, allowed: list[int]) -> int | None:
    """The CPU for pool child `index`; None (leave it to the scheduler) when the pool has more
    children than CPUs, or is of one child only."""
    if not 1 < pool_size <= len(allowed) or not 0 <= index < pool_size:
        return None
    return allowed[index]


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
