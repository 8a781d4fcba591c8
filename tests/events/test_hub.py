"""The per-process hub: events reach the right streams, and a slow stream cannot grow memory."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
import redis.asyncio as aioredis

from docflow.events import hub as hub_module
from docflow.events.hub import RESYNC, SHUTDOWN, EventHub
from docflow.events.log import encode, messages
from docflow.events.sse import _Sent, frame
from tests.conftest import Infra


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


async def test_the_channel_is_subscribed_only_while_streams_listen(
    infra: Infra, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process with no open stream does not receive the system's events; the first stream
    subscribes again (and is told to catch up from the log), on the same connection."""
    monkeypatch.setattr(hub_module, "LINGER_SECONDS", 0.3)
    channel = f"{infra.namespace}:hub-test:{uuid.uuid4().hex}"
    hub = EventHub(infra.redis_url, channel)
    publisher = aioredis.Redis.from_url(infra.redis_url)
    hub.start()
    try:
        await asyncio.sleep(0.3)
        assert not hub.connected.is_set(), "no stream: no subscription"
        assert await publisher.pubsub_numsub(channel) == [(channel.encode(), 0)]
        doc = uuid.uuid4()
        async with hub.subscribe(document_id=doc) as sub:
            await asyncio.wait_for(hub.connected.wait(), 5)
            assert sub.take() == [RESYNC], "what came before the subscription is in the log"
            await publisher.publish(channel, json.dumps(_event(doc, uuid.uuid4(), 7)))
            assert [e["id"] for e in await asyncio.wait_for(sub.wait(5), 5)] == [7]
            # One commit's events arrive in one message (events.log.messages), each as itself.
            other = uuid.uuid4()
            texts = [encode(_event(d, uuid.uuid4(), n)) for d, n in ((doc, 10), (other, 11))]
            await publisher.publish(channel, messages([*texts, encode(_event(doc, doc, 12))])[0])
            got = await asyncio.wait_for(sub.wait(5), 5)
            while len(got) < 2:
                got += await asyncio.wait_for(sub.wait(5), 5)
            assert [e["id"] for e in got] == [10, 12]
            assert got[0].raw == texts[0], "streams send the published text as it is"
        for _ in range(50):  # the linger ends at the next message (or its timeout)
            await publisher.publish(channel, json.dumps(_event(doc, uuid.uuid4(), 8)))
            await asyncio.sleep(0.05)
            if not hub.connected.is_set():
                break
        assert not hub.connected.is_set(), "the last stream closed: unsubscribed"
        assert await publisher.pubsub_numsub(channel) == [(channel.encode(), 0)]
        async with hub.subscribe(document_id=doc) as again:
            await asyncio.wait_for(hub.connected.wait(), 5)
            await publisher.publish(channel, json.dumps(_event(doc, uuid.uuid4(), 9)))
            batch = await asyncio.wait_for(again.wait(5), 5)
            while len(batch) < 2:
                batch += await asyncio.wait_for(again.wait(5), 5)
            assert batch[0] is RESYNC and batch[1]["id"] == 9
    finally:
        await hub.stop()
        await publisher.aclose()
