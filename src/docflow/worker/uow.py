"""Sessions for the worker: a unit of work (commit, then publish the events and send the tasks
it queued), and the autocommit connection of the stage hot path."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, cast

import psycopg
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import Session

from docflow import jobs
from docflow.config import get_settings
from docflow.db import sync_session_factory, take_outbox
from docflow.events.publisher import payloads_of, publish_sync
from docflow.worker.background import publisher

# A pooled connection idle longer than this is pinged at checkout (the server may have restarted
# meanwhile); a busy worker reuses its connections within milliseconds and pays no ping.
PING_AFTER_IDLE = 2.0


@contextmanager
def unit_of_work() -> Iterator[Session]:
    # A transaction this process kept open between documents may hold the rows this one needs.
    publisher().wait_committed()
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


class _LazySession:
    """A Session made on first use: a stage's inputs are mostly in hand already (read with the
    claim, or carried from the stage before), and making a Session costs more than loading
    them does."""

    __slots__ = ("session",)

    def __init__(self) -> None:
        self.session: Session | None = None

    def __getattr__(self, name: str) -> Any:
        if self.session is None:
            publisher().wait_committed()  # it may read what a kept transaction wrote
            self.session = Session(hot_engine(), expire_on_commit=False)
        return getattr(self.session, name)


@contextmanager
def hot_session() -> Iterator[Session]:
    """A session for reading on the stage path (connected, and made, only if used)."""
    lazy = _LazySession()
    try:
        yield cast(Session, lazy)
    finally:
        if lazy.session is not None:
            lazy.session.close()


@contextmanager
def hot_connection() -> Iterator[psycopg.Connection[Any]]:
    """The pooled psycopg connection itself, for the one-statement transitions: no Session, no
    result metadata per statement. Driver errors come out as SQLAlchemy's (the tasks retry on
    its OperationalError), and a connection the server dropped is discarded, not pooled."""
    engine = hot_engine()
    fairy = engine.raw_connection()
    try:
        yield cast("psycopg.Connection[Any]", fairy.driver_connection)
    except psycopg.Error as exc:
        dialect = engine.dialect
        lost = dialect.is_disconnect(exc, fairy.dbapi_connection, None)  # type: ignore[arg-type]
        if lost:
            fairy.invalidate(exc)
        raise DBAPIError.instance(
            None, None, exc, psycopg.Error, connection_invalidated=lost, dialect=dialect
        ) from exc
    finally:
        fairy.close()
