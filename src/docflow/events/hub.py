"""One Redis subscription per process, fanned out in-process to every open stream.

The subscription is held only while the process has streams open (and for a linger after the
last one closes): a process that serves uploads and no streams would otherwise receive and
parse every event the whole system publishes. The connection itself stays, so the Redis client
count does not move with the number of streams.

Subscribers get bounded queues. A subscriber that falls behind, or any subscriber while the
Redis link was down, receives RESYNC and catches up from PostgreSQL instead of growing memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis

from docflow import jsontext
from docflow.events.log import events_in

log = logging.getLogger(__name__)

# How long the channel stays subscribed after the last stream of this process closed.
LINGER_SECONDS = 30.0

RESYNC: dict[str, Any] = {"type": "__resync__"}
SHUTDOWN: dict[str, Any] = {"type": "__shutdown__"}


class Event(dict[str, Any]):
    """An event as received, with the JSON it arrived as: every stream that frames it reuses
    that text instead of encoding the same dict once per subscriber."""

    __slots__ = ("raw",)

    def __init__(self, raw: str | bytes) -> None:
        super().__init__(jsontext.loads(raw))
        self.raw = raw.decode() if isinstance(raw, bytes) else raw


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Subscriber:
    """One open stream's inbox: bounded, and a few pointers while empty (most streams are idle
    most of the time, and a process holds thousands).

    Events wait in a list created on the first one; the stream takes them all at once. Past
    `limit` the list is replaced by RESYNC (the stream catches up from the log); SHUTDOWN
    replaces whatever is pending and is the last thing a stream receives.
    """

    __slots__ = ("_pending", "_waiter", "closed", "document_id", "limit", "owner_id")

    def __init__(self, document_id: str | None, owner_id: str | None, limit: int = 256) -> None:
        self.document_id, self.owner_id, self.limit = document_id, owner_id, limit
        self._pending: list[dict[str, Any]] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.closed = False

    def offer(self, event: dict[str, Any]) -> None:
        pending = self._pending
        if pending is not None and pending[-1] is SHUTDOWN:
            return  # nothing follows the last word
        if event is SHUTDOWN or pending is None:
            self._pending = [event]
        elif len(pending) >= self.limit:
            # Too slow to keep up: drop what is queued and have it replay from the log.
            self._pending = [RESYNC]
        else:
            pending.append(event)
        self._wake()

    def take(self) -> list[dict[str, Any]]:
        """Everything pending, oldest first (empty when nothing is)."""
        batch, self._pending = self._pending, None
        return batch or []

    @property
    def pending(self) -> int:
        return len(self._pending) if self._pending else 0

    async def wait(self, seconds: float) -> list[dict[str, Any]]:
        """What is pending, waiting up to `seconds` for something; [] on timeout or close."""
        if self._pending is None and not self.closed:
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            timer = loop.call_later(seconds, _release, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        return self.take()

    def close(self) -> None:
        """The client went away: wake the stream so that it ends now."""
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None:
            _release(self._waiter)


class EventHub:
    def __init__(self, redis_url: str, channel: str, queue_size: int = 256) -> None:
        self.redis_url, self.channel, self.queue_size = redis_url, channel, queue_size
        # Set while the channel is subscribed: events published from now on will arrive.
        self.connected = asyncio.Event()
        self.closing = asyncio.Event()
        self._wanted = asyncio.Event()  # some stream of this process listens
        self._by_document: dict[str, set[Subscriber]] = {}
        self._by_owner: dict[str, set[Subscriber]] = {}
        self._everything: set[Subscriber] = set()
        self._task: asyncio.Task[None] | None = None

    @property
    def subscriber_count(self) -> int:
        return (
            sum(len(s) for s in self._by_document.values())
            + sum(len(s) for s in self._by_owner.values())
            + len(self._everything)
        )

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-hub")

    def begin_shutdown(self) -> None:
        """Tell every open stream to end now, with a retry hint (called from a signal handler)."""
        self.closing.set()
        for sub in self._all():
            sub.offer(SHUTDOWN)

    async def stop(self) -> None:
        self.begin_shutdown()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @contextlib.asynccontextmanager
    async def subscribe(
        self, *, document_id: uuid.UUID | None = None, owner_id: uuid.UUID | None = None
    ) -> AsyncIterator[Subscriber]:
        sub = Subscriber(
            str(document_id) if document_id else None,
            str(owner_id) if owner_id else None,
            self.queue_size,
        )
        self.add(sub)
        try:
            yield sub
        finally:
            self.remove(sub)

    def add(self, sub: Subscriber) -> None:
        self._bucket(sub).add(sub)
        self._wanted.set()
        if self.closing.is_set():
            sub.offer(SHUTDOWN)

    def remove(self, sub: Subscriber) -> None:
        index = self._by_document if sub.document_id else self._by_owner if sub.owner_id else None
        key = sub.document_id or sub.owner_id
        if index is None:
            self._everything.discard(sub)
        elif key in index:
            group = index[key]
            group.discard(sub)
            if not group:
                del index[key]

    def _bucket(self, sub: Subscriber) -> set[Subscriber]:
        if sub.document_id:
            return self._by_document.setdefault(sub.document_id, set())
        if sub.owner_id:
            return self._by_owner.setdefault(sub.owner_id, set())
        return self._everything

    def _all(self) -> list[Subscriber]:
        subs = list(self._everything)
        for index in (self._by_document, self._by_owner):
            for group in index.values():
                subs.extend(group)
        return subs

    def dispatch(self, event: dict[str, Any]) -> None:
        for sub in self._by_document.get(event.get("document_id", ""), ()):
            sub.offer(event)
        for sub in self._by_owner.get(event.get("owner_id", ""), ()):
            sub.offer(event)
        for sub in self._everything:
            sub.offer(event)

    def _resync_all(self) -> None:
        for sub in self._all():
            sub.offer(RESYNC)

    def _listened(self) -> bool:
        return bool(self._by_document or self._by_owner or self._everything)

    async def _run(self) -> None:
        delay = 0.2
        while not self.closing.is_set():
            client = aioredis.Redis.from_url(
                self.redis_url, socket_connect_timeout=2, health_check_interval=10
            )
            pubsub = client.pubsub()
            try:
                await pubsub.connect()  # type: ignore[no-untyped-call]
                while True:
                    await self._wanted.wait()
                    await self._subscribe(pubsub)
                    delay = 0.2
                    await self._listen(pubsub)
                    # Nobody listened for a while: stop receiving, keep the connection.
                    self.connected.clear()
                    await pubsub.unsubscribe(self.channel)
                    await self._confirmed(pubsub, "unsubscribe")
                    if not self._listened():
                        self._wanted.clear()
                    log.info("event hub unsubscribed from %s (no streams open)", self.channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("event hub lost Redis (%s); retrying in %.1fs", exc, delay)
            finally:
                was_connected = self.connected.is_set()
                self.connected.clear()
                if was_connected:
                    self._resync_all()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                    await client.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _subscribe(self, pubsub: Any) -> None:
        await pubsub.subscribe(self.channel)
        # Wait for the server's confirmation so "connected" means events will arrive.
        await self._confirmed(pubsub, "subscribe")
        self.connected.set()
        # Whatever was published before now is in the log: streams opened meanwhile catch up.
        self._resync_all()
        log.info("event hub subscribed to %s", self.channel)

    @staticmethod
    async def _confirmed(pubsub: Any, kind: str) -> None:
        while True:
            reply = await pubsub.get_message(timeout=2.0)
            if reply and reply.get("type") == kind:
                return

    async def _listen(self, pubsub: Any) -> None:
        """Dispatch events until no stream has listened for LINGER_SECONDS."""
        loop = asyncio.get_running_loop()
        idle_since: float | None = None
        while True:
            message = await pubsub.get_message(timeout=LINGER_SECONDS)
            if self._listened():
                idle_since = None
            else:
                now = loop.time()
                idle_since = idle_since if idle_since is not None else now
                if now - idle_since >= LINGER_SECONDS:
                    return
            if message is None or message.get("type") != "message" or idle_since is not None:
                continue  # nobody listens in this process: no need to decode it
            for text in events_in(message["data"]):
                try:
                    self.dispatch(Event(text))
                except (ValueError, TypeError):
                    log.warning("dropping malformed event on %s", self.channel)
