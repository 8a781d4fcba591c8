"""Engines and sessions: async for the API, synchronous for the worker and the reaper."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, sessionmaker

from docflow.config import get_settings

OUTBOX_KEY = "docflow_outbox"


@lru_cache
def async_engine() -> AsyncEngine:
    settings = get_settings()
    engine = create_async_engine(
        settings.async_database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_overflow,
        pool_timeout=10,
        connect_args={"timeout": 5, "command_timeout": 60},
    )
    event.listen(engine.sync_engine, "checkout", _refuse_closed)
    return engine


def _refuse_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection the server has closed (a restart, an idle timeout) is replaced at
    checkout. asyncpg notices the closed socket itself, so unlike `pool_pre_ping` this costs no
    round trip; a connection that dies mid-request still fails that request, and SQLAlchemy then
    invalidates the rest of the pool."""
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


@lru_cache
def async_session_factory() -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(async_engine(), expire_on_commit=False)


@lru_cache
def sync_engine() -> Engine:
    return create_engine(
        get_settings().sync_database_url,
        pool_pre_ping=True,
        pool_size=4,
        max_overflow=4,
        # A worker host cut off mid-transaction must not hold a document's row lock for hours:
        # the server ends such a session after a minute.
        connect_args={
            "connect_timeout": 5,
            "options": "-c idle_in_transaction_session_timeout=60000",
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
        },
    )


@lru_cache
def sync_session_factory() -> sessionmaker[Session]:
    return sessionmaker(sync_engine(), expire_on_commit=False)


def outbox(session: Session | AsyncSession) -> list[Any]:
    """What to publish or enqueue once this session's transaction commits (invariants 2 and 3)."""
    info = session.info if isinstance(session, Session) else session.sync_session.info
    items: list[Any] = info.setdefault(OUTBOX_KEY, [])
    return items


def take_outbox(session: Session | AsyncSession) -> list[Any]:
    items = list(outbox(session))
    outbox(session).clear()
    return items
