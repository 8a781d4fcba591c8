"""Rules for accounts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from docflow.auth.passwords import hash_password
from docflow.auth.repository import ApiTokenRepository, revoke_sessions
from docflow.errors import AppError, Conflict, Forbidden, NotFound
from docflow.models import Role, User
from docflow.users.repository import UserRepository


async def create_user(session: AsyncSession, email: str, password: str, role: str) -> User:
    email = email.strip().lower()
    if "@" not in email:
        raise AppError("That is not an email address.", details={"field": "email"})
    if len(password) < 8:
        raise AppError("The password must be at least 8 characters.", details={"field": "password"})
    if role not in {r.value for r in Role}:
        raise AppError(f"Unknown role {role!r}.", details={"roles": [r.value for r in Role]})
    repo = UserRepository(session)
    if await repo.by_email(email):
        raise Conflict("A user with that email already exists.")
    return await repo.add(User(email=email, password_hash=hash_password(password), role=role))


async def list_users(session: AsyncSession) -> list[User]:
    return await UserRepository(session).list()


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await UserRepository(session).get(user_id)
    if user is None:
        raise NotFound("User not found.")
    return user


async def update_user(
    session: AsyncSession,
    actor: User,
    user_id: uuid.UUID,
    role: Role | None,
    is_active: bool | None,
) -> User:
    """Change an account's role or switch it off; an admin cannot lock themselves out."""
    user = await get_user(session, user_id)
    if user.id == actor.id and (
        (role is not None and role.value != user.role) or is_active is False
    ):
        raise Forbidden("You cannot demote or disable your own account; ask another admin.")
    if role is not None:
        user.role = role.value
    if is_active is not None and is_active != user.is_active:
        user.is_active = is_active
        if not is_active:
            # Signed-in sessions and scripts end now, not when their tokens expire.
            now = datetime.now(UTC)
            await revoke_sessions(session, user.id, now)
            await ApiTokenRepository(session).revoke_all(user.id, now)
    await session.flush()
    return user
