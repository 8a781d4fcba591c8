"""Personal API tokens for scripts: shown once, stored hashed, listable, revocable."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from docflow.auth.repository import ApiTokenRepository
from docflow.auth.tokens import hash_token, new_api_token
from docflow.config import Settings
from docflow.errors import Conflict, NotFound, Unauthorized
from docflow.models import ApiToken, User
from docflow.users.repository import UserRepository

# last_used_at is a hint for people, not an audit log: one write a minute per token is enough.
TOUCH_EVERY = timedelta(minutes=1)


async def create(
    session: AsyncSession, settings: Settings, user: User, name: str, expires_in_days: int | None
) -> tuple[ApiToken, str]:
    repo = ApiTokenRepository(session)
    active = [t for t in await repo.for_user(user.id, active_only=True) if not _expired(t)]
    if len(active) >= settings.api_token_max_per_user:
        raise Conflict(
            f"You already have {len(active)} active tokens; revoke one first.",
            details={"limit": settings.api_token_max_per_user},
        )
    token, token_hash = new_api_token()
    expires_at = (
        datetime.now(UTC) + timedelta(days=expires_in_days) if expires_in_days is not None else None
    )
    row = await repo.add(
        ApiToken(
            id=uuid.uuid4(),
            user_id=user.id,
            name=name.strip(),
            prefix=token[:10],
            token_hash=token_hash,
            expires_at=expires_at,
        )
    )
    await session.refresh(row)
    return row, token


async def list_for(session: AsyncSession, user: User) -> list[ApiToken]:
    return await ApiTokenRepository(session).for_user(user.id)


async def revoke(session: AsyncSession, user: User, token_id: uuid.UUID) -> None:
    row = await ApiTokenRepository(session).get_for_update(user.id, token_id)
    if row is None:
        raise NotFound("Token not found.")  # someone else's token is also 404
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)


async def authenticate(session: AsyncSession, token: str) -> User:
    repo = ApiTokenRepository(session)
    row = await repo.by_hash(hash_token(token))
    if row is None or row.revoked_at is not None:
        raise Unauthorized("The API token is not valid or was revoked.")
    if _expired(row):
        raise Unauthorized("The API token has expired.", details={"reason": "expired"})
    user = await UserRepository(session).get(row.user_id)
    if user is None or not user.is_active:
        raise Unauthorized("This account no longer exists or is disabled.")
    now = datetime.now(UTC)
    if row.last_used_at is None or now - row.last_used_at > TOUCH_EVERY:
        await repo.touch(row.id, now)
    return user


def _expired(row: ApiToken) -> bool:
    return row.expires_at is not None and row.expires_at <= datetime.now(UTC)
