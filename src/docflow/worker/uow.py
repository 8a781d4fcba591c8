"""A synchronous unit of work: commit, then publish the events and send the tasks it queued."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from docflow import jobs
from docflow.db import sync_session_factory, take_outbox
from docflow.events.publisher import payloads_of, publish_sync


@contextmanager
def unit_of_work() -> Iterator[Session]:
    with sync_session_factory()() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            take_outbox(session)
            raise
        items = take_outbox(session)
    publish_sync(payloads_of(items))
    for item in items:
        if isinstance(item, jobs.Job):
            jobs.send(item)
