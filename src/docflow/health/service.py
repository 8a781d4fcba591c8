"""Readiness checks, each bounded in time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import text

from docflow.config import get_settings
from docflow.db import async_engine
from docflow.events.publisher import async_client


async def _postgres() -> dict[str, Any]:
    async with async_engine().connect() as conn:
        await conn.execute(text("select 1"))
    return {}


async def _redis() -> dict[str, Any]:
    await async_client().ping()
    return {}


async def _workers() -> dict[str, Any]:
    prefix = get_settings().workers_key_prefix
    names = [
        key.decode()[len(prefix) :]
        async for key in async_client().scan_iter(match=f"{prefix}*", count=100)
    ]
    if not names:
        raise RuntimeError("no worker has reported in the last 15 s")
    return {"workers": sorted(names)}


async def _check(fn: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        extra = await asyncio.wait_for(fn(), timeout=3)
    except Exception as exc:
        return {
            "ok": False,
            "error": str(exc) or type(exc).__name__,
            "ms": round((time.perf_counter() - started) * 1000, 1),
        }
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1), **extra}


async def readiness() -> dict[str, Any]:
    names = ("postgres", "redis", "workers")
    results = await asyncio.gather(*(_check(f) for f in (_postgres, _redis, _workers)))
    return dict(zip(names, results, strict=True))
