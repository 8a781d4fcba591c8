"""User commands for the CLI: each runs in its own short transaction."""

from __future__ import annotations

from docflow.db import async_engine, async_session_factory
from docflow.models import User
from docflow.users import service as users
from docflow.users.repository import UserRepository


async def create(email: str, password: str, role: str) -> User:
    try:
        async with async_session_factory()() as session:
            user = await users.create_user(session, email, password, role)
            await session.commit()
            return user
    finally:
        await async_engine().dispose()


async def list_users() -> list[User]:
    try:
        async with async_session_factory()() as session:
            return await UserRepository(session).list()
    finally:
        await async_engine().dispose()
