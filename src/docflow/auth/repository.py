"""SQL for refresh tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from docflow.models import ApiToken, RefreshToken


class RefreshTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, token: RefreshToken) -> None:
        self.session.add(token)
        await self.session.flush()

    async def by_hash_for_update(self, token_hash: str) -> RefreshToken | None:
        stmt = select(RefreshToken).where(RefreshToken.token_hash == token_hash).with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def revoke_family(self, family_id: uuid.UUID, when: datetime) -> None:
        await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=when)
        )


class ApiTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, token: ApiToken) -> ApiToken:
        self.session.add(token)
        await self.session.flush()
        return token

    async def by_hash(self, token_hash: str) -> ApiToken | None:
        stmt = select(ApiToken).where(ApiToken.token_hash == token_hash)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def for_user(self, user_id: uuid.UUID, *, active_only: bool = False) -> list[ApiToken]:
        stmt = select(ApiToken).where(ApiToken.user_id == user_id)
        if active_only:
            stmt = stmt.where(ApiToken.revoked_at.is_(None))
        return list((await self.session.execute(stmt.order_by(ApiToken.created_at))).scalars())

    async def get_for_update(self, user_id: uuid.UUID, token_id: uuid.UUID) -> ApiToken | None:
        stmt = (
            select(ApiToken)
            .where(ApiToken.id == token_id, ApiToken.user_id == user_id)
            .with_for_update()
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def touch(self, token_id: uuid.UUID, when: datetime) -> None:
        await self.session.execute(
            update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=when)
        )

    async def revoke_all(self, user_id: uuid.UUID, when: datetime) -> None:
        await self.session.execute(
            update(ApiToken)
            .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=when)
        )


async def revoke_sessions(session: AsyncSession, user_id: uuid.UUID, when: datetime) -> None:
    """End every refresh-token family of a user (disabled account, role change)."""
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=when)
    )
