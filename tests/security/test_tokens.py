"""Access JWTs, refresh rotation and personal API tokens, attacked over HTTP."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from typing import Any

import httpx
import jwt

from tests.conftest import Stack
from tests.helpers import PASSWORD, assert_envelope, login


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(user_id: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "sub": user_id,
        "role": "admin",
        "typ": "access",
        "iss": "docflow",
        "aud": "docflow-api",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(
    stack: Stack,
    claims: dict[str, Any],
    *,
    key: str | None = None,
    kid: str | None = None,
    alg: str = "HS256",
) -> str:
    secret = stack.env["DOCFLOW_SECRET_KEY"]
    kid = kid or hashlib.sha256(secret.encode()).hexdigest()[:12]
    return jwt.encode(claims, key or secret, algorithm=alg, headers={"kid": kid})


async def _me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})


async def test_forged_access_tokens_are_refused(
    client: httpx.AsyncClient, stack: Stack, auth: dict[str, dict[str, str]]
) -> None:
    me = (await client.get("/api/v1/auth/me", headers=auth["uploader"])).json()
    uid = me["id"]
    # The control: a token built exactly like the server's is accepted, so each refusal below
    # is caused by the one thing that was changed.
    good = await _me(client, _sign(stack, _claims(uid)))
    assert good.status_code == 200
    assert good.json()["id"] == uid

    now = int(time.time())
    header_none = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(_claims(uid)).encode())
    forged = {
        "alg none": f"{header_none}.{payload}.",
        "HS256 wrong key": _sign(stack, _claims(uid), key="x" * 48),
        "expired": _sign(stack, _claims(uid, iat=now - 3600, nbf=now - 3600, exp=now - 60)),
        "nbf in the future": _sign(stack, _claims(uid, nbf=now + 3600)),
        "wrong audience": _sign(stack, _claims(uid, aud="someone-else")),
        "wrong issuer": _sign(stack, _claims(uid, iss="evil")),
        "missing exp": _sign(stack, _claims(uid, exp=None)),
        "missing typ": _sign(stack, _claims(uid, typ=None)),
        "refresh typ": _sign(stack, _claims(uid, typ="refresh")),
        "unknown kid": _sign(stack, _claims(uid), kid="not-a-key-id"),
        "HS512 with the right key": _sign(stack, _claims(uid), alg="HS512"),
        "unknown user": _sign(stack, _claims(str(uuid.uuid4()))),
        "garbage": "eyJhbGciOi.not-a-jwt",
    }
    for name, token in forged.items():
        response = await _me(client, token)
        assert response.status_code == 401, (name, response.text)
        assert_envelope(response, 401, "unauthorized")


async def test_reused_refresh_token_revokes_the_whole_family(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    body = {"email": stack.users["other"], "password": PASSWORD}
    first = (await client.post("/api/v1/auth/login", json=body)).json()["refresh_token"]
    second = await client.post("/api/v1/auth/refresh", json={"refresh_token": first})
    assert second.status_code == 200
    newest = second.json()["refresh_token"]
    assert newest != first
    # A thief replays the rotated token: refused, and the legitimate holder's newer one too.
    assert_envelope(
        await client.post("/api/v1/auth/refresh", json={"refresh_token": first}),
        401,
        "unauthorized",
    )
    assert_envelope(
        await client.post("/api/v1/auth/refresh", json={"refresh_token": newest}),
        401,
        "unauthorized",
    )


async def test_logout_revokes_the_refresh_token(client: httpx.AsyncClient, stack: Stack) -> None:
    body = {"email": stack.users["other"], "password": PASSWORD}
    token = (await client.post("/api/v1/auth/login", json=body)).json()["refresh_token"]
    out = await client.post("/api/v1/auth/logout", json={"refresh_token": token})
    assert out.status_code == 204
    assert_envelope(
        await client.post("/api/v1/auth/refresh", json={"refresh_token": token}),
        401,
        "unauthorized",
    )


async def test_api_tokens_are_shown_once_listed_and_revocable(
    client: httpx.AsyncClient, auth: dict[str, dict[str, str]]
) -> None:
    me = auth["uploader"]
    created = await client.post("/api/v1/auth/tokens", headers=me, json={"name": "backup script"})
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    assert token.startswith("df_")
    assert len(token) > 40
    script = {"Authorization": f"Bearer {token}"}
    who = await client.get("/api/v1/auth/me", headers=script)
    assert who.status_code == 200
    assert who.json()["id"] == (await client.get("/api/v1/auth/me", headers=me)).json()["id"]
    assert (await client.get("/api/v1/documents", headers=script)).status_code == 200

    listed = (await client.get("/api/v1/auth/tokens", headers=me)).json()
    mine = next(t for t in listed if t["id"] == created.json()["id"])
    assert "token" not in mine
    assert token.startswith(mine["prefix"])
    assert mine["last_used_at"] is not None

    # A leaked token cannot mint successors, nor can another user revoke it.
    assert_envelope(
        await client.post("/api/v1/auth/tokens", headers=script, json={"name": "x"}),
        403,
        "forbidden",
    )
    assert_envelope(
        await client.delete(f"/api/v1/auth/tokens/{mine['id']}", headers=auth["other"]),
        404,
        "not_found",
    )
    assert (await client.get("/api/v1/auth/me", headers=script)).status_code == 200

    revoked = await client.delete(f"/api/v1/auth/tokens/{mine['id']}", headers=me)
    assert revoked.status_code == 204
    assert_envelope(await client.get("/api/v1/auth/me", headers=script), 401, "unauthorized")
    # A token that merely looks like ours is refused the same way.
    assert_envelope(
        await client.get("/api/v1/auth/me", headers={"Authorization": "Bearer df_" + "A" * 43}),
        401,
        "unauthorized",
    )


async def test_disabling_a_user_ends_their_sessions_and_tokens(
    client: httpx.AsyncClient, auth: dict[str, dict[str, str]]
) -> None:
    admin = auth["admin"]
    email = f"leaver-{uuid.uuid4().hex[:8]}@example.com"
    made = await client.post(
        "/api/v1/users", headers=admin, json={"email": email, "password": PASSWORD}
    )
    assert made.status_code == 201
    assert made.json()["role"] == "uploader"
    user_id = made.json()["id"]
    login_body = (
        await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    ).json()
    bearer = {"Authorization": f"Bearer {login_body['access_token']}"}
    script = (
        await client.post("/api/v1/auth/tokens", headers=bearer, json={"name": "cron"})
    ).json()["token"]

    off = await client.patch(f"/api/v1/users/{user_id}", headers=admin, json={"is_active": False})
    assert off.status_code == 200
    assert off.json()["is_active"] is False
    assert_envelope(await client.get("/api/v1/auth/me", headers=bearer), 401, "unauthorized")
    assert_envelope(
        await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {script}"}),
        401,
        "unauthorized",
    )
    assert_envelope(
        await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": login_body["refresh_token"]}
        ),
        401,
        "unauthorized",
    )
    assert_envelope(
        await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD}),
        401,
        "unauthorized",
    )

    on = await client.patch(f"/api/v1/users/{user_id}", headers=admin, json={"is_active": True})
    assert on.json()["is_active"] is True
    again = await login(client, email)
    assert (await client.get("/api/v1/auth/me", headers=again)).status_code == 200
    # The tokens of the disabled period stay dead: re-enabling is not resurrection.
    assert_envelope(
        await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {script}"}),
        401,
        "unauthorized",
    )
