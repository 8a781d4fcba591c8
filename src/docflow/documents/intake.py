"""Group commit for whole small uploads.

Under load, many uploads are ready to be written at the same moment. Each would otherwise be
its own statement, its own WAL flush (the disk's fsync, milliseconds each) and its own broker
and Pub/Sub round trips. Here an upload joins the batch being gathered; a writer (up to
MAX_WRITERS at a time per event loop) takes everything gathered, inserts it in one statement
(one commit, one flush), answers every upload in it, then publishes its events and sends its
tasks in one pipeline each. An upload on an idle server is written at once, alone: the
batching adds no waiting, it only collects what arrived while earlier batches were written.

Nothing is acknowledged before it is committed. If a batch's statement fails, its uploads are
retried one by one, so one upload the database refuses fails alone.

The tasks are grouped too, when that costs nobody any waiting: while a task is already queued
behind busy workers (every worker slot taken), a new upload's validate task lingers for up to
LINGER_SECONDS and goes out in one message with the others that arrived meanwhile (at most
MAX_PER_MESSAGE). A worker runs such a message's documents one after another; each message a
worker takes costs its Celery consumer as much as a document's stages do, so under a backlog
this is most of what a worker has to spare. With the queue empty a task goes out at once,
alone. A process that stops while tasks linger sends them first (`flush`); one that dies
leaves them to the reaper, as any lost send.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref
from typing import Any

import asyncpg

from docflow import jobs
from docflow.db import async_engine
from docflow.documents import intake_repository as repo
from docflow.documents.intake_repository import Inserted, WholeUpload
from docflow.events.log import encode, messages, payload
from docflow.events.publisher import publish_async
from docflow.models import Stage

log = logging.getLogger(__name__)

# At most this many uploads per statement (a 64 KiB file each at most: a few MiB of parameters).
MAX_BATCH = 64
# Batches written at the same time, each on its own pooled connection: while one waits for its
# commit to reach the disk (or for the event loop, busy answering the last batch), the next is
# already on its way. With one writer, uploads topped out near 730/s; with four, a writer spent
# more time waiting to announce its batch than writing it.
MAX_WRITERS = 8


# How long a validate task may wait to share its message while the queue is backlogged, and
# how many documents one message names at most (a few hundred ms of a worker's time).
LINGER_SECONDS = 0.05
MAX_PER_MESSAGE = 16

# An upload and the future its request awaits.
Waiting = tuple[WholeUpload, "asyncio.Future[Inserted | None]"]


class _Writer:
    def __init__(self) -> None:
        self.pending: list[Waiting] = []
        self.running: set[asyncio.Task[None]] = set()  # held, so none is collected mid-write
        self.lingering: list[jobs.Job] = []
        self.timer: asyncio.TimerHandle | None = None
        self.flushing: set[asyncio.Task[None]] = set()

    async def submit(self, upload: WholeUpload) -> Inserted | None:
        future: asyncio.Future[Inserted | None] = asyncio.get_running_loop().create_future()
        # Read even when nobody waits any more, so an unanswered failure is not logged as lost.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.pending.append((upload, future))
        if len(self.running) < MAX_WRITERS:
            task = asyncio.get_running_loop().create_task(self._drain(), name="upload-intake")
            self.running.add(task)
            task.add_done_callback(self.running.discard)
        # A client that hangs up cancels only its wait: its upload stays in its batch, and the
        # writer passes over the cancelled future when it answers.
        return await future

    def _take(self) -> list[Waiting]:
        batch, self.pending = self.pending[:MAX_BATCH], self.pending[MAX_BATCH:]
        return batch

    async def _drain(self) -> None:
        while self.pending:
            try:
                async with async_engine().connect() as conn:
                    driver = await repo.driver(conn)
                    # One connection for this writer's batches while uploads keep coming (a
                    # checkout costs about as much CPU as the statement); a batch that failed
                    # ends it, and the next batch takes a fresh connection.
                    while self.pending and await self._write(driver, self._take()):
                        pass
            except Exception as exc:  # no connection to be had: this batch fails, not all
                for _, future in self._take():
                    _settle(future, exc=exc)

    async def _write(self, driver: Any, batch: list[Waiting]) -> bool:
        """Insert, answer and announce one batch; False when its statement failed."""
        uploads = [upload for upload, _ in batch]
        try:
            inserted = await _insert(driver, uploads)
        except Exception as exc:
            for _, future in batch:
                _settle(future, exc=exc)
            return False
        written = [o for o in inserted.values() if not isinstance(o, BaseException)]
        for upload, future in batch:
            outcome = inserted.get(upload.id)
            if isinstance(outcome, BaseException):
                _settle(future, exc=outcome)
            else:
                _settle(future, result=outcome)
        # Answered first: committed is what an upload promises. The announcement only tells the
        # streams and the workers sooner than replay and the reaper would.
        if not written:
            return True
        try:
            events = [_uploaded_payload(doc, event) for doc, event in written]
            tasks = await self._now([_validate_task(doc) for doc, _ in written])
            if jobs.shares_events_redis():  # events and tasks in one round trip
                await jobs.send_async(tasks, events=messages([encode(e) for e in events]))
            else:
                await publish_async(events)
                await jobs.send_async(tasks)
        except Exception:  # a writer must go on to the uploads still waiting for it
            log.exception(
                "announcing %d uploads failed; replay and the reaper cover it", len(written)
            )
        return True

    async def _now(self, tasks: list[jobs.Job]) -> list[jobs.Job]:
        """The messages to send now: each task alone while its queue has none waiting (after
        what lingers); the others linger (see the module's docstring), and go once
        MAX_PER_MESSAGE have gathered."""
        now: list[jobs.Job] = []
        for job in tasks:
            depth = await jobs.backlog(job.queue)
            if depth is None or depth < 1:
                now.append(job)
            else:
                self.lingering.append(job)
        if now and self.lingering:  # what lingers goes first: nobody overtakes it
            now = self._take_lingering() + now
        elif len(self.lingering) >= MAX_PER_MESSAGE:
            now = self._take_lingering()
        elif self.lingering and self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(LINGER_SECONDS, self._linger_over)
        return now

    def _take_lingering(self) -> list[jobs.Job]:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        lingering, self.lingering = self.lingering, []
        return merged(lingering)

    def _linger_over(self) -> None:
        self.timer = None
        task = asyncio.get_running_loop().create_task(self.flush(), name="upload-tasks")
        self.flushing.add(task)
        task.add_done_callback(self.flushing.discard)

    async def flush(self) -> None:
        """Send whatever lingers now."""
        messages = self._take_lingering()
        if messages and not await jobs.send_async(messages):
            log.warning("%d lingering task message(s) lost; the reaper covers them", len(messages))


def merged(tasks: list[jobs.Job]) -> list[jobs.Job]:
    """Tasks of the same name and queue as messages of up to MAX_PER_MESSAGE documents each,
    in the order given."""
    by_kind: dict[tuple[str, str], list[uuid.UUID]] = {}
    for job in tasks:
        assert job.document_id is not None
        by_kind.setdefault((job.task, job.queue), []).extend((job.document_id, *job.more))
    messages = []
    for (task, queue), ids in by_kind.items():
        for at in range(0, len(ids), MAX_PER_MESSAGE):
            first, *more = ids[at : at + MAX_PER_MESSAGE]
            messages.append(jobs.Job(task, first, queue, more=tuple(more)))
    return messages


def _validate_task(doc: dict[str, Any]) -> jobs.Job:
    queue = jobs.queue_for(Stage.VALIDATE, None, doc["size_bytes"])
    return jobs.Job(jobs.stage_task(Stage.VALIDATE), doc["id"], queue)


async def _insert(
    driver: Any, uploads: list[WholeUpload]
) -> dict[uuid.UUID, Inserted | BaseException]:
    try:
        return dict(await repo.insert_whole(driver, uploads))
    except asyncpg.PostgresError:
        if len(uploads) == 1:
            raise
    # Something in the batch was refused: find it, and write the others.
    log.warning("a batch of %d uploads failed; writing them one by one", len(uploads))
    outcome: dict[uuid.UUID, Inserted | BaseException] = {}
    for upload in uploads:
        try:
            outcome.update(await repo.insert_whole(driver, [upload]))
        except asyncpg.PostgresError as exc:
            outcome[upload.id] = exc
    return outcome


def _uploaded_payload(doc: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    return payload(
        id=event["event_id"],
        document_id=doc["id"],
        owner_id=doc["owner_id"],
        type="document.uploaded",
        status=doc["status"],
        stage=doc["stage"],
        progress=doc["progress"],
        message=event["event_message"],
        data=event["event_data"],
        actor=event["event_actor"],
        created_at=event["event_created_at"],
    )


def _settle(
    future: asyncio.Future[Inserted | None],
    *,
    result: Inserted | None = None,
    exc: BaseException | None = None,
) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


_writers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Writer] = (
    weakref.WeakKeyDictionary()
)


async def flush() -> None:
    """Send the tasks that linger in this event loop (before the process stops)."""
    writer = _writers.get(asyncio.get_running_loop())
    if writer is not None:
        await writer.flush()


async def write(upload: WholeUpload) -> Inserted | None:
    """Write one whole upload with whatever else is ready; None when it inserted nothing (its
    account cannot upload, or its Idempotency-Key is taken)."""
    loop = asyncio.get_running_loop()
    writer = _writers.get(loop)
    if writer is None:
        writer = _writers[loop] = _Writer()
    return await writer.submit(upload)
