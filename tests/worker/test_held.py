"""A fast chain's stage completions are held back and committed together (worker/held.py).

What a person sees must not change: every event, in order, each at the time it happened; a
stage that runs long shows its start while it runs; a failure after held stages fails the
document at the right stage with its reason. The stages run here in this process, on
documents no worker is told about.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest

from docflow.models import Stage
from docflow.pipeline.types import StageError
from docflow.worker import stages
from docflow.worker.runner import run_stage
from tests.conftest import Infra
from tests.helpers import published
from tests.worker import stored
from tests.worker.stored import events_of

TEXT = (
    "Invoice 2041 for consulting services. Total due: 1,200.00 EUR by 30 June.\n"
    "Please pay to the account below; questions to billing@example.com.\n"
) * 3
FLOW = [
    ("stage.started", "validate"),
    ("stage.completed", "validate"),
    ("stage.started", "extract"),
    ("stage.completed", "extract"),
    ("stage.started", "analyze"),
    ("stage.completed", "analyze"),
    ("stage.started", "categorize"),
    ("stage.completed", "categorize"),
    ("document.review", None),
]


@pytest.fixture
def document(infra: Infra) -> uuid.UUID:  # noqa: ARG001  (its database and Redis)
    """An uploaded text document, stored in the database, with no task sent for it."""
    return stored.stored_document(TEXT.encode())


def test_a_fast_chain_writes_and_publishes_every_event_in_order_at_its_time(
    document: uuid.UUID, channel: Any
) -> None:
    run_stage(document, Stage.VALIDATE, "held-fast", "documents")

    doc = stored.document(document)
    assert doc.status == "review"
    events = events_of(document)
    assert [(e.type, e.stage) for e in events] == FLOW
    assert [e.data.get("attempt") for e in events if e.type == "stage.started"] == [1] * 4
    assert events[2].message == "Extracting text…"
    times = [e.created_at for e in events]
    assert times == sorted(times)
    # Each held event carries the moment it happened, the one the timings record.
    timings = doc.timings
    assert events[1].created_at == datetime.fromisoformat(timings["validate"]["finished_at"])
    assert events[2].created_at == datetime.fromisoformat(timings["extract"]["started_at"])
    mine = [p for p in published(channel) if p["document_id"] == str(document)]
    assert [(p["id"], p["type"]) for p in mine if p["type"] != "stage.progress"] == [
        (e.id, e.type) for e in events
    ]
    assert [p["created_at"] for p in mine if p["id"] is not None] == [
        e.created_at.isoformat() for e in events
    ]


def test_a_long_stage_shows_its_start_while_it_runs(
    document: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = stages.SPECS[Stage.ANALYZE]

    def slow(inputs: Any, progress: Any) -> Any:
        time.sleep(1.5)
        return spec.compute(inputs, progress)

    monkeypatch.setitem(stages.SPECS, Stage.ANALYZE, replace(spec, compute=slow))
    worker = threading.Thread(target=run_stage, args=(document, Stage.VALIDATE, "held-slow"))
    worker.start()
    try:
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and stored.document(document).stage != "analyze":
            time.sleep(0.05)
        running = stored.document(document)
        assert (running.stage, running.status) == ("analyze", "processing")
        assert [(e.type, e.stage) for e in events_of(document)] == FLOW[:5]
    finally:
        worker.join(10)
    assert stored.document(document).status == "review"
    assert [(e.type, e.stage) for e in events_of(document)] == FLOW


def test_a_failure_after_held_stages_fails_the_document_at_its_stage(
    document: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = stages.SPECS[Stage.ANALYZE]

    def broken(_inputs: Any, _progress: Any) -> Any:
        raise StageError("The text cannot be analysed.")

    monkeypatch.setitem(stages.SPECS, Stage.ANALYZE, replace(spec, compute=broken))
    run_stage(document, Stage.VALIDATE, "held-fail", "documents")

    doc = stored.document(document)
    reason = "The text cannot be analysed."
    assert (doc.status, doc.stage, doc.error) == ("failed", "analyze", reason)
    assert [(e.type, e.stage) for e in events_of(document)] == [
        *FLOW[:5],
        ("stage.failed", "analyze"),
        ("document.failed", "analyze"),
    ]
