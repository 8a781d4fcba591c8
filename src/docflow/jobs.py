"""Send Celery tasks by name, only after the transaction that made them runnable commits.

The API never imports the worker package: tasks are addressed by name. If the broker is
unreachable the send is dropped and logged; the reaper finds the document and enqueues it later.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import redis.asyncio as aioredis
from celery import Celery
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from docflow.config import get_settings
from docflow.db import outbox
from docflow.models import Document, Stage

log = logging.getLogger(__name__)
QUEUE = "documents"


@dataclass(frozen=True, slots=True)
class Job:
    """A task by name. A stage task names its document, and `more` documents it runs after
    that one, in order (the upload intake merges the tasks of a backlog into one message)."""

    task: str
    document_id: uuid.UUID | None
    queue: str = QUEUE
    kwargs: dict[str, Any] = field(default_factory=dict)
    more: tuple[uuid.UUID, ...] = ()

    @property
    def args(self) -> list[str]:
        if self.document_id is None:
            return []
        return [str(self.document_id), *(str(more) for more in self.more)]


def stage_task(stage: Stage | str) -> str:
    return f"documents.{Stage(stage).value}"


def queue_for(stage: Stage, kind: str | None, size_bytes: int) -> str:
    """Extraction of images (OCR) and of large files runs on the heavy queue."""
    settings = get_settings()
    heavy = stage is Stage.EXTRACT and (kind == "image" or size_bytes >= settings.heavy_bytes)
    return settings.heavy_queue if heavy else QUEUE


def stage_queues() -> tuple[str, ...]:
    return (QUEUE, get_settings().heavy_queue)


def enqueue_stage(session: Session | AsyncSession, doc: Document, stage: Stage) -> None:
    queue = queue_for(stage, doc.kind, doc.size_bytes)
    outbox(session).append(Job(stage_task(stage), doc.id, queue))


def enqueue(
    session: Session | AsyncSession,
    task: str,
    document_id: uuid.UUID | None = None,
    *,
    queue: str = QUEUE,
    kwargs: dict[str, Any] | None = None,
) -> None:
    """Any task by name, on any queue, sent after the session's transaction commits."""
    outbox(session).append(Job(task, document_id, queue, dict(kwargs or {})))


@lru_cache
def _broker_async() -> aioredis.Redis:
    settings = get_settings()
    return aioredis.Redis.from_url(
        settings.broker_url or settings.redis_url, socket_connect_timeout=1, socket_timeout=1
    )


# An upload asks how deep its queue is; under load that is hundreds of asks a second for a
# number that changes slowly. One read serves for DEPTH_TTL seconds, plus what this process
# sent since (so the position stays exact for one API process).
DEPTH_TTL = 0.25
_depth: dict[str, tuple[float, int]] = {}  # queue -> (read at, depth then)
_sent_since: dict[str, int] = {}
_reading: set[str] = set()  # queues whose depth is being read right now


async def backlog(queue: str = QUEUE) -> int | None:
    """Tasks waiting in a queue, at most DEPTH_TTL old (None when the broker cannot be asked).

    One read at a time per queue: while it is on its way, concurrent uploads take the last
    depth (plus what this process sent since) instead of each asking Redis the same thing."""
    now = time.monotonic()
    cached = _depth.get(queue)
    if cached is not None and (now - cached[0] < DEPTH_TTL or queue in _reading):
        return cached[1] + _sent_since.get(queue, 0)
    _reading.add(queue)
    try:
        depth = int(await _broker_async().llen(f"{get_settings().redis_namespace}:{queue}"))
    except (RedisError, OSError):
        return None
    finally:
        _reading.discard(queue)
    _depth[queue], _sent_since[queue] = (now, depth), 0
    return depth


@lru_cache
def sender() -> Celery:
    """A producer-only Celery app: same broker settings as the worker, no task imports."""
    from docflow.celery_config import configure

    app = Celery("docflow-sender")
    configure(app, get_settings())
    return app


def send(job: Job) -> bool:
    """Send one task through Celery's producer (blocking: call it from a thread in the API)."""
    try:
        sender().send_task(job.task, args=job.args, kwargs=job.kwargs, queue=job.queue)
        _sent_since[job.queue] = _sent_since.get(job.queue, 0) + 1
    except Exception:  # the broker is a hint; the reaper covers a lost send
        log.warning("could not enqueue %s for %s; the reaper will retry", job.task, job.document_id)
        return False
    return True


def count_sent(jobs: list[Job]) -> None:
    """Count messages about to be sent in the queue depth this process reports (`backlog`)."""
    for job in jobs:
        _sent_since[job.queue] = _sent_since.get(job.queue, 0) + 1


async def send_async(
    jobs: list[Job], *, counted: bool = False, events: list[str] | None = None
) -> bool:
    """Send tasks from the event loop: one LPUSH per queue for all of them, no thread hop.

    The messages are Celery's own (protocol 2, from `as_task_v2`) in the envelope kombu's Redis
    transport writes for the anonymous exchange, which is how `send_task` routes a task to a
    named queue: a worker cannot tell them apart. Skipping kombu's producer saves most of an
    upload's broker cost; the reaper still re-sends whatever a failed send lost. `counted`:
    the caller has already counted them (`count_sent`). `events`: channel messages
    (`events.log.messages`) to publish first, in the same round trip (only when the broker is
    the events' Redis).
    """
    if not jobs and not events:
        return True
    settings = get_settings()
    if events and not shares_events_redis():
        raise ValueError("the broker is not the events' Redis")
    prefix = f"{settings.redis_namespace}:"
    by_queue: dict[str, list[str]] = {}
    for job in jobs:
        by_queue.setdefault(job.queue, []).append(_message(job))
    try:
        async with _broker_async().pipeline(transaction=False) as pipe:
            for message in events or ():
                pipe.publish(settings.events_channel, message)
            for queue, messages in by_queue.items():
                # LPUSH a b c leaves c at the head; workers pop the tail, so a goes first.
                pipe.lpush(prefix + queue, *messages)
            await pipe.execute()
    except (RedisError, OSError):
        log.warning("could not enqueue %d task(s); the reaper will retry", len(jobs))
        return False
    if not counted:
        count_sent(jobs)
    return True


def shares_events_redis() -> bool:
    """Whether the broker is the Redis that carries the live events (the usual setup)."""
    settings = get_settings()
    return (settings.broker_url or settings.redis_url) == settings.redis_url


def _message(job: Job) -> str:
    task_id = str(uuid.uuid4())
    if job.document_id is not None and not job.kwargs:  # a stage task: fill in the skeleton
        pieces, body_head, body_tail = _skeleton(job.task, job.queue)
        args = job.args
        # The ids as json.dumps writes a list of strings (uuids need no escaping).
        listed = '", "'.join(args)
        values = {
            _ID: task_id,
            _TAG: str(uuid.uuid4()),
            _ARGSREPR: repr(args),
            _BODY: base64.b64encode(f"{body_head}{listed}{body_tail}".encode()).decode(),
        }
        return "".join([values[p] if i % 2 else p for i, p in enumerate(pieces)])
    return _envelope(job, task_id, str(uuid.uuid4()))


def _envelope(
    job: Job, task_id: str, tag: str, *, argsrepr: str | None = None, body: str | None = None
) -> str:
    """The message as kombu's Redis transport stores it (`body`: the base64 body, if given)."""
    headers, properties, embed = _template(job.task)
    args = job.args
    if body is None:
        body = base64.b64encode(json.dumps([args, job.kwargs, embed]).encode()).decode()
    return json.dumps(
        {
            "body": body,
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": {
                **headers,
                "id": task_id,
                "root_id": task_id,
                "argsrepr": argsrepr if argsrepr is not None else repr(args),
                "kwargsrepr": repr(job.kwargs),
            },
            "properties": {
                **properties,
                "correlation_id": task_id,
                "delivery_info": {"exchange": "", "routing_key": job.queue},
                "delivery_tag": tag,
            },
        }
    )


# Placeholders in a message skeleton: what differs from one stage task's message to the next.
_ID, _TAG, _ARGSREPR, _BODY, _DOC = "@@id@@", "@@tag@@", "@@argsrepr@@", "@@body@@", "@@doc@@"
_SLOTS = re.compile(f"({_ID}|{_TAG}|{_ARGSREPR}|{_BODY})")


@lru_cache(maxsize=64)
def _skeleton(task: str, queue: str) -> tuple[list[str], str, str]:
    """A stage task's message, encoded once with placeholders: (its pieces, literal and
    placeholder in turn, and the body's JSON around the document id). Filling it in costs a
    fraction of encoding the same dicts for every upload, and gives the same text."""
    body_head, body_tail = json.dumps([[_DOC], {}, _template(task)[2]]).split(_DOC)
    text = _envelope(Job(task, None, queue), _ID, _TAG, argsrepr=_ARGSREPR, body=_BODY)
    return _SLOTS.split(text), body_head, body_tail


@lru_cache(maxsize=64)
def _template(task: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A task's headers, properties and body extras as `send_task` would make them; each
    message then only gets its own ids and arguments."""
    import os
    import socket

    app = sender()
    headers, properties, body, _ = app.amqp.as_task_v2(
        "-",
        task,
        [],
        {},
        reply_to=app.thread_oid,
        origin=f"gen{os.getpid()}@{socket.gethostname()}",
        ignore_result=None,  # as send_task leaves it
    )
    properties = {**properties, "delivery_mode": 2, "priority": 0, "body_encoding": "base64"}
    return headers, properties, body[2]
