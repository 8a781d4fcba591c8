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
from docflow.documents.stage_repository import DocState
from docflow.events.log import record
from docflow.events.publisher import publish_sync
from docflow.models import Document, Stage, Status
from docflow.pipeline.types import StageError, TransientError
from docflow.worker.stages import SPECS, forget_carried, inline_original_bytes
from docflow.worker.uow import hot_session, unit_of_work

log = logging.getLogger(__name__)
# Names this worker host in the audit trail; overridable where hosts share a hostname.
HOST = os.environ.get("DOCFLOW_HOSTNAME") or socket.gethostname()


class ClaimLost(Exception):
    """The document was rejected or reaped while we worked: abandon the result."""


def actor() -> str:
    return f"worker:{HOST}:{os.getpid()}"


class _Publisher:
    """Publishes this process's committed events from a thread of its own, in commit order.

    A task hands its events over right after each commit and goes on with the next stage
    instead of waiting for Redis; whatever piles up meanwhile goes out in one pipeline. Never
    before the commit (DESIGN.md invariant 2), and no later than it takes the thread to run:
    a worker cut off right after a commit loses no more than one that published in line.
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._cond = threading.Condition()
        self._items: list[dict[str, Any]] = []
        self._busy = False
        self._thread: threading.Thread | None = None

    def publish(self, payloads: list[dict[str, Any]]) -> None:
        if not payloads:
            return
        with self._cond:
            self._items.extend(payloads)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name="publisher")
                self._thread.start()
            self._cond.notify_all()

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until everything handed over has been sent (before another path publishes,
        and before a task ends: a worker shutting down takes nothing unsent with it)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._items or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(left)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._items:
                    self._cond.wait()
                batch, self._items, self._busy = self._items, [], True
            try:
                publish_sync(batch)
            except Exception:  # never let the thread die; the log replays what was missed
                log.warning("event publish failed", exc_info=True)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()


_publishers: list[_Publisher] = []


def _published() -> _Publisher:
    """This process's publisher (a forked pool child starts its own)."""
    if not _publishers or _publishers[0].pid != os.getpid():
        _publishers[:] = [_Publisher()]
    return _publishers[0]


class Heartbeat:
    """Extends the lease while the stage works and notices when the claim is gone.

    One keeper thread per process beats for every stage it runs, and only for stages that run
    longer than a third of the lease: most stages take milliseconds and cost no thread and no
    statement."""

    def __init__(self, document_id: uuid.UUID, owner: str, lease: int) -> None:
        self.document_id, self.owner, self.lease = document_id, owner, lease
        self.lost = threading.Event()
        self.due = 0.0

    def __enter__(self) -> Heartbeat:
        _keeper().add(self)
        return self

    def __exit__(self, *_: object) -> None:
        _keeper().discard(self)

    def beat(self) -> None:
        try:
            with sync_session_factory()() as session:
                still_ours = repo.extend_lease(session, self.document_id, self.owner, self.lease)
                session.commit()
        except Exception:  # a blip: the lease has slack for two more beats
            log.warning("lease heartbeat failed for %s", self.document_id)
            return
        if not still_ours:
            self.lost.set()


class _LeaseKeeper:
    TICK = 0.25

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._lock = threading.Lock()
        self._beats: dict[int, Heartbeat] = {}
        self._thread: threading.Thread | None = None

    def add(self, heartbeat: Heartbeat) -> None:
        heartbeat.due = time.monotonic() + _interval(heartbeat.lease)
        with self._lock:
            self._beats[id(heartbeat)] = heartbeat
        self.start()

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, daemon=True, name="lease-heartbeat"
                )
                self._thread.start()

    def discard(self, heartbeat: Heartbeat) -> None:
        with self._lock:
            self._beats.pop(id(heartbeat), None)

    def _run(self) -> None:
        while True:
            time.sleep(self.TICK)
            now = time.monotonic()
            with self._lock:
                due = [hb for hb in self._beats.values() if hb.due <= now and not hb.lost.is_set()]
            for heartbeat in due:
                heartbeat.beat()
                heartbeat.due = time.monotonic() + _interval(heartbeat.lease)


def _interval(lease: int) -> float:
    return max(lease / 3, 0.5)


_keepers: list[_LeaseKeeper] = []


def _keeper() -> _LeaseKeeper:
    """This process's keeper (a forked pool child starts its own)."""
    if not _keepers or _keepers[0].pid != os.getpid():
        _keepers[:] = [_LeaseKeeper()]
    return _keepers[0]


class Progress:
    """Turns (done, total) into live-only events, at most ten a second, and checks the claim.

    What a stage reports within a tenth of a second of the last publish waits (the newest
    only) and goes out with the stage's completion, in one Redis round trip: a stage that
    takes milliseconds publishes its final "page N of N" but no publish of its own."""

    def __init__(self, doc: DocState, stage: Stage, heartbeat: Heartbeat) -> None:
        self.doc, self.stage, self.heartbeat = doc, stage, heartbeat
        self._last = time.monotonic()
        self.pending: list[dict[str, Any]] = []

    def __call__(self, done: int, total: int) -> None:
        if self.heartbeat.lost.is_set():
            raise ClaimLost
        unit = "page" if self.stage is Stage.EXTRACT else "step"
        self.pending = [
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
        now = time.monotonic()
        if now - self._last < 0.1:
            return
        self._last = now
        _published().publish(self.take())

    def take(self) -> list[dict[str, Any]]:
        pending, self.pending = self.pending, []
        return pending


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
        _published().drain()


def _run_chain(document_id: uuid.UUID, stage: Stage, task_id: str, queue: str | None) -> None:
    owner = f"{HOST}:{os.getpid()}:{task_id}"
    task_started, first = time.monotonic(), stage

    # No connection is held while a stage computes: one idle for a while is checked at
    # checkout (uow.PING_AFTER_IDLE), so a long stage survives a database restart.
    with hot_session() as session:
        state = repo.transition(
            session,
            document_id,
            stage,
            owner=owner,
            actor=actor(),
            claim=True,
            **_start(stage, queue, fresh=True),
            categorize_inputs=stage is Stage.CATEGORIZE,
            inline_original=inline_original_bytes(stage),
        )
        if state is None:
            log.info("%s of %s: already done or claimed elsewhere", stage.value, document_id)
            return
        _published().publish(state.events)
        inputs = _load(session, state, stage, owner)

    while inputs is not _FAILED:
        started = time.perf_counter()
        result, progress = _compute(state.doc, stage, owner, inputs, own_task=stage is first)
        if result is _FAILED:
            return
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        outcome = SPECS[stage].apply(state.doc, result)
        following = next_stage(stage)
        # Validation has just set the kind that routes extraction.
        kind = outcome.params.get("kind", state.doc.kind)
        target_queue = jobs.queue_for(following, kind, state.doc.size_bytes) if following else None
        chain = (
            following is not None
            and time.monotonic() - task_started < CHAIN_SECONDS
            and target_queue == (queue or jobs.QUEUE)
        )
        after = _finish(stage, outcome, elapsed_ms, following, chain, queue)
        with hot_session() as session:
            # Completes the stage and, when chaining, claims the next one: one statement.
            done = repo.transition(
                session,
                document_id,
                stage,
                owner=owner,
                actor=actor(),
                claim=False,
                sets={**outcome.sets, **after["sets"]},
                params={**outcome.params, **after["params"]},
                events=after["events"],
                text_content=outcome.text,
                categorize_inputs=chain and following is Stage.CATEGORIZE,
            )
            if done is None:
                log.info(
                    "%s of %s finished but the claim is gone; result dropped",
                    stage.value,
                    document_id,
                )
                return
            state = done
            _published().publish(progress + state.events)
            if following is None:
                return
            if not chain:
                _published().drain()  # the next task's events must not overtake these
                assert target_queue is not None
                jobs.send(jobs.Job(jobs.stage_task(following), document_id, target_queue))
                return
            stage = following
            inputs = _load(session, state, stage, owner)


def _load(session: Any, state: repo.Transitioned, stage: Stage, owner: str) -> Any:
    """The stage's inputs; a file that cannot give them fails its document (_FAILED)."""
    try:
        return SPECS[stage].load(session, state)
    except StageError as exc:
        fail(state.doc.id, stage, owner, exc.message)
        return _FAILED


class _Failed:
    """The stage's outcome was already written (failed, abandoned or released)."""


_FAILED: Any = _Failed()

_TIMINGS_START = (
    "coalesce(timings, '{}'::jsonb) || jsonb_build_object(CAST(:start_stage AS text),"
    " jsonb_build_object('started_at', CAST(:started_at AS text)))"
)


def _start(stage: Stage, queue: str | None, *, fresh: bool) -> dict[str, Any]:
    """The columns, parameters and event that mark `stage` started and held by this task.

    `fresh`: claimed just now (a resumed stage says which attempt it is); otherwise the stage
    is chained within the statement that completed the one before, as its first attempt."""
    settings = get_settings()
    verb = STAGE_VERBS[stage]
    sets = {
        "stage": "CAST(:start_stage AS text)",
        "status": "'processing'",
        "lease_owner": "CAST(:owner AS text)",
        "lease_until": "now() + make_interval(secs => :lease)",
        "progress": ":start_progress",
        "timings": _TIMINGS_START,
    }
    params: dict[str, Any] = {
        "start_stage": stage.value,
        "lease": settings.lease_seconds,
        "start_progress": overall_progress(stage),
        "started_at": _iso(),
        "start_message": f"{verb}…",
    }
    if fresh:
        sets["attempts"] = "attempts + 1"
        sets["message"] = (
            "CASE WHEN attempts > 0 THEN CAST(:resume_head AS text) || (attempts + 1)"
            " || CAST(:resume_tail AS text) ELSE CAST(:start_message AS text) END"
        )
        params["resume_head"] = f"{verb}… (resuming after a lost worker, attempt "
        params["resume_tail"] = f" of {settings.max_attempts})"
    else:
        sets["attempts"] = "1"
        sets["message"] = "CAST(:start_message AS text)"
    event = repo.NewEvent(
        "stage.started",
        Status.PROCESSING.value,
        stage.value,
        overall_progress(stage),
        data={"max_attempts": settings.max_attempts, "queue": queue, "worker": HOST},
        with_attempt=True,
    )
    return {"sets": sets, "params": params, "events": [event]}


def _finish(
    stage: Stage,
    outcome: Any,
    elapsed_ms: float,
    following: Stage | None,
    chain: bool,
    queue: str | None,
) -> dict[str, Any]:
    """The columns, parameters and events that complete `stage`, then: review (no stage
    follows), the next stage started here (`chain`), or the next stage left for its task."""
    done_message = f"{STAGE_VERBS[stage]}: done"
    completed = repo.NewEvent(
        "stage.completed",
        Status.PROCESSING.value,
        stage.value,
        overall_progress(stage, 1, 1),
        message=done_message,
        data={**outcome.data, "duration_ms": elapsed_ms},
    )
    finished = (
        "coalesce(timings, '{}'::jsonb) || jsonb_build_object(CAST(:stage AS text),"
        " coalesce(timings -> CAST(:stage AS text), '{}'::jsonb)"
        " || jsonb_build_object('finished_at', CAST(:finished_at AS text),"
        " 'duration_ms', CAST(:duration_ms AS double precision)))"
    )
    params: dict[str, Any] = {"finished_at": _iso(), "duration_ms": elapsed_ms}
    if following is None:
        return {
            "sets": {
                "timings": finished,
                "status": "'review'",
                "stage": "NULL",
                "progress": "100",
                "message": "'Ready for review'",
                "lease_owner": "NULL",
                "lease_until": "NULL",
                "attempts": "0",
            },
            "params": params,
            "events": [
                completed,
                repo.NewEvent(
                    "document.review", Status.REVIEW.value, None, 100, message="Ready for review"
                ),
            ],
        }
    if not chain:
        return {
            "sets": {
                "timings": finished,
                "stage": "CAST(:next_stage AS text)",
                "enqueued_at": "now()",
                "progress": ":done_progress",
                "message": "CAST(:done_message AS text)",
                "lease_owner": "NULL",
                "lease_until": "NULL",
                "attempts": "0",
            },
            "params": {
                **params,
                "next_stage": following.value,
                "done_progress": overall_progress(stage, 1, 1),
                "done_message": done_message,
            },
            "events": [completed],
        }
    start = _start(following, queue, fresh=False)
    # The finished stage's timing and the next one's start, in one expression.
    timings = finished + " || jsonb_build_object(CAST(:start_stage AS text),"
    timings += " jsonb_build_object('started_at', CAST(:started_at AS text)))"
    return {
        "sets": {**start["sets"], "timings": timings, "enqueued_at": "now()"},
        "params": {**params, **start["params"]},
        "events": [completed, *start["events"]],
    }


def _compute(
    doc: DocState, stage: Stage, owner: str, inputs: Any, *, own_task: bool
) -> tuple[Any, list[dict[str, Any]]]:
    """The pure stage under a heartbeat lease: (result, progress events not yet published); a
    failure is recorded and _FAILED returned.

    A transient error retries the stage: through Celery's retry when it is this task's own
    stage, through a fresh task of its own when this task reached it by chaining."""
    settings = get_settings()
    verb = STAGE_VERBS[stage]
    document_id = doc.id
    with Heartbeat(document_id, owner, settings.lease_seconds) as heartbeat:
        progress = Progress(doc, stage, heartbeat)
        try:
            return SPECS[stage].compute(inputs, progress), progress.take()
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
    return _FAILED, []


def fail(
    document_id: uuid.UUID, stage: Stage, owner: str | None, reason: str, task_id: str | None = None
) -> bool:
    """Record a final failure; `owner=None` fails it whoever holds the stage, or whichever stage
    task `task_id` had reached (the failure hook)."""
    _published().drain()  # what this task committed before goes out first
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
    _published().drain()
    with unit_of_work() as session:
        doc = repo.lock_owned(session, document_id, stage, owner)
        if doc is not None:
            doc.lease_owner, doc.lease_until = None, None
            doc.attempts = max(doc.attempts - 1, 0)
            if resend:
                jobs.enqueue_stage(session, doc, stage)


def _iso() -> str:
    return datetime.now(UTC).isoformat()
