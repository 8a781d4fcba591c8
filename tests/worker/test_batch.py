"""A task message may name several documents (documents/intake.py merges a backlog's tasks):
the worker takes each through its own pipeline, one file's trouble stays its own, and what a
task cannot get to in time goes back to the queue instead of failing or waiting for the reaper.
The stages run here in this process, on documents no worker is told about."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import redis
from billiard.exceptions import TimeLimitExceeded
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from docflow import jobs
from docflow.config import get_settings
from docflow.db import sync_session_factory
from docflow.events.log import events_in
from docflow.models import Document, Stage
from docflow.worker import background, committer, runner, stages
from docflow.worker.runner import run_batch
from docflow.worker.transitions import HOST
from tests.conftest import Infra
from tests.helpers import TO_REVIEW, published, queued_tasks
from tests.worker.stored import document, events_of, stored_document

NOTE = b"Minutes of the planning meeting. Budget approved; next review in March.\n" * 4


@pytest.fixture
def probe_queue(infra: Infra, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:  # noqa: ARG001
    """The stage queue, renamed for this test to one no worker listens to; emptied after."""
    queue = f"probe-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(jobs, "QUEUE", queue)
    yield queue
    client = redis.Redis.from_url(get_settings().redis_url)
    client.delete(f"{get_settings().redis_namespace}:{queue}")
    client.close()


def _queued(queue: str) -> list[tuple[str, list[str]]]:
    """(task name, its document ids) of each message waiting in `queue`, oldest first."""
    return queued_tasks(get_settings().redis_url, f"{get_settings().redis_namespace}:{queue}")


def test_each_document_of_a_message_gets_its_own_pipeline_and_trouble_stays_its_own(
    infra: Infra,  # noqa: ARG001
    probe_queue: str,
) -> None:
    first = stored_document(NOTE, "minutes.txt")
    broken = stored_document(b"%PDF-1.7 this is not a PDF at all", "scan.pdf", "application/pdf")
    last = stored_document(NOTE.replace(b"March", b"April"), "minutes-2.txt")

    run_batch([first, last, broken], Stage.VALIDATE, "batch-three", probe_queue)

    for good in (first, last):
        assert document(good).status == "review"
        assert [e.type for e in events_of(good)] == TO_REVIEW
        assert document(good).attempts == 0
    # The statement that moved one document to review claimed the next (one commit for both).
    assert events_of(last)[0].created_at == events_of(first)[-1].created_at
    assert events_of(broken)[0].created_at == events_of(last)[-1].created_at
    failed = document(broken)
    assert failed.status == "failed" and failed.error  # with its reason, at its stage
    assert [e.type for e in events_of(broken)][-2:] == ["stage.failed", "document.failed"]
    assert events_of(broken)[-1].stage == failed.stage
    assert _queued(probe_queue) == []  # nothing handed over: all of it ran here


def test_a_task_that_has_run_long_hands_the_documents_it_did_not_start_to_a_new_message(
    infra: Infra,  # noqa: ARG001
    probe_queue: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = [stored_document(NOTE, f"note-{n}.txt") for n in range(3)]
    monkeypatch.setattr(runner, "BATCH_SECONDS", 0.0)  # every document after the first is late

    run_batch(ids, Stage.VALIDATE, "batch-late", probe_queue)

    assert document(ids[0]).status == "review"
    for waiting in ids[1:]:
        doc = document(waiting)
        assert (doc.status, doc.stage, doc.lease_owner) == ("uploaded", "validate", None)
        assert events_of(waiting) == []
    assert _queued(probe_queue) == [("documents.validate", [str(i) for i in ids[1:]])]


def test_a_hard_time_limit_fails_what_the_task_held_and_requeues_what_it_never_started(
    infra: Infra,  # noqa: ARG001
    probe_queue: str,
) -> None:
    from docflow.worker import tasks

    stuck, waiting = stored_document(NOTE, "stuck.txt"), stored_document(NOTE, "waiting.txt")
    with sync_session_factory()() as session:
        doc = session.get(Document, stuck)
        assert doc is not None
        doc.status, doc.stage, doc.attempts = "processing", "extract", 1
        doc.lease_owner = "some-host:4242:task-tl-7"
        session.commit()
    tasks.record_final_failure(
        sender=tasks.validate,
        task_id="task-tl-7",
        args=[str(stuck), str(waiting)],
        exception=TimeLimitExceeded(300),
    )

    failed = document(stuck)
    assert (failed.status, failed.stage) == ("failed", "extract")
    limit = get_settings().stage_time_limit
    assert failed.error == f"This stage ran past its {limit} s limit and was stopped."
    assert document(waiting).status == "uploaded"  # not failed for another's sake
    assert _queued(probe_queue) == [("documents.validate", [str(waiting)])]


def test_a_document_whose_run_breaks_fails_alone_and_the_message_goes_on(
    infra: Infra,  # noqa: ARG001
    probe_queue: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before, bad, after = (stored_document(NOTE, f"{n}.txt") for n in ("before", "bad", "after"))
    spec = stages.SPECS[Stage.ANALYZE]

    def apply(doc: Any, result: Any) -> Any:
        if doc.id == bad:
            raise ValueError("a bug, not the file")
        return spec.apply(doc, result)

    monkeypatch.setitem(stages.SPECS, Stage.ANALYZE, replace(spec, apply=apply))

    run_batch([before, bad, after], Stage.VALIDATE, "batch-bug", probe_queue)

    assert document(before).status == document(after).status == "review"
    broken = document(bad)
    assert (broken.status, broken.stage) == ("failed", "analyze")
    assert broken.error == "Processing stopped after an error (ValueError)."
    assert [e.type for e in events_of(bad)][-2:] == ["stage.failed", "document.failed"]


def test_a_commit_that_fails_on_its_way_publishes_nothing_and_the_task_retries(
    infra: Infra,  # noqa: ARG001
    probe_queue: str,
) -> None:
    """The worker sends a transition's COMMIT and goes on (worker/committer.py): one the
    database then refuses must leave the document as it was, tell no stream, and fail the task
    with a retryable error."""
    doc = stored_document(NOTE, "refused.txt")
    channel = redis.Redis.from_url(get_settings().redis_url).pubsub()
    channel.subscribe(get_settings().events_channel)
    try:
        refused = f"NEW.type = 'document.review' AND NEW.document_id = '{doc}'"
        with (
            _deferred(refused, "RAISE EXCEPTION 'refused at commit'"),
            pytest.raises(OperationalError),
        ):
            run_batch([doc], Stage.VALIDATE, "batch-refused", probe_queue)
        published = []
        while (message := channel.get_message(timeout=0.5)) is not None:
            if message["type"] == "message":
                published += [json.loads(t) for t in events_in(message["data"])]
    finally:
        channel.close()
    row = document(doc)
    assert row.status == "processing" and row.stage == "validate"  # as its claim left it
    assert [e.type for e in events_of(doc)] == ["stage.started"]
    assert [p["type"] for p in published if p["document_id"] == str(doc)] == ["stage.started"]


def test_a_document_claimed_by_a_commit_still_on_its_way_is_finished_all_the_same(
    infra: Infra,  # noqa: ARG001
    probe_queue: str,
) -> None:
    """The statement finishing one document claims the next, and its COMMIT settles while the
    next one computes: a slow COMMIT must not make the next document's completion miss its
    own claim (a snapshot taken before that commit would)."""
    first, second = stored_document(NOTE, "one.txt"), stored_document(NOTE, "two.txt")
    with _deferred(
        f"NEW.type = 'stage.started' AND NEW.document_id = '{second}'", "PERFORM pg_sleep(0.5)"
    ):
        run_batch([first, second], Stage.VALIDATE, "batch-slow-commit", probe_queue)
    for doc in (first, second):
        assert document(doc).status == "review"
        assert [e.type for e in events_of(doc)] == TO_REVIEW


@pytest.fixture
def kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a transaction open between documents however long they take (committer.KEEP_SECONDS)
    and let no stage commit what its task holds meanwhile (background.SETTLE_AFTER): which
    documents share a transaction no longer depends on this machine's speed."""
    monkeypatch.setattr(committer, "KEEP_SECONDS", 60.0)
    monkeypatch.setattr(background, "SETTLE_AFTER", 60.0)


def test_documents_finishing_in_quick_succession_share_one_commit_and_miss_nothing(
    infra: Infra,  # noqa: ARG001
    probe_queue: str,
    kept: None,  # noqa: ARG001
    channel: Any,
) -> None:
    ids = [stored_document(NOTE, f"kept-{n}.txt") for n in range(3)]

    run_batch(ids, Stage.VALIDATE, "batch-kept", probe_queue)

    # Each finished in the transaction that claimed it (the one the document before was
    # finished in): one BEGIN, one COMMIT, for all three completions.
    assert len({_writer(i) for i in ids}) == 1
    seen = [p for p in published(channel) if p["type"] != "stage.progress"]  # live-only
    for doc in ids:
        assert document(doc).status == "review"  # seen from another session: committed
        events = events_of(doc)
        assert [e.type for e in events] == TO_REVIEW
        times = [e.created_at for e in events]  # each dated when written, not at the BEGIN
        assert times == sorted(times)
        assert document(doc).updated_at == times[-1]
        assert [p["type"] for p in seen if p["document_id"] == str(doc)] == TO_REVIEW
    assert [p["document_id"] for p in seen if p["type"] == "document.review"] == [
        str(i) for i in ids
    ]


def test_a_retried_message_shares_no_transaction_between_documents(
    infra: Infra,  # noqa: ARG001
    probe_queue: str,
    kept: None,  # noqa: ARG001
) -> None:
    ids = [stored_document(NOTE, f"retried-{n}.txt") for n in range(3)]

    run_batch(ids, Stage.VALIDATE, "batch-retried", probe_queue, keep=False)

    assert all(document(i).status == "review" for i in ids)
    assert len({_writer(i) for i in ids}) == 3


def _writer(document_id: uuid.UUID) -> str:
    """The transaction that wrote the document's row last (its `xmin`)."""
    with sync_session_factory()() as session:
        return str(
            session.execute(
                text("SELECT xmin::text FROM documents WHERE id = :id"), {"id": document_id}
            ).scalar_one()
        )


def test_a_statement_failing_in_a_kept_transaction_loses_only_unpublished_work_and_retries(
    infra: Infra,  # noqa: ARG001
    probe_queue: str,
    kept: None,  # noqa: ARG001
    channel: Any,
) -> None:
    """The second document's completion fails in the transaction that also finishes the first:
    both are rolled back, nothing of it is published, and the error retries the message (as
    after a COMMIT that failed): the first, whose claim had committed, waits for the reaper
    under its lease; the retry, sharing nothing, takes the second to review."""
    first, second = stored_document(NOTE, "one.txt"), stored_document(NOTE, "two.txt")
    refused = f"NEW.type = 'document.review' AND NEW.document_id = '{second}'"
    with _trigger(refused, "RAISE EXCEPTION 'refused once'", deferred=False, once=True):
        with pytest.raises(OperationalError):
            run_batch([first, second], Stage.VALIDATE, "batch-kept-fails", probe_queue)
        seen = published(channel)
        one = document(first)
        assert (one.status, one.lease_owner) == (
            "processing",
            f"{HOST}:{os.getpid()}:batch-kept-fails",
        )
        assert "document.review" not in [e.type for e in events_of(first)]
        assert (document(second).status, events_of(second)) == ("uploaded", [])
        assert "document.review" not in [p["type"] for p in seen]
        assert str(second) not in [p["document_id"] for p in seen]

        run_batch([first, second], Stage.VALIDATE, "batch-kept-fails", probe_queue, keep=False)

    assert document(second).status == "review"
    assert [e.type for e in events_of(second)] == TO_REVIEW
    assert document(first).status == "processing"  # its lease runs out for the reaper


@contextlib.contextmanager
def _deferred(when: str, body: str) -> Iterator[None]:
    """A trigger run at COMMIT for each document_events row matching `when`."""
    with _trigger(when, body):
        yield


@contextlib.contextmanager
def _trigger(when: str, body: str, *, deferred: bool = True, once: bool = False) -> Iterator[None]:
    """A trigger run for each document_events row matching `when`: at COMMIT (`deferred`) or as
    the row is written; `once`, for the first such row only (a sequence counts them, outside any
    transaction)."""
    name = f"at_commit_{uuid.uuid4().hex[:8]}"
    if once:
        body = f"IF nextval('{name}_seq') = 1 THEN {body}; END IF"
    timing = "DEFERRABLE INITIALLY DEFERRED" if deferred else "NOT DEFERRABLE"
    with sync_session_factory()() as session:
        if once:
            session.execute(text(f"CREATE SEQUENCE {name}_seq"))
        session.execute(
            text(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                f" {body}; RETURN NULL; END $$"
            )
        )
        session.execute(
            text(
                f"CREATE CONSTRAINT TRIGGER {name} AFTER INSERT ON document_events"
                f" {timing} FOR EACH ROW WHEN ({when})"
                f" EXECUTE FUNCTION {name}()"
            )
        )
        session.commit()
    try:
        yield
    finally:
        with sync_session_factory()() as session:
            session.execute(text(f"DROP TRIGGER {name} ON document_events"))
            session.execute(text(f"DROP FUNCTION {name}()"))
            session.execute(text(f"DROP SEQUENCE IF EXISTS {name}_seq"))
            session.commit()
