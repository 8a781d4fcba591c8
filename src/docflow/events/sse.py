"""Server-Sent Events framing: subscribe → snapshot → replay from the log → live.

The hub subscription is registered before anything is read from PostgreSQL, so an event
committed while we replay is either in the replay or in the queue; ids already sent are dropped.
While the Redis link is down the stream polls the log itself, so the final state still arrives.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from docflow import jsontext
from docflow.events.hub import RESYNC, SHUTDOWN, Event, EventHub, Subscriber

Snapshot = Callable[[], Awaitable[tuple[dict[str, Any], int]]]
# (after, limit) -> persisted events after that id, oldest first, at most `limit`
Replay = Callable[[int, int], Awaitable[list[dict[str, Any]]]]
REPLAY_PAGE = 500

HEADERS = {
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",
    "Connection": "keep-alive",
}


def frame(event: str, data: dict[str, Any], event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    # The publisher encoded it exactly so (events.log.encode); reuse that text.
    if isinstance(data, Event):
        body = data.raw
    else:
        body = jsontext.dumps(data)
    return f"{head}event: {event}\ndata: {body}\n\n"


class _Sent:
    """Ids already delivered on this stream, above a floor that the client already has.

    Events reach the hub in publish order, not id order: each process publishes after its own
    commits (a worker batches them), and two documents' events may commit out of id order, so
    a bounded set of recent ids, not a single high-water mark, decides what is new. The set is
    made on the first id: most streams hold few, or none.
    """

    __slots__ = ("_ids", "floor", "last")

    def __init__(self, floor: int) -> None:
        self.floor = self.last = floor
        self._ids: dict[int, None] | None = None  # insertion-ordered: the oldest goes first

    def fresh(self, event_id: int) -> bool:
        return event_id > self.floor and (self._ids is None or event_id not in self._ids)

    def add(self, event_id: int) -> None:
        self.last = max(self.last, event_id)
        if self._ids is None:
            self._ids = {}
        self._ids[event_id] = None
        if len(self._ids) > 4096:
            oldest = next(iter(self._ids))
            del self._ids[oldest]
            self.floor = max(self.floor, oldest)


async def stream(
    hub: EventHub,
    subscriber: Subscriber,
    *,
    opening: tuple[dict[str, Any], int],
    snapshot: Snapshot,
    replay: Replay,
    last_event_id: int | None,
    retry_ms: int,
    keepalive: float,
    catch_up_first: bool = False,
) -> AsyncGenerator[str, None]:
    """The stream's text, a chunk per wake-up; ends on SHUTDOWN or when the subscriber closes.

    `opening` is the snapshot read (after subscribing) when the stream was opened; with
    `catch_up_first` the stream replays from its cursor before going live (it was subscribed
    only after that read).
    """
    state, cursor = opening
    # A stream lives for hours: keep the opening frame's text only until it is sent.
    first = f"retry: {retry_ms}\n\n" + frame("snapshot", state)
    del state, opening
    yield first
    del first
    sent = _Sent(last_event_id if last_event_id is not None else cursor)

    async def catch_up() -> list[str]:
        chunks = []
        while True:
            page = await replay(sent.last, REPLAY_PAGE)
            for event in page:
                if sent.fresh(event["id"]):
                    sent.add(event["id"])
                    chunks.append(frame(event["type"], event, event["id"]))
            if len(page) < REPLAY_PAGE:
                return chunks

    # A fresh stream needs no replay: the snapshot holds everything up to its cursor, and any
    # event committed after the cursor was read was published after we subscribed, so it is
    # pending. A resumed stream replays what it missed since Last-Event-ID.
    if catch_up_first or last_event_id is not None or not hub.connected.is_set():
        if chunks := await catch_up():
            yield "".join(chunks)
    while not subscriber.closed:
        batch = await subscriber.wait(keepalive if hub.connected.is_set() else 1.0)
        if subscriber.closed:
            return
        if not batch:
            if hub.connected.is_set():
                yield ": keep-alive\n\n"
            elif chunks := await catch_up():
                yield "".join(chunks)
            continue
        out: list[str] = []
        for event in batch:
            if event is SHUTDOWN:
                out.append("retry: 1000\n\n")
                yield "".join(out)
                return
            if event is RESYNC:
                out.append(frame("snapshot", (await snapshot())[0]))
                out.extend(await catch_up())
                continue
            event_id = event.get("id")
            if event_id is None:  # live-only progress: no id, so it never moves the resume point
                out.append(frame(event["type"], event))
            elif sent.fresh(event_id):
                sent.add(event_id)
                out.append(frame(event["type"], event, event_id))
        if out:
            yield "".join(out)
