"""The per-process hub: events reach the right streams, and a slow stream cannot grow memory."""

from __future__ import annotations

import asyncio
import uuid

from docflow.events.hub import RESYNC, SHUTDOWN, EventHub
from docflow.events.sse import _Sent, frame


def _event(doc: uuid.UUID, owner: uuid.UUID, event_id: int | None) -> dict[str, object]:
    return {
        "id": event_id,
        "document_id": str(doc),
        "owner_id": str(owner),
        "type": "stage.started",
    }


async def test_events_reach_only_the_streams_they_belong_to() -> None:
    hub = EventHub("redis://unused", "ch", queue_size=8)
    doc_a, doc_b, owner = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with (
        hub.subscribe(document_id=doc_a) as a,
        hub.subscribe(owner_id=owner) as mine,
        hub.subscribe() as everything,
    ):
        hub.dispatch(_event(doc_a, owner, 1))
        hub.dispatch(_event(doc_b, uuid.uuid4(), 2))
        assert [e["id"] for e in a.take()] == [1] and a.pending == 0
        assert [e["id"] for e in mine.take()] == [1] and mine.pending == 0
        assert [e["id"] for e in everything.take()] == [1, 2]
        assert hub.subscriber_count == 3
    assert hub.subscriber_count == 0


async def test_a_slow_stream_is_told_to_resync_instead_of_growing() -> None:
    hub = EventHub("redis://unused", "ch", queue_size=4)
    doc, owner = uuid.uuid4(), uuid.uuid4()
    async with hub.subscribe(document_id=doc) as slow:
        for n in range(1000):
            hub.dispatch(_event(doc, owner, n))
        assert slow.pending <= 4
        assert RESYNC in slow.take(), "the stream will replay what it missed from the log"


async def test_shutdown_reaches_every_stream_even_a_full_one() -> None:
    hub = EventHub("redis://unused", "ch", queue_size=2)
    doc = uuid.uuid4()
    async with hub.subscribe(document_id=doc) as sub:
        for n in range(2):
            hub.dispatch(_event(doc, uuid.uuid4(), n))
        hub.begin_shutdown()
        hub.dispatch(_event(doc, uuid.uuid4(), 3))
        assert sub.take() == [SHUTDOWN], "nothing follows the last word"
    async with hub.subscribe(document_id=doc) as late:
        assert late.take() == [SHUTDOWN], "a stream opened during shutdown ends at once"


async def test_a_waiting_stream_wakes_for_an_event_a_close_or_its_timeout() -> None:
    hub = EventHub("redis://unused", "ch")
    doc = uuid.uuid4()
    async with hub.subscribe(document_id=doc) as sub:
        assert await sub.wait(0.01) == []
        loop = asyncio.get_running_loop()
        loop.call_soon(hub.dispatch, _event(doc, uuid.uuid4(), 5))
        assert [e["id"] for e in await asyncio.wait_for(sub.wait(30), 5)] == [5]
        loop.call_soon(sub.close)
        assert await asyncio.wait_for(sub.wait(30), 5) == [] and sub.closed


def test_sent_ids_drop_duplicates_but_accept_late_commits() -> None:
    sent = _Sent(floor=10)
    assert not sent.fresh(10) and sent.fresh(11)
    sent.add(12)
    assert not sent.fresh(12)
    assert sent.fresh(11), "an event that committed after a higher id is still delivered"


def test_frames_carry_ids_only_for_persisted_events() -> None:
    assert frame("stage.progress", {"a": 1}) == 'event: stage.progress\ndata: {"a":1}\n\n'
    assert frame("stage.started", {"a": 1}, 7).startswith("id: 7\nevent: stage.started\n")
