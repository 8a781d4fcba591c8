"""Run one stage of one document: claim, work under a heartbeat lease, commit the outcome.

A task that finds its stage done, rejected, or leased elsewhere returns quietly. A file that is
the problem (StageError) fails its document with a readable reason and is never retried.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from billiard.exceptions import SoftTimeLimitExceeded
from sqlalchemy import func

from docflow import jobs
from docflow.config import get_settings
from docflow.db import sync_session_factory
from docflow.documents import stage_repository as repo
from docflow.documents.lifecycle import (
    STAGE_VERBS,
    Action,
    next_stage,
    overall_progress,
    target,
)
from docflow.events.log import record
from docflow.events.publisher import publish_sync
from docflow.models import Document, Stage
from docflow.pipeline.types import StageError, TransientError
from docflow.worker.stages import SPECS, forget_carried
from docflow.worker.uow import unit_of_work

log = logging.getLogger(__name__)
# Names this worker host in the audit trail; overridable where hosts share a hostname.
HOST = os.environ.get("DOCFLOW_HOSTNAME") or socket.gethostname()


class ClaimLost(Exception):
    """The document was rejected or reaped while we worked: abandon the result."""


def actor() -> str:
    return f"worker:{HOST}:{os.getpid()}"


class Heartbeat:
    """Extends the lease while the stage works and notices when the claim is gone."""

    def __init__(self, document_id: uuid.UUID, owner: str, lease: int) -> None:
        self.document_id, self.owner, self.lease = document_id, owner, lease
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="lease-heartbeat")

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        interval = max(self.lease / 3, 0.5)
        while not self._stop.wait(interval):
            try:
                with sync_session_factory()() as session:
                    still_ours = repo.extend_lease(
                        session, self.document_id, self.owner, self.lease
                    )
                    session.commit()
            except Exception:  # a blip: the lease has slack for two more beats
                log.warning("lease heartbeat failed for %s", self.document_id)
                continue
            if not still_ours:
                self.lost.set()
                return


class Progress:
    """Turns (done, total) into live-only events, at most ten a second, and checks the claim."""

    def __init__(self, doc: Document, stage: Stage, heartbeat: Heartbeat) -> None:
        self.doc, self.stage, self.heartbeat = doc, stage, heartbeat
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        if self.heartbeat.lost.is_set():
            raise ClaimLost
        now = time.monotonic()
        if now - self._last < 0.1 and done < total:
            return
        self._last = now
        unit = "page" if self.stage is Stage.EXTRACT else "step"
        publish_sync(
            [
                {
                    "id": None,
                    "type": "stage.progress",
                    "document_id": str(self.doc.id),
                    "owner_id": str(self.doc.owner_id),
                    "status": "processing",
                    "stage": self.stage.value,
                    "progress": overall_progress(self.stage, done, total),
                    "message": f"{STAGE_VERBS[self.stage]}: {unit} {done} of {total}",
                    "data": {"done": done, "total": total},
                    "actor": actor(),
                    "created_at": datetime.now(UTC).isoformat(),
                }
            ]
        )


# A worker that finishes a stage runs the next one itself, in the same task, when that stage
# belongs on the same queue: the completion and the next claim are one transaction, with no
# broker round trip between them. A task hands over through the broker once it has run this
# long, so the per-task time limits keep their meaning.
CHAIN_SECONDS = 30.0


def run_stage(document_id: uuid.UUID, stage: Stage, task_id: str, queue: str | None = None) -> None:
    forget_carried()  # only stages chained within this task may reuse what it extracted
    try:
        _run_chain(document_id, stage, task_id, queue)
    finally:
        forget_carried()


def _run_chain(document_id: uuid.UUID, stage: Stage, task_id: str, queue: str | None) -> None:
    settings = get_settings()
    owner = f"{HOST}:{os.getpid()}:{task_id}"
    task_started, first = time.monotonic(), stage

    with unit_of_work() as session:
        doc = repo.claim(session, document_id, stage, owner, settings.lease_seconds)
        if doc is None:
            log.info("%s of %s: already done or claimed elsewhere", stage.value, document_id)
            return
        inputs = _begin(session, doc, stage, queue)

    while inputs is not _FAILED:
        started = time.perf_counter()
        result = _compute(doc, stage, owner, inputs, own_task=stage is first)
        if result is _FAILED:
            return
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        following = next_stage(stage)
        with unit_of_work() as session:
            locked = repo.lock_owned(session, document_id, stage, owner)
            if locked is None:
                log.info(
                    "%s of %s finished but the claim is gone; result dropped",
                    stage.value,
                    document_id,
                )
                return
            doc = locked
            _complete(session, doc, stage, result, elapsed_ms)
            if following is None:
                doc.status = target(doc, Action.FINISH).value
                doc.stage, doc.progress, doc.message = None, 100, "Ready for review"
                doc.lease_owner, doc.lease_until = None, None
                record(session, doc, "document.review", actor=actor())
                return
            doc.stage, doc.enqueued_at = following.value, datetime.now(UTC)
            # After _complete: validation has just set the kind that routes extraction.
            chain = time.monotonic() - task_started < CHAIN_SECONDS and jobs.queue_for(
                following, doc.kind, doc.size_bytes
            ) == (queue or jobs.QUEUE)
            if not chain:
                doc.lease_owner, doc.lease_until = None, None
                jobs.enqueue_stage(session, doc, following)
                return
            # Claimed in the same transaction that completed the previous stage.
            doc.lease_until = func.now() + timedelta(seconds=settings.lease_seconds)
            doc.attempts = 1
            stage = following
            inputs = _begin(session, doc, stage, queue)


class _Failed:
    """The stage's outcome was already written (failed, abandoned or released)."""


_FAILED: Any = _Failed()


def _begin(session: Any, doc: Document, stage: Stage, queue: str | None) -> Any:
    """Mark the stage started (the claim is held) and load its inputs; _FAILED if unusable."""
    settings = get_settings()
    verb = STAGE_VERBS[stage]
    doc.progress = overall_progress(stage)
    doc.message = (
        f"{verb}… (resuming after a lost worker, attempt {doc.attempts} of {settings.max_attempts})"
        if doc.attempts > 1
        else f"{verb}…"
    )
    doc.timings = {**(doc.timings or {}), stage.value: {"started_at": _iso()}}
    data: dict[str, Any] = {
        "attempt": doc.attempts,
        "max_attempts": settings.max_attempts,
        "queue": queue,
        "worker": HOST,
    }
    record(session, doc, "stage.started", actor=actor(), data=data)
    try:
        return SPECS[stage].load(session, doc)
    except StageError as exc:
        _fail_locked(session, doc, exc.message)
        return _FAILED


def _compute(doc: Document, stage: Stage, owner: str, inputs: Any, *, own_task: bool) -> Any:
    """The pure stage under a heartbeat lease; a failure is recorded and _FAILED returned.

    A transient error retries the stage: through Celery's retry when it is this task's own
    stage, through a fresh task of its own when this task reached it by chaining."""
    settings = get_settings()
    verb = STAGE_VERBS[stage]
    document_id = doc.id
    with Heartbeat(document_id, owner, settings.lease_seconds) as heartbeat:
        try:
            return SPECS[stage].compute(inputs, Progress(doc, stage, heartbeat))
        except ClaimLost:
            log.info("%s of %s abandoned: the document changed hands", stage.value, document_id)
        except StageError as exc:
            fail(document_id, stage, owner, exc.message)
        except SoftTimeLimitExceeded:
            fail(
                document_id,
                stage,
                owner,
                f"{verb} took longer than the {settings.stage_soft_time_limit} s limit.",
            )
        except TransientError:
            _release(document_id, stage, owner, resend=not own_task)
            if own_task:
                raise
        except MemoryError:
            fail(
                document_id,
                stage,
                owner,
                f"{verb} needed more than the {settings.stage_memory_limit_mb} MB memory limit; "
                "the file is too complex to process.",
            )
        except Exception as exc:  # a bug or a hostile file: fail this document, keep the worker
            log.exception("%s of %s crashed", stage.value, document_id)
            fail(
                document_id,
                stage,
                owner,
                f"{verb} failed unexpectedly ({type(exc).__name__}); the file may be damaged.",
            )
    return _FAILED


def _complete(session: Any, doc: Document, stage: Stage, result: Any, elapsed_ms: float) -> None:
    data = SPECS[stage].apply(session, doc, result)
    timing = {
        **(doc.timings or {}).get(stage.value, {}),
        "finished_at": _iso(),
        "duration_ms": elapsed_ms,
    }
    doc.timings = {**(doc.timings or {}), stage.value: timing}
    doc.attempts = 0
    doc.progress = overall_progress(stage, 1, 1)
    doc.message = f"{STAGE_VERBS[stage]}: done"
    record(session, doc, "stage.completed", actor=actor(), data={**data, "duration_ms": elapsed_ms})


def fail(
    document_id: uuid.UUID, stage: Stage, owner: str | None, reason: str, task_id: str | None = None
) -> bool:
    """Record a final failure; `owner=None` fails it whoever holds the stage, or whichever stage
    task `task_id` had reached (the failure hook)."""
    with unit_of_work() as session:
        doc = (
            repo.lock_owned(session, document_id, stage, owner)
            if owner
            else repo.lock_running(session, document_id, stage, task_id)
        )
        if doc is None:
            return False
        _fail_locked(session, doc, reason)
        return True


def _fail_locked(session: Any, doc: Document, reason: str) -> None:
    stage = doc.stage
    doc.status = target(doc, Action.FAIL).value
    doc.error, doc.message = reason, reason
    doc.lease_owner, doc.lease_until = None, None
    record(session, doc, "stage.failed", actor=actor(), message=reason, data={"stage": stage})
    record(session, doc, "document.failed", actor=actor(), message=reason)


def _release(document_id: uuid.UUID, stage: Stage, owner: str, *, resend: bool = False) -> None:
    """Give the lease back so the retry can claim at once (`resend`: send the stage's task)."""
    with unit_of_work() as session:
        doc = repo.lock_owned(session, document_id, stage, owner)
        if doc is not None:
            doc.lease_owner, doc.lease_until = None, None
            doc.attempts = max(doc.attempts - 1, 0)
            if resend:
                jobs.enqueue_stage(session, doc, stage)


def _iso() -> str:
    return datetime.now(UTC).isoformat()
