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

A written batch is announced (its events published, its tasks sent) by one announcer per event
loop, not by its writer: the writer goes straight on to the next batch, and the announcer sends
everything written since its last round trip in one pipeline. (A writer that announced its own
batch held its slot through a Redis round trip; under load all of them could be waiting to
announce while every client waited to be written, and the API idled a fifth of the time.)

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

# At most this many uploads per statement (a 64 KiB file each at most). Small, so that a burst
# becomes several statements in flight side by side and the API parses the next uploads while
# PostgreSQL writes the first (64 made one statement that every client waited on).
MAX_BATCH = 8
# Batches written at the same time, each on its own pooled connection: while one waits for its
# commit to reach the disk (or for the event loop, busy answering the last batch), the next is
# already on its way. With one writer, uploads topped out near 730/s; with four, a writer spent
# more time waiting to announce its batch than writing it.
MAX_WRITERS = 8
# A writer that finds nothing to write keeps its connection this long for the next batch. Under
# load, uploads come in bursts a few milliseconds apart; a writer that gave its connection back
# at each gap (a ROLLBACK round trip, then a checkout) was busy doing so, with every writer
# slot taken, just when the next burst arrived, and the API idled a fifth of the time.
HOLD_SECONDS = 0.25


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
        self.unannounced: list[Inserted] = []  # written, not yet announced
        self.announcer: asyncio.Task[None] | None = None
        self.idle: list[asyncio.Future[None]] = []  # writers holding a connection for more

    async def submit(self, upload: WholeUpload) -> Inserted | None:
        future: asyncio.Future[Inserted | None] = asyncio.get_running_loop().create_future()
        # Read even when nobody waits any more, so an unanswered failure is not logged as lost.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.pending.append((upload, future))
        if not self._wake_idle() and len(self.running) < MAX_WRITERS:
            task = asyncio.get_running_loop().create_task(self._drain(), name="upload-intake")
            self.running.add(task)
            task.add_done_callback(self.running.discard)
        # A client that hangs up cancels only its wait: its upload stays in its batch, and the
        # writer passes over the cancelled future when it answers.
        return await future

    def _wake_idle(self) -> bool:
        """Wake a writer that holds its connection waiting for more; False when none waits.
        (One whose wait has just run out is passed over: it looks at `pending` by itself.)"""
        while self.idle:
            waiting = self.idle.pop()
            if not waiting.done():
                waiting.set_result(None)
                return True
        return False

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
                    # ends it, and the next batch takes a fresh connection, as does one that
                    # finds the server has closed this one while it waited.
                    while await self._more() and not driver.is_closed():
                        if not await self._write(driver, self._take()):
                            break
            except Exception as exc:  # no connection to be had: this batch fails, not all
                for _, future in self._take():
                    _settle(future, exc=exc)

    async def _more(self) -> bool:
        """Whether there is a batch to write, now or within HOLD_SECONDS."""
        loop = asyncio.get_running_loop()
        until = loop.time() + HOLD_SECONDS
        while not self.pending:  # woken, another writer may have taken the batch first
            left = until - loop.time()
            if left <= 0:
                return False
            waiting: asyncio.Future[None] = loop.create_future()
            self.idle.append(waiting)
            try:
                await asyncio.wait_for(waiting, left)
            except TimeoutError:
                pass
            finally:
                if waiting in self.idle:
                    self.idle.remove(waiting)
        return True

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
        if written:
            self.unannounced += written
            if self.announcer is None or self.announcer.done():
                self.announcer = asyncio.get_running_loop().create_task(
                    self._announce(), name="upload-announce"
                )
        return True

    async def _announce(self) -> None:
        """Publish the events and send the tasks of everything written and not yet announced,
        one round trip at a time, until nothing is left."""
        while self.unannounced:
            written, self.unannounced = self.unannounced, []
            try:
                events = [_uploaded_payload(doc, event) for doc, event in written]
                tasks = await self._now([_validate_task(doc) for doc, _ in written])
                if jobs.shares_events_redis():  # events and tasks in one round trip
                    await jobs.send_async(tasks, events=messages([encode(e) for e in events]))
                else:
                    await publish_async(events)
                    await jobs.send_async(tasks)
            except Exception:  # the announcer must go on to the uploads written meanwhile
                log.exception(
                    "announcing %d uploads failed; replay and the reaper cover it", len(written)
                )

    async def _now(self, tasks: list[jobs.Job]) -> list[jobs.Job]:
        """The messages to send now: a task alone while its queue has none waiting, counting
        those this round sends (after what lingers); the others linger (see the module's
        docstring), and go once MAX_PER_MESSAGE have gathered."""
        now: list[jobs.Job] = []
        rest: list[jobs.Job] = []
        # This round's own lone sends count as waiting: once one has gone to an empty queue, the
        # queue is no longer empty (a burst's first round used to send every task alone, each
        # costing a worker a whole Celery message and a claim of its own).
        alone: dict[str, int] = {}
        for job in tasks:
            depth = await jobs.backlog(job.queue)
            if depth is None:
                now.append(job)
            elif depth + alone.get(job.queue, 0) < 1:
                now.append(job)
                alone[job.queue] = alone.get(job.queue, 0) + 1
            else:
                rest.append(job)
        if now and self.lingering:  # what lingers goes first: nobody overtakes it
            now = self._take_lingering() + now
        self.lingering += rest
        if len(self.lingering) >= MAX_PER_MESSAGE:
            now += self._take_lingering()
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
        task = asyncio.get_running_loop().create_task(self._send_lingering(), name="upload-tasks")
        self.flushing.add(task)
        task.add_done_callback(self.flushing.discard)

    async def flush(self) -> None:
        """Announce what is written and send whatever lingers, now."""
        if self.announcer is not None:
            await self.announcer
        await self._send_lingering()

    async def _send_lingering(self) -> None:
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
