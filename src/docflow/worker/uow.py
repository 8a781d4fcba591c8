"""Sessions for the worker: a unit of work (commit, then publish the events and send the tasks
it queued), and the autocommit session of the stage hot path."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session

from docflow import jobs
from docflow.config import get_settings
from docflow.db import sync_session_factory, take_outbox
from docflow.events.publisher import payloads_of, publish_sync

# A pooled connection idle longer than this is pinged at checkout (the server may have restarted
# meanwhile); a busy worker reuses its connections within milliseconds and pays no ping.
PING_AFTER_IDLE = 2.0


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


@lru_cache
def hot_engine() -> Engine:
    """Autocommit: each statement of the stage path is its own transaction, so a one-statement
    state change costs one round trip (no BEGIN, no COMMIT)."""
    engine = create_engine(
        get_settings().sync_database_url,
        isolation_level="AUTOCOMMIT",
        pool_size=2,
        max_overflow=4,
        connect_args={
            "connect_timeout": 5,
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
        },
    )
    event.listen(engine, "checkin", _checked_in)
    event.listen(engine, "checkout", _check_out)
    return engine


def _checked_in(_dbapi_connection: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _check_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    if dbapi_connection.closed or dbapi_connection.broken:
        raise DisconnectionError("closed connection")
    idle_since = record.info.get("idle_since")
    if idle_since is not None and time.monotonic() - idle_since > PING_AFTER_IDLE:
        try:
            dbapi_connection.execute("select 1")
        except Exception as exc:
            raise DisconnectionError("the server closed this pooled connection") from exc


@contextmanager
def hot_session() -> Iterator[Session]:
    with Session(hot_engine(), expire_on_commit=False) as session:
        yield session
