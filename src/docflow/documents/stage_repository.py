"""SQL the worker and the reaper use (synchronous): claims, leases, stage outputs."""

from __future__ import annotations

import re
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import pq
from sqlalchemy import func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from docflow import jsontext
from docflow.events.log import payload
from docflow.models import Document, DocumentText, Stage, Status

CLAIMABLE = (Status.UPLOADED.value, Status.PROCESSING.value)


def claim(
    session: Session, document_id: uuid.UUID, stage: Stage, owner: str, lease: int
) -> Document | None:
    """Compare-and-set: take the stage only if it is this document's next step and nobody holds
    a live lease on it. Zero rows means done, rejected, or owned elsewhere."""
    return session.scalars(
        update(Document)
        .where(
            Document.id == document_id,
            Document.stage == stage.value,
            Document.status.in_(CLAIMABLE),
            or_(Document.lease_until.is_(None), Document.lease_until < func.now()),
        )
        .values(
            status=Status.PROCESSING.value,
            lease_owner=owner,
            lease_until=func.now() + timedelta(seconds=lease),
            attempts=Document.attempts + 1,
            updated_at=func.now(),
        )
        .returning(Document)
        .execution_options(synchronize_session=False, populate_existing=True)
    ).one_or_none()


def extend_lease(session: Session, document_id: uuid.UUID, owner: str, lease: int) -> bool:
    """Heartbeat. False when the claim is gone (rejected, or reaped after we stalled)."""
    row = session.execute(
        update(Document)
        .where(
            Document.id == document_id,
            Document.lease_owner == owner,
            Document.status == Status.PROCESSING.value,
        )
        .values(lease_until=func.now() + timedelta(seconds=lease))
        .returning(Document.id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    return row is not None


def lock_owned(
    session: Session, document_id: uuid.UUID, stage: Stage, owner: str
) -> Document | None:
    stmt = (
        select(Document)
        .where(
            Document.id == document_id,
            Document.stage == stage.value,
            Document.status == Status.PROCESSING.value,
            Document.lease_owner == owner,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return session.execute(stmt).scalar_one_or_none()


def lock_running(
    session: Session,
    document_id: uuid.UUID,
    stage: Stage,
    task_id: str | None = None,
    *,
    held_only: bool = False,
) -> Document | None:
    """The document if it is still processing this stage, whoever holds it, or any stage that
    task `task_id` holds (a task runs later stages too when it chains them); `held_only`: only
    a stage that task holds."""
    at_stage = Document.stage == stage.value
    held = Document.lease_owner.endswith(f":{task_id}")
    if held_only:
        where = held
    else:
        where = or_(at_stage, held) if task_id else at_stage
    stmt = (
        select(Document)
        .where(Document.id == document_id, where, Document.status.in_(CLAIMABLE))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return session.execute(stmt).scalar_one_or_none()


def save_text(session: Session, document_id: uuid.UUID, content: str) -> None:
    """Upsert: a second run of the stage overwrites, never duplicates."""
    stmt = insert(DocumentText).values(document_id=document_id, content=content)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[DocumentText.document_id], set_={"content": stmt.excluded.content}
        )
    )


def load_text(session: Session, document_id: uuid.UUID) -> str | None:
    return session.execute(
        select(DocumentText.content).where(DocumentText.document_id == document_id)
    ).scalar_one_or_none()


def expired_leases(session: Session, limit: int = 100) -> Sequence[Document]:
    """Stages whose worker stopped renewing; SKIP LOCKED so concurrent reapers split the work."""
    stmt = (
        select(Document)
        .where(Document.status == Status.PROCESSING.value, Document.lease_until < func.now())
        .order_by(Document.lease_until)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return session.execute(stmt).scalars().all()


def waiting_too_long(session: Session, grace: int, limit: int = 500) -> Sequence[Document]:
    """Runnable documents whose task never started (a send lost between commit and broker)."""
    stmt = (
        select(Document)
        .where(
            Document.status.in_(CLAIMABLE),
            Document.lease_until.is_(None),
            Document.stage.is_not(None),
            Document.enqueued_at < func.now() - timedelta(seconds=grace),
        )
        .order_by(Document.enqueued_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return session.execute(stmt).scalars().all()


def now(session: Session) -> object:
    return session.execute(text("select now()")).scalar_one()


# ---- the hot path: one statement per state change ---------------------------------------------
#
# A stage's claim, its completion and the next stage's start each change the document row and
# write their events. Each such change is one data-modifying statement (UPDATE … RETURNING, with
# the events, and for extraction the text, inserted in CTEs over its result), run in autocommit:
# one statement is one transaction, so the row and its events still commit together
# (DESIGN.md invariant 2), in one round trip instead of BEGIN, SELECT … FOR UPDATE, UPDATE,
# INSERTs and COMMIT.

STATE_COLUMNS = (
    "id, owner_id, filename, declared_type, kind, size_bytes, attempts, title, status, stage,"
    " progress, message, language, word_count, reading_time_minutes, summary, keywords, fields"
)


@dataclass(frozen=True, slots=True)
class DocState:
    """The columns the worker reads from a document it holds, as of its last statement."""

    id: uuid.UUID
    owner_id: uuid.UUID
    filename: str
    declared_type: str | None
    kind: str | None
    size_bytes: int
    attempts: int
    title: str | None
    status: str
    stage: str | None
    progress: int
    message: str | None
    language: str | None
    word_count: int | None
    reading_time_minutes: float | None
    summary: str | None
    keywords: list[str] | None
    fields: dict[str, Any] | None


# The statement returns the state columns first, in DocState's order.
_STATE_WIDTH = len(DocState.__slots__)
assert tuple(DocState.__slots__) == tuple(c.strip() for c in STATE_COLUMNS.split(","))

# What a document's last change in a task reads back: what its events need (Change.last).
LAST_COLUMNS = "id, owner_id, attempts, message"
_LAST_WIDTH = len(LAST_COLUMNS.split(","))


def _last_state(
    document_id: uuid.UUID, owner_id: uuid.UUID, attempts: int, message: str | None
) -> DocState:
    """The state a last change reads back; nothing reads the other columns."""
    return DocState(
        document_id,
        owner_id,
        "",
        None,
        None,
        0,
        attempts,
        None,
        "",
        None,
        0,
        message,
        None,
        None,
        None,
        None,
        None,
        None,
    )


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event row written with a transition. `message=None`: the document's new message;
    `with_attempt`: its data gets the document's attempt count after the change; `at`: when it
    happened (ISO 8601), for a change written after the fact; None: the statement's time."""

    type: str
    status: str
    stage: str | None
    progress: int
    message: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    with_attempt: bool = False
    at: str | None = None


@dataclass(frozen=True, slots=True)
class Transitioned:
    doc: DocState
    events: list[dict[str, Any]]  # published after the statement (= its transaction) returns
    taxonomy: dict[str, str | None] | None = None
    model_head: tuple[int, int, list[str]] | None = None  # version, samples, classes
    original: bytes | None = None  # a small original, when asked for


# Where the claim conditions live: a fresh claim (the stage is next and nobody holds a live
# lease) or a stage this owner holds. The stage path's times are the statement's, not the
# transaction's (`now()`): a worker may finish several documents in one transaction
# (worker/committer.py), and each change and event is dated when it was written.
_CLAIMABLE_SQL = (
    "stage = :stage AND status IN ('uploaded', 'processing')"
    " AND (lease_until IS NULL OR lease_until < statement_timestamp())"
)
_OWNED_SQL = "stage = :stage AND status = 'processing' AND lease_owner = :owner"

# The categorize stage's inputs besides the document, read in the statement that starts it: the
# taxonomy (a few rows) and the newest classifier's head (the model itself is cached per version).
_CATEGORIZE_INPUTS = (
    ", (SELECT coalesce(jsonb_agg(jsonb_build_array(c.name, c.rule_key) ORDER BY c.id), '[]')"
    " FROM categories c) AS taxonomy{n},"
    " (SELECT jsonb_build_array(m.version, m.sample_count, m.classes) FROM classifier_models m"
    " ORDER BY m.version DESC LIMIT 1) AS model_head{n}"
)


@lru_cache(maxsize=128)
def _positional(sql: str) -> tuple[bytes, tuple[str, ...]]:
    """`:name` placeholders as PostgreSQL's own `$1, $2, …`, and the names in that order: a
    handful of distinct texts, each converted once per process and sent as they are, without
    SQLAlchemy compiling them or the driver parsing them (psycopg parses a named-parameter
    query on every execute once it is longer than 4 KiB, as the two-change one is)."""
    names: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        return f"${names.setdefault(match.group(1), len(names) + 1)}"

    text = re.sub(r"(?<![:\w]):(\w+)", number, sql)
    return text.encode(), tuple(names)


_cursors: weakref.WeakKeyDictionary[psycopg.Connection[Any], psycopg.RawCursor[Any]] = (
    weakref.WeakKeyDictionary()
)


def _cursor(conn: psycopg.Connection[Any]) -> psycopg.RawCursor[Any]:
    """One cursor per pooled connection, kept: a cursor learns how to load each column type
    once (a fresh one set up a loader for every column of every result, two dozen a time)."""
    cursor = _cursors.get(conn)
    if cursor is None or cursor.closed:
        cursor = _cursors[conn] = psycopg.RawCursor(conn)
    return cursor


def _execute(
    conn: psycopg.Connection[Any], sql: str, bind: dict[str, Any], *, begin: bool = False
) -> Any:
    """Run a statement of `:name` placeholders; its one row (None when it has none). Straight
    to the driver: a tuple row, no result metadata or session per statement. `begin`: open a
    transaction first (the caller commits it)."""
    text, names = _positional(sql)
    params = [bind[name] for name in names]
    cursor = _cursor(conn)
    if begin and conn.pgconn.transaction_status == pq.TransactionStatus.IDLE:
        # Its own round trip, straight through libpq: in psycopg's pipeline mode (one round
        # trip for both) the wait for the answer spins on the writable socket, and costs
        # more CPU than the round trip it saves.
        began = conn.pgconn.exec_(b"BEGIN")
        if began.status != pq.ExecStatus.COMMAND_OK:
            message = (began.error_message or b"BEGIN failed").decode(errors="replace")
            raise psycopg.OperationalError(message)
    # Results in binary: a small original comes as its bytes, not as hex text that both
    # ends would encode and parse (about half of a claim's CPU on either side).
    cursor.execute(text, params, prepare=True, binary=True)
    return cursor.fetchone()


# A small original (database storage), read with the claim that needs it.
_INLINE_ORIGINAL = (
    ", CASE WHEN {d}.size_bytes <= :inline_max THEN (SELECT string_agg(b.data, ''::bytea"
    " ORDER BY b.seq) FROM document_blobs b WHERE b.document_id = {d}.id) END AS original{n}"
)


@dataclass(frozen=True, slots=True)
class Change:
    """One document's state change: claiming `stage` (or holding it as `owner`), the columns it
    sets (name -> SQL expression over the old row and `params`: fixed code, never user input;
    `updated_at` is always set), its events, and for extraction the text. `categorize_inputs`:
    read the categorize stage's inputs too; `inline_original`: an original of at most that many
    bytes kept in the database is read with it."""

    document_id: uuid.UUID
    stage: Stage
    owner: str
    actor: str
    claim: bool
    sets: dict[str, str]
    params: dict[str, Any]
    events: list[NewEvent]
    text_content: str | None = None
    categorize_inputs: bool = False
    inline_original: int = 0
    # The document's last change in this task: only what its events need is read back (a
    # result's every column costs the driver a loader to set up, and there are two dozen).
    last: bool = False


def transition(
    conn: psycopg.Connection[Any], change: Change, *, begin: bool = False
) -> Transitioned | None:
    """Change the document and write its events, and the stage's text, in one statement; None
    when the claim is not (or no longer) ours. `begin`: in a transaction the caller commits
    (otherwise the statement is its own)."""
    row = _execute(conn, *_statement([change]), begin=begin)
    return None if row is None else _transitioned(change, list(row))


def transition_then_claim(
    conn: psycopg.Connection[Any], done: Change, then: Change, *, begin: bool = False
) -> tuple[Transitioned | None, Transitioned | None]:
    """`done` (a document's last change for now) and `then` (the claim of the next document a
    task runs) in one statement: one round trip and one commit where there would be two. Each
    side is as `transition` would leave it; a side that matched no row is None."""
    row = _execute(conn, *_statement([done, then]), begin=begin)
    if row is None:
        return None, None
    values = list(row)
    width = _width(done)
    first = None if values[0] is None else _transitioned(done, values[:width])
    second = None if values[width] is None else _transitioned(then, values[width:])
    return first, second


def _width(change: Change) -> int:
    """How many columns `change`'s side of the result has."""
    return (
        (_LAST_WIDTH if change.last else _STATE_WIDTH)
        + 2
        + (2 if change.categorize_inputs else 0)
        + (1 if change.inline_original else 0)
    )


def _statement(changes: list[Change]) -> tuple[str, dict[str, Any]]:
    """One statement for the changes (each its own CTEs, names and parameters suffixed by its
    place), selecting each side's columns side by side in one row."""
    bind: dict[str, Any] = {}
    for n, change in enumerate(changes):
        bind.update(_part_params(change, f"_{n}" if n else ""))
    return _statement_sql(tuple(_shape(change) for change in changes)), bind


# What a change's SQL depends on: its columns' expressions and which extras it has. The few
# shapes the stage path uses are each built once per process.
Shape = tuple[tuple[tuple[str, str], ...], bool, bool, bool, bool, bool]


def _shape(change: Change) -> Shape:
    return (
        tuple(change.sets.items()),
        change.claim,
        change.text_content is not None,
        change.categorize_inputs,
        bool(change.inline_original),
        change.last,
    )


@lru_cache(maxsize=128)
def _statement_sql(shapes: tuple[Shape, ...]) -> str:
    ctes: list[str] = []
    selects: list[str] = []
    for n, shape in enumerate(shapes):
        part_ctes, select = _part_sql(shape, f"_{n}" if n else "")
        ctes += part_ctes
        selects.append(select)
    if len(selects) == 1:
        return "WITH " + ", ".join(ctes) + " " + selects[0]
    joined = " FULL JOIN ".join(
        f"({select}) AS side{n}" + (" ON true" if n else "") for n, select in enumerate(selects)
    )
    return "WITH " + ", ".join(ctes) + " SELECT * FROM " + joined


def _part_sql(shape: Shape, n: str) -> tuple[list[str], str]:
    """A change's CTEs (d, e, t) and its SELECT, every name suffixed by `n`."""
    sets, claim, with_text, categorize_inputs, inline_original, last = shape
    state_columns = LAST_COLUMNS if last else STATE_COLUMNS

    def p(sql: str) -> str:  # this side's parameter names
        return re.sub(r"(?<![:\w]):(\w+)", rf":\1{n}", sql) if n else sql

    d, e, t = f"d{n}", f"e{n}", f"t{n}"
    assignments = ", ".join(f"{column} = {p(expr)}" for column, expr in sets)
    ctes = [
        f"{d} AS (UPDATE documents SET {assignments}, updated_at = statement_timestamp()"
        f" WHERE id = {p(':document_id')} AND {p(_CLAIMABLE_SQL if claim else _OWNED_SQL)}"
        f" RETURNING {state_columns})",
        f"{e} AS (INSERT INTO document_events"
        " (document_id, owner_id, type, status, stage, progress, message, data, actor,"
        " created_at)"
        f" SELECT {d}.id, {d}.owner_id, v.type, v.status, v.stage, v.progress,"
        f" coalesce(v.message, {d}.message),"
        f" CASE WHEN v.with_attempt THEN v.data || jsonb_build_object('attempt', {d}.attempts)"
        f" ELSE v.data END, {p(':actor')}, coalesce(v.at, statement_timestamp())"
        f" FROM {d} CROSS JOIN jsonb_to_recordset(CAST({p(':events')} AS jsonb)) AS v(ord int,"
        " type text, status text, stage text, progress int, message text, data jsonb,"
        " with_attempt bool, at timestamptz)"
        " ORDER BY v.ord RETURNING id, created_at)",
    ]
    if with_text:
        ctes.append(
            f"{t} AS (INSERT INTO document_texts (document_id, content) SELECT {d}.id,"
            f" {p(':text_content')} FROM {d}"
            " ON CONFLICT (document_id) DO UPDATE SET content = excluded.content)"
        )
    columns = ", ".join(f"{d}.{c.strip()}" for c in state_columns.split(","))
    select = (
        f"SELECT {columns},"
        f" (SELECT array_agg({e}.id ORDER BY {e}.id) FROM {e}) AS event_ids{n},"
        f" (SELECT array_agg({e}.created_at ORDER BY {e}.id) FROM {e}) AS event_at{n}"
    )
    if categorize_inputs:
        select += _CATEGORIZE_INPUTS.format(n=n)
    if inline_original:
        select += p(_INLINE_ORIGINAL.format(d=d, n=n))
    return ctes, select + f" FROM {d}"


def _part_params(change: Change, n: str) -> dict[str, Any]:
    """A change's parameters, every name suffixed by `n`."""
    params: dict[str, Any] = {
        **change.params,
        "document_id": change.document_id,
        "stage": change.stage.value,
        "owner": change.owner,
        "actor": change.actor,
        "events": _events_json(change.events),
    }
    if change.text_content is not None:
        params["text_content"] = change.text_content
    if change.inline_original:
        params["inline_max"] = change.inline_original
    return {f"{k}{n}": v for k, v in params.items()} if n else params


def _events_json(events: list[NewEvent]) -> str:
    return jsontext.dumps(
        [
            {
                "ord": index,
                "type": ev.type,
                "status": ev.status,
                "stage": ev.stage,
                "progress": ev.progress,
                "message": ev.message,
                "data": ev.data,
                "with_attempt": ev.with_attempt,
                "at": ev.at,
            }
            for index, ev in enumerate(events)
        ]
    )


def _transitioned(change: Change, row: list[Any]) -> Transitioned:
    """A change's side of the result row, as the worker holds it."""
    width = _LAST_WIDTH if change.last else _STATE_WIDTH
    doc = _last_state(*row[:width]) if change.last else DocState(*row[:width])
    event_ids, created = row[width] or [], row[width + 1] or []
    payloads = [
        payload(
            id=event_id,
            document_id=doc.id,
            owner_id=doc.owner_id,
            type=ev.type,
            status=ev.status,
            stage=ev.stage,
            progress=ev.progress,
            message=doc.message if ev.message is None else ev.message,
            data={"attempt": doc.attempts, **ev.data} if ev.with_attempt else ev.data,
            actor=change.actor,
            created_at=at,
        )
        for event_id, at, ev in zip(event_ids, created, change.events, strict=False)
    ]
    extra = row[width + 2 : _width(change)]
    taxonomy = head = None
    if change.categorize_inputs:
        taxonomy = {str(name): rule for name, rule in extra.pop(0) or []}
        raw = extra.pop(0)
        head = (int(raw[0]), int(raw[1]), list(raw[2] or [])) if raw else None
    original = None
    if change.inline_original and extra[0] is not None:
        original = bytes(extra[0])
    return Transitioned(doc, payloads, taxonomy, head, original)
