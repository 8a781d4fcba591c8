"""Publish events to Redis after commit. Redis is a hint: a lost publish is repaired by replay."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

import redis
import redis.asyncio as aioredis

from docflow.config import get_settings
from docflow.events.log import encode, event_payload, messages
from docflow.models import DocumentEvent

log = logging.getLogger(__name__)


@lru_cache
def sync_client() -> redis.Redis:
    return redis.Redis.from_url(
        get_settings().redis_url, socket_connect_timeout=2, socket_timeout=2
    )


@lru_cache
def async_client() -> aioredis.Redis:
    return aioredis.Redis.from_url(
        get_settings().redis_url, socket_connect_timeout=2, socket_timeout=2
    )


def publish_sync(payloads: list[dict[str, Any]]) -> None:
    """Publish events, as few messages as they fit in (`log.messages`)."""
    if not payloads:
        return
    channel = get_settings().events_channel
    try:
        texts = messages([encode(payload) for payload in payloads])
        if len(texts) == 1:
            sync_client().publish(channel, texts[0])
            return
        pipe = sync_client().pipeline(transaction=False)
        for text in texts:
            pipe.publish(channel, text)
        pipe.execute()
    except redis.RedisError:
        log.warning("event publish failed; streams will catch up from the log")


async def publish_async(payloads: list[dict[str, Any]]) -> None:
    if not payloads:
        return
    channel = get_settings().events_channel
    try:
        async with async_client().pipeline(transaction=False) as pipe:
            for text in messages([encode(payload) for payload in payloads]):
                pipe.publish(channel, text)
            await pipe.execute()
    except (redis.RedisError, OSError):
        log.warning("event publish failed; streams will catch up from the log")


def payloads_of(items: list[Any]) -> list[dict[str, Any]]:
    return [event_payload(item) for item in items if isinstance(item, DocumentEvent)]
