"""A stage transition's COMMIT, sent without waiting for it.

A worker that moves a document on (and claims the next) has the statement's result at once; the
COMMIT that makes it durable then costs the database a WAL flush, a millisecond or more on a busy
disk, in which the worker would sit idle. Here the COMMIT goes out before the worker goes on
(so it happens even if the worker dies the moment after), and the publisher thread waits for it:
only then are the transaction's events published (DESIGN.md invariant 2) and its connection
given back to the pool. Until then the rows are locked and invisible, as in any transaction.

A COMMIT that fails (the database went away) publishes nothing; the worker learns of it at its
next statement (`check`) and its task retries the message, as after any database error. The
documents whose change was lost are where they were before it: claimable again, or held under
a lease that runs out for the reaper.

Under a backlog the transaction that finishes one document and claims the next may also stay
open for the next one's completion (`hot_transaction(keep=True)`, for KEEP_SECONDS at most), so
that a run of small documents shares one BEGIN, one COMMIT, one WAL flush and one publish. Each
document then reaches review when that COMMIT settles, within KEEP_SECONDS and a document of
finishing; a worker lost meanwhile loses that much work, which the reaper resumes as above.
"""

from __future__ import annotations

import select
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import psycopg
from psycopg import pq
from sqlalchemy.exc import DBAPIError, OperationalError

from docflow.worker.background import Committing, publisher
from docflow.worker.uow import hot_engine

# How long the publisher waits for a COMMIT before it counts it as lost.
COMMIT_WAIT_SECONDS = 30.0
# How long after its BEGIN a transaction may still be kept open for the next document.
KEEP_SECONDS = 0.05


class Transaction:
    """An open transaction on a pooled connection: `conn` for the statements (which begin it),
    `publish` for the events that go out once it has committed."""

    def __init__(self, engine: Any, fairy: Any) -> None:
        self.engine, self.fairy = engine, fairy
        self.conn = cast("psycopg.Connection[Any]", fairy.driver_connection)
        self.payloads: list[dict[str, Any]] = []
        self.began = time.monotonic()
        self.kept = False  # it has been kept open once: it carries an earlier document's work

    def publish(self, payloads: list[dict[str, Any]]) -> None:
        self.payloads += payloads

    def commit(self) -> Committing:
        """Send the COMMIT (without waiting for it): what the publisher thread settles."""
        try:
            _send_commit(self.conn)
        except psycopg.Error as exc:
            self.fairy.invalidate(exc)
            self.fairy.close()
            return _Unsent(exc)
        return PendingCommit(self.fairy, self.payloads)


class _Unsent:
    """A COMMIT that could not be sent: it publishes nothing, and the task retries."""

    payloads: list[dict[str, Any]] = []

    def __init__(self, exc: psycopg.Error) -> None:
        self.exc = exc

    def settle(self) -> str | None:
        return str(self.exc) or type(self.exc).__name__


class PendingCommit:
    """A transaction whose COMMIT is on its way, with the events it will publish."""

    def __init__(self, fairy: Any, payloads: list[dict[str, Any]]) -> None:
        self.fairy, self.payloads = fairy, payloads

    def settle(self) -> str | None:
        """Wait for the COMMIT's answer and give the connection back (any thread); None when
        it committed, else what went wrong."""
        error: str | None = None
        try:
            pgconn = cast("psycopg.Connection[Any]", self.fairy.driver_connection).pgconn
            while True:
                pgconn.consume_input()
                if not pgconn.is_busy():
                    break
                ready, _, _ = select.select([pgconn.socket], [], [], COMMIT_WAIT_SECONDS)
                if not ready:
                    raise psycopg.OperationalError("no answer to COMMIT")
            while (result := pgconn.get_result()) is not None:
                if result.status != pq.ExecStatus.COMMAND_OK and error is None:
                    error = (result.error_message or b"COMMIT failed").decode(errors="replace")
        except (psycopg.Error, OSError) as exc:
            error = str(exc) or type(exc).__name__
            self.fairy.invalidate(exc)
        finally:
            self.fairy.close()
        return error


@contextmanager
def hot_transaction(*, keep: bool = False) -> Iterator[Transaction]:
    """A transaction for one of the stage path's state changes; its COMMIT is sent on the way
    out and settled by the publisher thread. Statements run in it with `begin=True` (the first
    begin it). Driver errors come out as SQLAlchemy's, as from `uow.hot_connection`, and roll
    the transaction back.

    `keep`: the transaction may stay open instead (until KEEP_SECONDS after its BEGIN), and
    the process's next hot transaction goes on in it: the documents of a message that finish in
    quick succession share one BEGIN, one COMMIT, one WAL flush and one publish. Whoever waits
    for this process's commits sends its COMMIT first (`_Publisher.release_kept`). Should a
    statement in it fail, what it carried is rolled back with it, and the error is a retryable
    one: the message runs again (on its retry, nothing is kept)."""
    pub = publisher()
    with pub.kept_lock:
        check()
        tx = cast("Transaction | None", pub.take_kept())
        if tx is None:
            # What this process's transactions still on their way changed is not visible to a
            # new statement's snapshot until they have committed: this one may read it (a
            # document's completion reads the claim that came before).
            pub.wait_committed()
            engine = hot_engine()
            tx = Transaction(engine, engine.raw_connection())
        conn = tx.conn
        try:
            yield tx
        except psycopg.Error as exc:
            lost = _roll_back(tx.engine, tx.fairy, conn, exc)
            if tx.kept:
                raise OperationalError("a kept transaction", None, exc) from exc
            raise _translated(tx.engine, exc, lost=lost) from exc
        except BaseException as exc:
            _roll_back(tx.engine, tx.fairy, conn, exc)
            raise
        if conn.pgconn.transaction_status != pq.TransactionStatus.INTRANS:
            tx.fairy.close()  # nothing ran in it (or it ended already): nothing to wait for
            pub.publish(tx.payloads)
            return
        if keep and time.monotonic() - tx.began < KEEP_SECONDS:
            tx.kept = True
            pub.keep(tx)
            return
        committing = tx.commit()
        if isinstance(committing, _Unsent):
            raise _translated(tx.engine, committing.exc, lost=True) from committing.exc
        pub.after_commit(committing)


def check(*, clear: bool = False) -> None:
    """Raise (as a retryable database error) if a COMMIT this process sent has failed since
    the task began; `clear`: and forget it (the task that ends here retries for it)."""
    failure = publisher().failure(clear=clear)
    if failure is not None:
        raise OperationalError("COMMIT", None, psycopg.OperationalError(failure))


def _send_commit(conn: psycopg.Connection[Any]) -> None:
    pgconn = conn.pgconn
    pgconn.send_query(b"COMMIT")
    while pgconn.flush():  # 1 while the socket would block
        select.select([], [pgconn.socket], [], COMMIT_WAIT_SECONDS)


def _roll_back(engine: Any, fairy: Any, conn: psycopg.Connection[Any], exc: BaseException) -> bool:
    """End the transaction after `exc` and give the connection back (or drop it, when the
    server is gone); whether it was lost."""
    lost = isinstance(exc, psycopg.Error) and bool(
        engine.dialect.is_disconnect(exc, fairy.dbapi_connection, None)
    )
    if not lost:
        try:
            if not conn.closed and conn.pgconn.transaction_status != pq.TransactionStatus.IDLE:
                conn.execute(b"ROLLBACK")
        except psycopg.Error as rollback_exc:
            lost = True
            exc = rollback_exc
    if lost:
        fairy.invalidate(exc)
    fairy.close()
    return lost


def _translated(engine: Any, exc: psycopg.Error, *, lost: bool) -> Exception:
    return DBAPIError.instance(
        None, None, exc, psycopg.Error, connection_invalidated=lost, dialect=engine.dialect
    )
