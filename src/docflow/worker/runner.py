"""Run one stage of one document: claim, work under a heartbeat lease, commit the outcome.

A task that finds its stage done, rejected, or leased elsewhere returns quietly. A file that is
the problem (StageError) fails its document with a readable reason and is never retried.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from billiard.exceptions import SoftTimeLimitExceeded
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import OperationalError

from docflow import jobs
from docflow.config import get_settings
from docflow.documents import stage_repository as repo
from docflow.documents.lifecycle import (
    STAGE_VERBS,
    Action,
    next_stage,
    overall_progress,
    target,
)
from docflow.documents.stage_repository import DocState
from docflow.events.log import payload, record
from docflow.models import Document, Stage
from docflow.pipeline.types import StageError, TransientError
from docflow.worker import committer
from docflow.worker.background import Heartbeat, publisher
from docflow.worker.committer import hot_transaction
from docflow.worker.held import Chain
from docflow.worker.stages import SPECS, forget_carried, inline_original_bytes
from docflow.worker.transitions import HOST, Step, actor, finish, start
from docflow.worker.uow import hot_session, unit_of_work

log = logging.getLogger(__name__)

# The database or Redis out of reach: the task retries its whole message (tasks.RETRY).
RETRIED = (OperationalError, RedisConnectionError)


class ClaimLost(Exception):
    """The document was rejected or reaped while we worked: abandon the result."""


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
            payload(
                id=None,
                type="stage.progress",
                document_id=self.doc.id,
                owner_id=self.doc.owner_id,
                status="processing",
                stage=self.stage.value,
                progress=overall_progress(self.stage, done, total),
                message=f"{STAGE_VERBS[self.stage]}: {unit} {done} of {total}",
                data={"done": done, "total": total},
                actor=actor(),
                created_at=datetime.now(UTC),
            )
        ]
        now = time.monotonic()
        if now >= self.heartbeat.settle_due:
            # A stage that reports progress commits what was held back as soon as it has run a
            # while (the lease keeper does so for the others), and always before its progress.
            self.heartbeat.settle_held()
            if self.heartbeat.lost.is_set():
                raise ClaimLost
        if now - self._last < 0.1:
            return
        self._last = now
        self.heartbeat.settle_held()
        publisher().publish(self.take())

    def take(self) -> list[dict[str, Any]]:
        pending, self.pending = self.pending, []
        return pending


# A worker that finishes a stage runs the next one itself, in the same task, when that stage
# belongs on the same queue: the completion and the next claim are one transaction, with no
# broker round trip between them. A task hands over through the broker once it has run this
# long, so the per-task time limits keep their meaning.
CHAIN_SECONDS = 30.0
# Likewise a task whose message names several documents starts no new one after this long.
BATCH_SECONDS = CHAIN_SECONDS


def run_stage(document_id: uuid.UUID, stage: Stage, task_id: str, queue: str | None = None) -> None:
    run_batch([document_id], stage, task_id, queue)


def run_batch(
    document_ids: Sequence[uuid.UUID],
    stage: Stage,
    task_id: str,
    queue: str | None = None,
    *,
    keep: bool = True,
) -> None:
    """Run `stage`, and what it chains, for each document in turn (a task message may name
    several: see documents/intake.py). The statement that moves a document to review also
    claims the next one. A task that has run BATCH_SECONDS hands the documents it has not
    started over to a fresh message, so the per-task time limits keep their meaning; so does
    one whose stage is to be retried (a transient error), before it raises for the retry. A
    document whose run breaks for another reason fails alone, as it would in a task of its own;
    the database or Redis being out of reach retries the whole message. `keep`: documents
    that finish in quick succession may share a transaction (committer.hot_transaction); a
    retried message runs without, so that one document's failing statement cannot take the
    others' work with it again."""
    task_started = time.monotonic()
    claimed: Claimed | None = None  # the next document, claimed already
    try:
        for index, document_id in enumerate(document_ids):
            if claimed is None and index and time.monotonic() - task_started >= BATCH_SECONDS:
                hand_over(document_ids[index:], stage, queue)
                break
            following = document_ids[index + 1] if index + 1 < len(document_ids) else None
            forget_carried()  # only stages chained for this document may reuse what it read
            try:
                claimed = _run_chain(
                    document_id, stage, task_id, queue, task_started, claimed, following, keep
                )
            except TransientError:
                hand_over(document_ids[index + 1 :], stage, queue)
                raise
            except RETRIED:
                raise
            except Exception as exc:
                if len(document_ids) == 1:
                    raise  # the task's own failure hook records it, as ever
                log.exception("%s of %s broke", stage.value, document_id)
                reason = f"Processing stopped after an error ({type(exc).__name__})."
                fail(document_id, stage, None, reason, task_id)
                claimed = None
    except BaseException:
        _settle()
        publisher().failure(clear=True)  # whatever failed, the task ends in error for it
        raise
    _settle()
    committer.check(clear=True)  # a COMMIT that failed on the way retries the message


def _settle() -> None:
    forget_carried()
    publisher().drain()


def hand_over(document_ids: Sequence[uuid.UUID], stage: Stage, queue: str | None) -> None:
    """Send `stage`'s task for these documents, in one message, after what this task published.
    A document that has moved on meanwhile makes its part of the message a no-op."""
    if not document_ids:
        return
    publisher().drain()
    first, *more = document_ids
    jobs.send(jobs.Job(jobs.stage_task(stage), first, queue or jobs.QUEUE, more=tuple(more)))


class Claimed(NamedTuple):
    """A document claimed by the statement that finished the one before it."""

    state: repo.Transitioned
    started_at: str  # as its stage's timing records it


def _claim(document_id: uuid.UUID, stage: Stage, owner: str, queue: str | None) -> repo.Change:
    """The statement's part that claims `stage` of a document for this task."""
    return repo.Change(
        document_id,
        stage,
        owner,
        actor(),
        claim=True,
        **start(stage, queue, fresh=True),
        # Read now, so that a fast chain reaches categorization without another statement.
        categorize_inputs=True,
        inline_original=inline_original_bytes(stage),
    )


def _run_chain(
    document_id: uuid.UUID,
    stage: Stage,
    task_id: str,
    queue: str | None,
    task_started: float,
    claimed: Claimed | None = None,
    following_id: uuid.UUID | None = None,
    keep: bool = False,
) -> Claimed | None:
    """One document's stages from `stage` (`claimed`: its claim is made already); returns the
    claim of `following_id`, when the statement that moved this one to review made it."""
    owner = f"{HOST}:{os.getpid()}:{task_id}"
    if claimed is None:
        claim = _claim(document_id, stage, owner, queue)
        # No connection is held while a stage computes: one idle for a while is checked at
        # checkout (uow.PING_AFTER_IDLE), so a long stage survives a database restart. The
        # claim's events go out once it has committed (as do those of a claim that the
        # statement finishing the document before made).
        with hot_transaction() as tx:
            transitioned = repo.transition(tx.conn, claim, begin=True)
            if transitioned is not None:
                tx.publish(transitioned.events)
        if transitioned is None:
            log.info("%s of %s: already done or claimed elsewhere", stage.value, document_id)
            return None
        claimed = Claimed(transitioned, claim.params["started_at"])
    chain = Chain(document_id, owner, claimed.state, keep=keep)
    try:
        return _stages(chain, claimed, stage, queue, task_started, following_id)
    except RETRIED:
        raise
    except Exception:
        with contextlib.suppress(Exception):
            chain.flush()  # what is held is recorded before the failure that follows
        raise


def _stages(
    chain: Chain,
    claimed: Claimed,
    stage: Stage,
    queue: str | None,
    task_started: float,
    following_id: uuid.UUID | None,
) -> Claimed | None:
    """The stages of a claimed document, chained while they may be (see _run_chain)."""
    document_id, owner, first = chain.document_id, chain.owner, stage
    state, started_at = claimed
    inputs = _load(state, stage, owner, chain)
    while inputs is not _FAILED:
        started = time.perf_counter()
        result, progress = _compute(state.doc, stage, owner, inputs, chain, own_task=stage is first)
        if result is _FAILED:
            return None
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        outcome = SPECS[stage].apply(state.doc, result)
        following = next_stage(stage)
        # Validation has just set the kind that routes extraction.
        kind = outcome.params.get("kind", state.doc.kind)
        target_queue = jobs.queue_for(following, kind, state.doc.size_bytes) if following else None
        in_time = time.monotonic() - task_started < CHAIN_SECONDS
        chaining = following is not None and in_time and target_queue == (queue or jobs.QUEUE)
        after = finish(stage, outcome, elapsed_ms, following, chaining, queue)
        step = Step(stage, outcome, elapsed_ms, after, started_at, progress)
        if chaining:
            assert following is not None
            started_at = after["params"]["started_at"]
            held = chain.hold(step, state, following)
            if held is not None:
                state, stage = held, following
                inputs = _load(state, stage, owner, chain)
                continue
        then = None
        if following is None and following_id is not None:
            if time.monotonic() - task_started < BATCH_SECONDS:
                then = _claim(following_id, first, owner, queue)
        done, next_state = chain.commit(
            step,
            categorize_inputs=chaining and following is Stage.CATEGORIZE,
            then=then,
            final=following is None,
        )
        next_claimed = None
        if next_state is not None:
            assert then is not None
            next_claimed = Claimed(next_state, then.params["started_at"])
        if done is None:
            log.info(
                "%s of %s finished but the claim is gone; result dropped",
                stage.value,
                document_id,
            )
            return next_claimed
        state = done
        if following is None:
            return next_claimed
        if not chaining:
            publisher().drain()  # the next task's events must not overtake these
            assert target_queue is not None
            jobs.send(jobs.Job(jobs.stage_task(following), document_id, target_queue))
            return None
        stage = following
        inputs = _load(state, stage, owner, chain)
    return None


def _load(state: repo.Transitioned, stage: Stage, owner: str, chain: Chain) -> Any:
    """The stage's inputs; a file that cannot give them fails its document (_FAILED). The
    session connects only if the stage reads something the claim did not bring."""
    try:
        with hot_session() as session:
            return SPECS[stage].load(session, state)
    except StageError as exc:
        chain.flush()  # the failure is recorded against the stage the row is at
        fail(state.doc.id, stage, owner, exc.message)
        return _FAILED


class _Failed:
    """The stage's outcome was already written (failed, abandoned or released)."""


_FAILED: Any = _Failed()


def _compute(
    doc: DocState, stage: Stage, owner: str, inputs: Any, chain: Chain, *, own_task: bool
) -> tuple[Any, list[dict[str, Any]]]:
    """The pure stage under a heartbeat lease: (result, progress events not yet published); a
    failure is recorded (after what the chain holds back) and _FAILED returned.

    A transient error retries the stage: through Celery's retry when it is this task's own
    stage, through a fresh task of its own when this task reached it by chaining."""
    settings = get_settings()
    verb = STAGE_VERBS[stage]
    document_id = doc.id
    with Heartbeat(document_id, owner, settings.lease_seconds, chain.flush) as heartbeat:
        progress = Progress(doc, stage, heartbeat)
        try:
            try:
                return SPECS[stage].compute(inputs, progress), progress.take()
            except ClaimLost:
                raise
            except BaseException:
                chain.flush()  # each outcome below is recorded against the stage the row is at
                raise
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
    document_id: uuid.UUID,
    stage: Stage,
    owner: str | None,
    reason: str,
    task_id: str | None = None,
    *,
    held_only: bool = False,
) -> bool:
    """Record a final failure; `owner=None` fails it whoever holds the stage, or whichever stage
    task `task_id` had reached (the failure hook; `held_only`: only if that task holds it)."""
    publisher().drain()  # what this task committed before goes out first
    with unit_of_work() as session:
        doc = (
            repo.lock_owned(session, document_id, stage, owner)
            if owner
            else repo.lock_running(session, document_id, stage, task_id, held_only=held_only)
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
    publisher().drain()
    with unit_of_work() as session:
        doc = repo.lock_owned(session, document_id, stage, owner)
        if doc is not None:
            doc.lease_owner, doc.lease_until = None, None
            doc.attempts = max(doc.attempts - 1, 0)
            if resend:
                jobs.enqueue_stage(session, doc, stage)
