"""Celery settings shared by the worker and by producers (DESIGN.md §2.6)."""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu.transport import redis as kombu_redis

from docflow.config import Settings


class _Channel(kombu_redis.Channel):
    """kombu's Redis channel, with one client for its synchronous commands instead of a new
    one per command. Every task event a worker publishes went through a freshly built client
    (a quarter of the worker's main process CPU); the client is stateless over the channel's
    connection pool, so one serves them all, until the channel replaces its pool."""

    _sync_client: tuple[Any, Any] | None = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:
            return super()._create_client(asynchronous=True)  # type: ignore[no-untyped-call]
        pool = self.pool
        cached = self._sync_client
        if cached is None or cached[0] is not pool:
            cached = self._sync_client = (pool, super()._create_client())  # type: ignore[no-untyped-call]
        return cached[1]


class RedisTransport(kombu_redis.Transport):
    Channel = _Channel


def configure(app: Celery, settings: Settings) -> None:
    transport = {
        "visibility_timeout": settings.visibility_timeout,
        "socket_connect_timeout": 3,
        "socket_timeout": 10,
        "retry_on_timeout": True,
        "global_keyprefix": f"{settings.redis_namespace}:",
        # How often unacked messages older than the visibility timeout are swept back into the
        # queue (kombu's default is every ~100 s).
        "unacked_restore_interval": max(1, min(10, settings.visibility_timeout // 4)),
        "unacked_restore_throttle": 1,
    }
    broker_url = settings.broker_url or settings.redis_url
    if broker_url.startswith("redis://"):
        app.conf.broker_transport = f"{__name__}:RedisTransport"
    app.conf.update(
        broker_url=broker_url,
        result_backend=None,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue="documents",
        task_soft_time_limit=settings.stage_soft_time_limit,
        task_time_limit=settings.stage_time_limit,
        # Set in every place Celery reads it, so redelivery never races a running task.
        broker_transport_options=transport,
        result_backend_transport_options=transport,
        visibility_timeout=settings.visibility_timeout,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=3,
        # A send that cannot reach the broker fails fast: the reaper re-sends from PostgreSQL.
        task_publish_retry=True,
        task_publish_retry_policy={"max_retries": 1, "interval_start": 0.1, "interval_step": 0.2},
        worker_hijack_root_logger=False,
        # Task events feed Flower; the extra "sent" event per task would cost every upload a
        # second publish, so producers don't send it.
        worker_send_task_events=True,
        task_send_sent_event=False,
        beat_schedule={
            "reap": {
                "task": "documents.reap",
                "schedule": settings.reaper_interval_seconds,
                "options": {"expires": settings.reaper_interval_seconds * 2},
            },
            # Retrains only when enough new reviewed documents arrived since the last model.
            "train-categories": {
                "task": "categories.train",
                "schedule": 3600.0,
                "options": {"queue": "maintenance", "expires": 1800},
            },
        },
    )
