"""The worker's publisher thread (worker/background.py): events go out only after their COMMIT,
in commit order, and a worker about to run its next statement settles a COMMIT the thread has
not got to yet itself instead of waiting for the thread."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from docflow.events.log import payload
from docflow.worker.background import _Publisher
from tests.helpers import published


class _Commit:
    """A COMMIT on its way: settles when `answered` is set, and says which thread settled it."""

    def __init__(self, number: int, answered: threading.Event) -> None:
        self.number, self.answered = number, answered
        self.settled_by: str | None = None
        self.payloads = [
            payload(
                id=number,
                type="stage.completed",
                document_id=uuid.uuid4(),
                owner_id=uuid.uuid4(),
                status="processing",
                stage="extract",
                progress=50,
                message=f"commit {number}",
                data={},
                actor="worker:test",
                created_at=datetime.now(UTC),
            )
        ]

    def settle(self) -> str | None:
        if not self.answered.wait(10):
            return "no answer"
        self.settled_by = threading.current_thread().name
        return None


def test_the_next_statement_settles_a_commit_the_thread_has_not_taken_and_order_holds(
    channel: Any,
) -> None:
    publisher = _Publisher()
    first_answered, second_answered = threading.Event(), threading.Event()
    second_answered.set()  # its answer is in: whoever looks settles it at once
    first, second = _Commit(1, first_answered), _Commit(2, second_answered)
    publisher.after_commit(first)
    deadline = time.monotonic() + 5
    while not publisher._busy and time.monotonic() < deadline:  # the thread waits on `first`
        time.sleep(0.01)
    publisher.after_commit(second)

    threading.Timer(0.3, first_answered.set).start()
    publisher.wait_committed(timeout=10)

    assert second.settled_by == threading.current_thread().name  # not left to the thread
    assert first.settled_by == "publisher"
    publisher.drain()
    # Both published, in commit order.
    assert [e["message"] for e in published(channel)] == ["commit 1", "commit 2"]


def test_a_commit_that_fails_publishes_nothing_and_is_reported(channel: Any) -> None:
    publisher = _Publisher()

    class _Refused(_Commit):
        def settle(self) -> str | None:
            return "the server went away"

    publisher.after_commit(_Refused(1, threading.Event()))
    ok = threading.Event()
    ok.set()
    publisher.after_commit(_Commit(2, ok))
    publisher.wait_committed(timeout=5)
    publisher.drain()

    assert publisher.failure() == "the server went away"
    assert [e["message"] for e in published(channel)] == ["commit 2"]
