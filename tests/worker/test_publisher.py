"""The worker's publisher thread (worker/background.py): events go out only after their COMMIT,
in commit order, and a worker about to run its next statement settles a COMMIT the thread has
not got to yet itself instead of waiting for the thread."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from docflow.config import get_settings
from docflow.events.log import events_in, payload
from docflow.worker.background import _Publisher
from tests.conftest import Infra


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


@pytest.fixture
def channel(infra: Infra) -> Iterator[Any]:  # noqa: ARG001  (its Redis)
    client = redis.Redis.from_url(get_settings().redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(get_settings().events_channel)
    pubsub.get_message(timeout=1)  # the subscription's confirmation
    yield pubsub
    pubsub.close()
    client.close()


def _messages(pubsub: Any, count: int) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + 5
    while len(seen) < count and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.2)
        if message is not None:
            seen += [json.loads(text)["message"] for text in events_in(message["data"])]
    return seen


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
    assert _messages(channel, 2) == ["commit 1", "commit 2"]  # commit order, both published


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
    assert _messages(channel, 1) == ["commit 2"]
