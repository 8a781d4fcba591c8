"""The stage path sends its statements straight to the driver. Its failures must still come out
as SQLAlchemy's (the stage tasks retry on its OperationalError, so a database restart delays
documents instead of failing them), and a connection the server dropped must not go back into
the pool for the next document."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from tests.conftest import Infra


def _backend(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("select pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])


def test_a_dropped_connection_is_a_retryable_error_and_is_replaced(infra: Infra) -> None:
    from docflow.worker.uow import hot_connection, hot_engine

    hot_engine().dispose()  # one pooled connection: the next checkout is the one dropped
    with hot_connection() as conn:
        dropped = _backend(conn)
    admin = create_engine(infra.database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as other:
        other.execute(text("select pg_terminate_backend(:pid)"), {"pid": dropped})
    admin.dispose()

    with pytest.raises(OperationalError), hot_connection() as conn:
        conn.execute("select 1")
    with hot_connection() as conn:
        assert _backend(conn) != dropped


@pytest.mark.usefixtures("infra")
def test_a_failed_statement_leaves_the_connection_usable() -> None:
    from docflow.worker.uow import hot_connection

    with pytest.raises(ProgrammingError), hot_connection() as conn:
        conn.execute("select no_such_column from documents")
    with hot_connection() as conn:
        assert conn.execute("select 41 + 1").fetchone() == (42,)
