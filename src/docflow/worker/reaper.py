"""Find documents whose worker was lost or whose task never arrived, and move them again.

Safe to run concurrently: rows are taken with FOR UPDATE SKIP LOCKED and changed in the same
transaction, so each orphan is re-enqueued by exactly one reaper.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

import redis

from docflow import jobs
from docflow.config import get_settings
from docflow.documents import stage_repository as repo
from docflow.documents.lifecycle import STAGE_VERBS
from docflow.events.log import record
from docflow.models import Stage
from docflow.worker.runner import _fail_locked
from docflow.worker.uow import unit_of_work

log = logging.getLogger(__name__)
ACTOR = "system:reaper"


@dataclass
class ReapReport:
    resumed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)


@lru_cache
def _broker() -> redis.Redis:
    settings = get_settings()
    return redis.Redis.from_url(
        settings.broker_url or settings.redis_url, socket_connect_timeout=2, socket_timeout=2
    )


def broker_queue_empty() -> bool | None:
    """None when the broker cannot be asked (then sending would fail anyway)."""
    try:
        client = _broker()
        keys = []
        for queue in jobs.stage_queues():
            base = f"{get_settings().redis_namespace}:{queue}"
            keys += [base, *(f"{base}\x06\x16{p}" for p in (3, 6, 9))]
        return sum(int(client.llen(k)) for k in keys) == 0
    except redis.RedisError:
        return None


def reap() -> ReapReport:
    settings = get_settings()
    report = ReapReport()
    # Asked before this pass sends anything: the tasks it is about to send for lost workers
    # must not make the waiting documents' lost tasks look merely queued.
    drained = broker_queue_empty()
    with unit_of_work() as session:
        for doc in repo.expired_leases(session):
            stage = Stage(doc.stage) if doc.stage else Stage.VALIDATE
            what = STAGE_VERBS[stage].lower()
            if doc.attempts >= settings.max_attempts:
                _fail_locked(
                    session,
                    doc,
                    (
                        f"The worker was lost {doc.attempts} times while {what}; giving up. "
                        "This file may be crashing the worker."
                    ),
                )
                report.failed.append(str(doc.id))
                continue
            attempt = doc.attempts + 1
            doc.lease_owner, doc.lease_until = None, None
            doc.enqueued_at = datetime.now(UTC)
            doc.message = (
                f"Worker lost during {stage.value} — resuming, "
                f"attempt {attempt} of {settings.max_attempts}"
            )
            record(
                session,
                doc,
                "stage.retry",
                actor=ACTOR,
                data={
                    "attempt": attempt,
                    "max_attempts": settings.max_attempts,
                    "reason": "lease_expired",
                },
            )
            jobs.enqueue_stage(session, doc, stage)
            report.resumed.append(str(doc.id))
    # Only when the queue has drained can a waiting document's task be known lost; before that
    # its message may simply be behind others.
    if drained:
        with unit_of_work() as session:
            for doc in repo.waiting_too_long(session, settings.uploaded_grace_seconds):
                stage = Stage(doc.stage) if doc.stage else Stage.VALIDATE
                doc.enqueued_at = datetime.now(UTC)
                record(
                    session,
                    doc,
                    "stage.requeued",
                    actor=ACTOR,
                    message=f"Re-queued {stage.value}: its task was lost on the way to a worker",
                    data={"reason": "task_lost"},
                )
                jobs.enqueue_stage(session, doc, stage)
                report.requeued.append(str(doc.id))
    if report.resumed or report.failed or report.requeued:
        log.info(
            "reaper: resumed %d, failed %d, requeued %d",
            len(report.resumed),
            len(report.failed),
            len(report.requeued),
        )
    return report
