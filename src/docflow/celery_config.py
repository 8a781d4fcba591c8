"""Celery settings shared by the worker and by producers (DESIGN.md §2.6)."""

from __future__ import annotations

from celery import Celery

from docflow.config import Settings


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
    app.conf.update(
        broker_url=settings.broker_url or settings.redis_url,
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
