"""Server-Sent Events framing: subscribe → snapshot → replay from the log → live.

The hub subscription is registered before anything is read from PostgreSQL, so an event
committed while we replay is either in the replay or in the queue; ids already sent are dropped.
While the Redis link is down the stream polls the log itself, so the final state still arrives.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from docflow.events.hub import RESYNC, SHUTDOWN, Event, EventHub, Subscriber

Snapshot = Callable[[], Awaitable[tuple[dict[str, Any], int]]]
Replay = Callable[[int], Awaitable[list[dict[str, Any]]]]

HEADERS = {
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",
    "Connection": "keep-alive",
}


def frame(event: str, data: dict[str, Any], event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    # The publisher encoded it exactly so (events.publisher._encode); reuse that text.
    if isinstance(data, Event):
        body = data.raw
    else:
        body = json.dumps(data, separators=(",", ":"), default=str)
    return f"{head}event: {event}\ndata: {body}\n\n"


class _Sent:
    """Ids already delivered on this stream, above a floor that the client already has.

    Per document, ids arrive in commit order (every event insert follows a lock on the document
    row); on a per-user stream two documents' events may commit out of id order, so the set,
    not a single high-water mark, decides what is new.
    """

    def __init__(self, floor: int) -> None:
        self.floor = self.last = floor
        self._ids: set[int] = set()
        self._order: deque[int] = deque()

    def fresh(self, event_id: int) -> bool:
        return event_id > self.floor and event_id not in self._ids

    def add(self, event_id: int) -> None:
        self.last = max(self.last, event_id)
        self._ids.add(event_id)
        self._order.append(event_id)
        if len(self._order) > 4096:
            oldest = self._order.popleft()
            self._ids.discard(oldest)
            self.floor = max(self.floor, oldest)


async def stream(
    hub: EventHub,
    subscriber: Subscriber,
    *,
    snapshot: Snapshot,
    replay: Replay,
    last_event_id: int | None,
    retry_ms: int,
    keepalive: float,
) -> AsyncIterator[str]:
    yield f"retry: {retry_ms}\n\n"
    state, cursor = await snapshot()
    opening = frame("snapshot", state)
    del state  # a stream lives for hours: keep the frame's text only until it is sent
    yield opening
    del opening
    sent = _Sent(last_event_id if last_event_id is not None else cursor)

    async def catch_up() -> AsyncIterator[str]:
        for event in await replay(sent.last):
            if sent.fresh(event["id"]):
                sent.add(event["id"])
                yield frame(event["type"], event, event["id"])

    # A fresh stream needs no replay: the snapshot holds everything up to its cursor, and any
    # event committed after the cursor was read was published after we subscribed, so it is
    # in the queue. A resumed stream replays what it missed since Last-Event-ID.
    if last_event_id is not None or not hub.connected.is_set():
        async for chunk in catch_up():
            yield chunk
    while True:
        wait = keepalive if hub.connected.is_set() else 1.0
        try:
            event = await asyncio.wait_for(subscriber.queue.get(), wait)
        except TimeoutError:
            if hub.connected.is_set():
                yield ": keep-alive\n\n"
            else:
                async for chunk in catch_up():
                    yield chunk
            continue
        if event is SHUTDOWN:
            yield "retry: 1000\n\n"
            return
        if event is RESYNC:
            yield frame("snapshot", (await snapshot())[0])
            async for chunk in catch_up():
                yield chunk
            continue
        event_id = event.get("id")
        if event_id is None:  # live-only progress: no id, so it never moves the resume point
            yield frame(event["type"], event)
        elif sent.fresh(event_id):
            sent.add(event_id)
            yield frame(event["type"], event, event_id)
