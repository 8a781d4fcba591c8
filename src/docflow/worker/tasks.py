"""Thin Celery tasks: ids in, the runner does the rest."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from billiard.exceptions import TimeLimitExceeded
from celery import Task
from celery.signals import task_failure
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import OperationalError

from docflow.categories.learning import train_if_due
from docflow.config import get_settings
from docflow.models import Stage
from docflow.pipeline.types import TransientError
from docflow.worker.app import celery_app
from docflow.worker.reaper import reap
from docflow.worker.runner import fail, hand_over, run_batch
from docflow.worker.uow import unit_of_work

log = logging.getLogger(__name__)

RETRY = {
    "acks_late": True,
    "autoretry_for": (TransientError, OperationalError, RedisConnectionError),
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 5,
}


def _stage_task(stage: Stage) -> Task:  # type: ignore[type-arg]
    @celery_app.task(name=f"documents.{stage.value}", bind=True, **RETRY)
    def run(self: Task, document_id: str, *more: str) -> None:  # type: ignore[type-arg]
        """The stage for a document, and for `more` after it (one message for a backlog)."""
        queue = (self.request.delivery_info or {}).get("routing_key")
        ids = [uuid.UUID(document_id), *(uuid.UUID(m) for m in more)]
        # A retry shares no transaction between documents (run_batch).
        run_batch(ids, stage, self.request.id or "unknown", queue, keep=not self.request.retries)

    return run  # type: ignore[no-any-return]


validate = _stage_task(Stage.VALIDATE)
extract = _stage_task(Stage.EXTRACT)
analyze = _stage_task(Stage.ANALYZE)
categorize = _stage_task(Stage.CATEGORIZE)


@celery_app.task(name="documents.reap", acks_late=True)
def reap_task() -> dict[str, int]:
    report = reap()
    return {
        "resumed": len(report.resumed),
        "failed": len(report.failed),
        "requeued": len(report.requeued),
    }


@celery_app.task(
    name="categories.train",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=5,
    retry_jitter=True,
    max_retries=3,
)
def train_categories(document_id: str | None = None, force: bool = False) -> dict[str, Any]:
    """Retrain the category classifier from approved documents, when due (maintenance queue).

    `document_id` names the approval that prompted it, for the log only.
    """
    with unit_of_work() as session:
        result = train_if_due(session, force=force)
    log.info("categories.train (after %s): %s", document_id or "request", result.reason)
    return {"trained": result.trained, "reason": result.reason, "version": result.version}


@task_failure.connect
def record_final_failure(
    sender: Any = None,
    task_id: str | None = None,
    args: Any = None,
    exception: Any = None,
    **_: Any,
) -> None:
    """Every final failure of a stage task ends in PostgreSQL, not only in a log."""
    name = getattr(sender, "name", "") or ""
    if not name.startswith("documents.") or name == "documents.reap" or not args:
        return
    try:
        stage = Stage(name.split(".", 1)[1])
        ids = [uuid.UUID(str(arg)) for arg in args]
        if isinstance(exception, TimeLimitExceeded):
            limit = get_settings().stage_time_limit
            reason = f"This stage ran past its {limit} s limit and was stopped."
            if len(ids) > 1:
                # One document of the message ran that long; those it never started go back
                # to the queue instead of failing with it.
                failed = [i for i in ids if fail(i, stage, None, reason, task_id, held_only=True)]
                hand_over([i for i in ids if i not in failed], stage, None)
                return
        else:
            reason = f"Processing stopped after repeated errors ({type(exception).__name__})."
        for document_id in ids:
            fail(document_id, stage, None, reason, task_id)
    except Exception:  # the database may be the thing that is down; the reaper covers it then
        log.exception("could not record the failure of %s%s", name, args)
