"""Fixtures for the security suite: a client on the shared stack and signed-in headers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import Stack
from tests.helpers import login


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=60) as c:
        yield c


@pytest.fixture(scope="session")
async def auth(stack: Stack) -> dict[str, dict[str, str]]:
    """Bearer headers per role (uploader, other, reviewer, admin), signed in once."""
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as c:
        return {role: await login(c, email) for role, email in stack.users.items()}
