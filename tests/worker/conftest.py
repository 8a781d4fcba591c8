"""What the worker tests share: a subscription to the live events channel."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from docflow.config import get_settings
from tests.conftest import Infra


@pytest.fixture
def channel(infra: Infra) -> Iterator[Any]:  # noqa: ARG001  (its Redis)
    """A subscription to the stream channel, open before anything is published."""
    client = redis.Redis.from_url(get_settings().redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(get_settings().events_channel)
    pubsub.get_message(timeout=1)  # the subscription's confirmation
    yield pubsub
    pubsub.close()
    client.close()
