"""Sign-in, rotating refresh tokens (RFC 9700: reuse revokes the family), sign-out."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from docflow import ratelimit
from docflow.auth.passwords import verify_password
from docflow.auth.repository import RefreshTokenRepository
from docflow.auth.tokens import create_access_token, hash_token, new_refresh_token
from docflow.config import Settings
from docflow.errors import Unauthorized
from docflow.models import RefreshToken, User
from docflow.users.repository import UserRepository


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    user: User


async def login(session: AsyncSession, settings: Settings, email: str, password: str) -> TokenPair:
    await ratelimit.guard_login(settings, email)
    user = await UserRepository(session).by_email(email)
    # argon2 takes tens of milliseconds of CPU: off the event loop, so sign-ins don't stall it.
    valid = await anyio.to_thread.run_sync(
        verify_password, user.password_hash if user else None, password
    )
    if not valid or user is None:
        await ratelimit.login_failed(settings, email)
        raise Unauthorized("The email or password is incorrect.")
    if not user.is_active:
        raise Unauthorized("This account is disabled.")
    return await _issue(session, settings, user, family_id=uuid.uuid4())


async def refresh(session: AsyncSession, settings: Settings, token: str) -> TokenPair:
    repo = RefreshTokenRepository(session)
    stored = await repo.by_hash_for_update(hash_token(token))
    now = datetime.now(UTC)
    if stored is None:
        raise Unauthorized("The refresh token is not valid.")
    if stored.used_at is not None or stored.revoked_at is not None:
        # A rotated token came back: someone holds a copy. End the whole family.
        await repo.revoke_family(stored.family_id, now)
        await session.commit()
        raise Unauthorized("The refresh token was already used; please sign in again.")
    if stored.expires_at <= now:
        raise Unauthorized("The session has expired; please sign in again.")
    user = await UserRepository(session).get(stored.user_id)
    if user is None or not user.is_active:
        raise Unauthorized("This account is disabled.")
    stored.used_at = now
    return await _issue(session, settings, user, family_id=stored.family_id)


async def logout(session: AsyncSession, token: str | None) -> None:
    if not token:
        return
    repo = RefreshTokenRepository(session)
    stored = await repo.by_hash_for_update(hash_token(token))
    if stored is not None:
        await repo.revoke_family(stored.family_id, datetime.now(UTC))


async def _issue(
    session: AsyncSession, settings: Settings, user: User, *, family_id: uuid.UUID
) -> TokenPair:
    token, token_hash = new_refresh_token()
    await RefreshTokenRepository(session).add(
        RefreshToken(
            user_id=user.id,
            family_id=family_id,
            token_hash=token_hash,
            expires_at=datetime.now(UTC) + timedelta(days=settings.refresh_token_days),
        )
    )
    return TokenPair(
        access_token=create_access_token(settings, user.id, user.role),
        refresh_token=token,
        expires_in=settings.access_token_minutes * 60,
        user=user,
    )
