"""Sign-in endpoints. API clients use the JSON tokens; the browser uses the HttpOnly cookies."""

from __future__ import annotations

import secrets
import uuid

from fastapi import APIRouter, Request, Response

from docflow.auth import api_tokens
from docflow.auth import service as auth
from docflow.auth.schemas import (
    ApiTokenCreate,
    ApiTokenCreated,
    ApiTokenRead,
    LoginRequest,
    RefreshRequest,
    TokenResponse,
    UserRead,
)
from docflow.config import Settings
from docflow.deps import (
    ACCESS_COOKIE,
    CSRF_COOKIE,
    REFRESH_COOKIE,
    CurrentUser,
    SessionDep,
    SettingsDep,
)
from docflow.errors import Forbidden
from docflow.models import ApiToken, User

router = APIRouter(prefix="/auth", tags=["auth"])


def _set_cookies(response: Response, settings: Settings, pair: auth.TokenPair) -> str:
    csrf = secrets.token_urlsafe(24)
    common = {"secure": settings.cookie_secure, "samesite": "strict"}
    response.set_cookie(
        ACCESS_COOKIE,
        pair.access_token,
        max_age=pair.expires_in,
        httponly=True,
        path="/api",
        **common,  # type: ignore[arg-type]
    )
    response.set_cookie(
        REFRESH_COOKIE,
        pair.refresh_token,
        max_age=settings.refresh_token_days * 86400,
        httponly=True,
        path="/api/v1/auth",
        **common,  # type: ignore[arg-type]
    )
    response.set_cookie(CSRF_COOKIE, csrf, httponly=False, path="/", **common)  # type: ignore[arg-type]
    return csrf


def _token_response(response: Response, settings: Settings, pair: auth.TokenPair) -> TokenResponse:
    csrf = _set_cookies(response, settings, pair)
    return TokenResponse(
        access_token=pair.access_token,
        expires_in=pair.expires_in,
        refresh_token=pair.refresh_token,
        csrf_token=csrf,
        user=UserRead.model_validate(pair.user),
    )


@router.post("/login", response_model=TokenResponse)
async def login(
    body: LoginRequest, response: Response, session: SessionDep, settings: SettingsDep
) -> TokenResponse:
    """Sign in with email and password; returns tokens and sets the browser's cookies."""
    pair = await auth.login(session, settings, body.email, body.password)
    return _token_response(response, settings, pair)


@router.post("/refresh", response_model=TokenResponse)
async def refresh(
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    body: RefreshRequest | None = None,
) -> TokenResponse:
    """Trade a refresh token (body or cookie) for a new pair; the old one stops working."""
    token = (body.refresh_token if body else None) or request.cookies.get(REFRESH_COOKIE) or ""
    pair = await auth.refresh(session, settings, token)
    return _token_response(response, settings, pair)


@router.post("/logout", status_code=204)
async def logout(
    request: Request, response: Response, session: SessionDep, body: RefreshRequest | None = None
) -> Response:
    """Revoke the refresh token's family and clear the cookies."""
    token = (body.refresh_token if body else None) or request.cookies.get(REFRESH_COOKIE)
    await auth.logout(session, token)
    response.status_code = 204
    for name, path in (
        (ACCESS_COOKIE, "/api"),
        (REFRESH_COOKIE, "/api/v1/auth"),
        (CSRF_COOKIE, "/"),
    ):
        response.delete_cookie(name, path=path)
    return response


@router.get("/me", response_model=UserRead)
async def me(user: CurrentUser) -> User:
    """The signed-in user."""
    return user


@router.post("/tokens", status_code=201, response_model=ApiTokenCreated)
async def create_api_token(
    body: ApiTokenCreate,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: CurrentUser,
) -> ApiTokenCreated:
    """Create a personal API token for scripts (`Authorization: Bearer df_…`); shown only once."""
    if getattr(request.state, "auth_method", None) == "api_token":
        # A leaked token must not be able to mint itself successors.
        raise Forbidden("Sign in with your password to create API tokens.")
    row, token = await api_tokens.create(session, settings, user, body.name, body.expires_in_days)
    return ApiTokenCreated(**ApiTokenRead.model_validate(row).model_dump(), token=token)


@router.get("/tokens", response_model=list[ApiTokenRead])
async def list_api_tokens(session: SessionDep, user: CurrentUser) -> list[ApiToken]:
    """Your API tokens (never the tokens themselves), oldest first."""
    return await api_tokens.list_for(session, user)


@router.delete("/tokens/{token_id}", status_code=204)
async def revoke_api_token(token_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> Response:
    """Revoke one of your API tokens; it stops working at once."""
    await api_tokens.revoke(session, user, token_id)
    return Response(status_code=204)
