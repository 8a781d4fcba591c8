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
from datetime import UTC, datetime
from typing import Any

from billiard.exceptions import SoftTimeLimitExceeded

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
from docflow.worker.stages import SPECS
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


def run_stage(document_id: uuid.UUID, stage: Stage, task_id: str, queue: str | None = None) -> None:
    settings = get_settings()
    owner = f"{HOST}:{os.getpid()}:{task_id}"
    spec = SPECS[stage]
    verb = STAGE_VERBS[stage]

    with unit_of_work() as session:
        doc = repo.claim(session, document_id, stage, owner, settings.lease_seconds)
        if doc is None:
            log.info("%s of %s: already done or claimed elsewhere", stage.value, document_id)
            return
        doc.progress = overall_progress(stage)
        doc.message = (
            f"{verb}… (resuming after a lost worker, attempt {doc.attempts} of "
            f"{settings.max_attempts})"
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
        started = time.perf_counter()
        inputs = _load(spec, session, doc)
    if inputs is None:  # the load itself found the input unusable and failed the document
        return

    with Heartbeat(document_id, owner, settings.lease_seconds) as heartbeat:
        try:
            result = spec.compute(inputs, Progress(doc, stage, heartbeat))
        except ClaimLost:
            log.info("%s of %s abandoned: the document changed hands", stage.value, document_id)
            return
        except StageError as exc:
            fail(document_id, stage, owner, exc.message)
            return
        except SoftTimeLimitExceeded:
            fail(
                document_id,
                stage,
                owner,
                f"{verb} took longer than the {settings.stage_soft_time_limit} s limit.",
            )
            return
        except TransientError:
            _release(document_id, stage, owner)
            raise
        except MemoryError:
            fail(
                document_id,
                stage,
                owner,
                f"{verb} needed more than the {settings.stage_memory_limit_mb} MB memory limit; "
                "the file is too complex to process.",
            )
            return
        except Exception as exc:  # a bug or a hostile file: fail this document, keep the worker
            log.exception("%s of %s crashed", stage.value, document_id)
            fail(
                document_id,
                stage,
                owner,
                f"{verb} failed unexpectedly ({type(exc).__name__}); the file may be damaged.",
            )
            return
    elapsed_ms = round((time.perf_counter() - started) * 1000, 1)

    with unit_of_work() as session:
        doc = repo.lock_owned(session, document_id, stage, owner)
        if doc is None:
            log.info(
                "%s of %s finished but the claim is gone; result dropped", stage.value, document_id
            )
            return
        data = spec.apply(session, doc, result)
        timing = {
            **(doc.timings or {}).get(stage.value, {}),
            "finished_at": _iso(),
            "duration_ms": elapsed_ms,
        }
        doc.timings = {**(doc.timings or {}), stage.value: timing}
        doc.lease_owner, doc.lease_until, doc.attempts = None, None, 0
        doc.progress = overall_progress(stage, 1, 1)
        doc.message = f"{verb}: done"
        record(
            session, doc, "stage.completed", actor=actor(), data={**data, "duration_ms": elapsed_ms}
        )
        following = next_stage(stage)
        if following is None:
            doc.status = target(doc, Action.FINISH).value
            doc.stage, doc.progress, doc.message = None, 100, "Ready for review"
            record(session, doc, "document.review", actor=actor())
        else:
            doc.stage, doc.enqueued_at = following.value, datetime.now(UTC)
            jobs.enqueue_stage(session, doc, following)


def _load(spec: Any, session: Any, doc: Document) -> Any:
    try:
        return spec.load(session, doc)
    except StageError as exc:
        _fail_locked(session, doc, exc.message)
        return None


def fail(document_id: uuid.UUID, stage: Stage, owner: str | None, reason: str) -> bool:
    """Record a final failure; `owner=None` fails it whoever holds the stage (failure hook)."""
    with unit_of_work() as session:
        doc = (
            repo.lock_owned(session, document_id, stage, owner)
            if owner
            else repo.lock_running(session, document_id, stage)
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


def _release(document_id: uuid.UUID, stage: Stage, owner: str) -> None:
    """Give the lease back so the retry can claim at once."""
    with unit_of_work() as session:
        doc = repo.lock_owned(session, document_id, stage, owner)
        if doc is not None:
            doc.lease_owner, doc.lease_until = None, None
            doc.attempts = max(doc.attempts - 1, 0)


def _iso() -> str:
    return datetime.now(UTC).isoformat()
