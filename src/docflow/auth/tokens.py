"""Access JWTs (pinned HS256, required claims, kid for rotation) and opaque refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from docflow.config import Settings
from docflow.errors import Unauthorized

ALGORITHM = "HS256"
REQUIRED = ["exp", "iat", "nbf", "iss", "aud", "sub", "typ"]
# Personal API tokens start with this, so they are told apart from JWTs (which start "eyJ")
# without a database lookup, and secret scanners can recognise a leaked one.
API_TOKEN_PREFIX = "df_"


def key_id(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


def create_access_token(settings: Settings, user_id: uuid.UUID, role: str) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "role": role,
        "typ": "access",
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(minutes=settings.access_token_minutes),
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(
        claims,
        settings.secret_key,
        algorithm=ALGORITHM,
        headers={"kid": key_id(settings.secret_key)},
    )


def decode_access_token(settings: Settings, token: str) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise Unauthorized("The access token is malformed.") from exc
    keys = {key_id(k): k for k in [settings.secret_key, *settings.previous_secret_keys]}
    secret = keys.get(str(header.get("kid")))
    if header.get("alg") != ALGORITHM or secret is None:
        raise Unauthorized("The access token was not issued by this server.")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": REQUIRED},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("The access token has expired.", details={"reason": "expired"}) from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("The access token is not valid.") from exc
    if claims.get("typ") != "access":
        raise Unauthorized("The access token is not valid.")
    return claims


def new_refresh_token() -> tuple[str, str]:
    """Returns (token for the client, hash to store)."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def new_api_token() -> tuple[str, str]:
    """Returns (token shown once to its owner, hash to store)."""
    token = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, hash_token(token)


def is_api_token(token: str) -> bool:
    return token.startswith(API_TOKEN_PREFIX)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
