"""Request-scoped dependencies: the unit of work, settings, the signed-in user."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import anyio
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from docflow import jobs, ratelimit
from docflow.auth import api_tokens
from docflow.auth.tokens import decode_access_token, is_api_token
from docflow.config import Settings, get_settings
from docflow.db import async_session_factory, take_outbox
from docflow.errors import Forbidden, Unauthorized
from docflow.events.publisher import payloads_of, publish_async
from docflow.models import Role, User
from docflow.users.repository import UserRepository

ACCESS_COOKIE, REFRESH_COOKIE, CSRF_COOKIE = "docflow_access", "docflow_refresh", "docflow_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


async def flush_outbox(session: AsyncSession) -> None:
    """After commit: publish the transaction's events, then send its tasks."""
    items = take_outbox(session)
    await publish_async(payloads_of(items))
    for item in items:
        if isinstance(item, jobs.Job):
            await anyio.to_thread.run_sync(jobs.send, item)


@asynccontextmanager
async def unit_of_work() -> AsyncIterator[AsyncSession]:
    """One transaction: commit at the end, roll back on error; after the commit, publish its
    events and send its tasks."""
    async with async_session_factory()() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            take_outbox(session)
            raise
        await flush_outbox(session)


async def get_session() -> AsyncIterator[AsyncSession]:
    """One transaction per request: commit after the handler, roll back on error."""
    async with unit_of_work() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def app_settings() -> Settings:
    """`get_settings` as an async dependency: FastAPI runs a plain function dependency in a
    worker thread, a thread hop on every request for a cached value."""
    return get_settings()


SettingsDep = Annotated[Settings, Depends(app_settings)]


async def current_user(request: Request, session: SessionDep, settings: SettingsDep) -> User:
    token, via_cookie = _checked_token(request)
    if is_api_token(token):
        user = await api_tokens.authenticate(session, token)
        request.state.auth_method = "api_token"
    else:
        found = await UserRepository(session).get(_claimed_user(settings, token))
        if found is None or not found.is_active:
            raise Unauthorized(ACCOUNT_GONE)
        user = found
        request.state.auth_method = "cookie" if via_cookie else "jwt"
    await ratelimit.check_user(settings, request.method, request.url.path, str(user.id))
    return user


ACCOUNT_GONE = "This account no longer exists or is disabled."


async def token_user(conn: HTTPConnection, settings: Settings) -> tuple[uuid.UUID, str]:
    """The signed-in user's id and how they signed in ("jwt", "cookie" or "api_token"), without
    a database round trip for a JWT: for callers whose own statement checks the account (an
    upload inserts nothing for a disabled or deleted one; a stream's opening query finds no
    user). An API token is looked up as usual."""
    token, via_cookie = _checked_token(conn)
    if is_api_token(token):
        async with async_session_factory()() as session:
            user_id = (await api_tokens.authenticate(session, token)).id
            await session.commit()  # the token's last-used time
        return user_id, "api_token"
    return _claimed_user(settings, token), "cookie" if via_cookie else "jwt"


async def uploader(request: Request, settings: Settings) -> uuid.UUID:
    """The uploading user's id (see `token_user`), within their upload budget."""
    user_id, request.state.auth_method = await token_user(request, settings)
    await ratelimit.check_user(settings, request.method, request.url.path, str(user_id))
    return user_id


def _checked_token(conn: HTTPConnection) -> tuple[str, bool]:
    """The request's token and whether it came from the cookie (then CSRF must match)."""
    token, via_cookie = _token(conn)
    if token is None:
        raise Unauthorized("Sign in to continue.")
    if via_cookie and conn.scope["method"] not in SAFE_METHODS:
        cookie, header = conn.cookies.get(CSRF_COOKIE), conn.headers.get(CSRF_HEADER)
        if not cookie or not header or not secrets.compare_digest(cookie, header):
            raise Forbidden("Missing or wrong CSRF token.", details={"reason": "csrf"})
    if is_api_token(token) and via_cookie:  # API tokens are for scripts, never a browser cookie
        raise Unauthorized("The access token is not valid.")
    return token, via_cookie


# Verified access tokens, so a client sending the same token on every request pays for the
# signature check once. An entry is used only while its token is still valid (nbf..exp).
_verified: dict[tuple[str, str], tuple[uuid.UUID, float, float]] = {}
VERIFIED_MAX = 4096


def _claimed_user(settings: Settings, token: str) -> uuid.UUID:
    now = time.time()
    key = (settings.secret_key, token)
    cached = _verified.get(key)
    if cached is not None and cached[1] <= now < cached[2]:
        return cached[0]
    claims = decode_access_token(settings, token)
    try:
        user_id = uuid.UUID(claims["sub"])
    except ValueError as exc:
        raise Unauthorized("The access token is not valid.") from exc
    if len(_verified) >= VERIFIED_MAX:
        _verified.clear()
    _verified[key] = (user_id, float(claims["nbf"]), float(claims["exp"]))
    return user_id


def _token(conn: HTTPConnection) -> tuple[str | None, bool]:
    header = conn.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip(), False
    cookie = conn.cookies.get(ACCESS_COOKIE)
    return (cookie, True) if cookie else (None, False)


CurrentUser = Annotated[User, Depends(current_user)]


async def reviewer(user: CurrentUser) -> User:
    if not user.sees_all:
        raise Forbidden("Only reviewers and admins can do this.")
    return user


Reviewer = Annotated[User, Depends(reviewer)]


async def admin(user: CurrentUser) -> User:
    if user.role != Role.ADMIN.value:
        raise Forbidden("Only admins can do this.")
    return user


Admin = Annotated[User, Depends(admin)]
