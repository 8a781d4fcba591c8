"""A signed-in HTTP session against a running Docflow API."""

from __future__ import annotations

import os
from dataclasses import dataclass

import httpx

DEFAULT_URL = "http://127.0.0.1:8080"


class ClientError(Exception):
    """Something the person at the terminal must fix: the message says what."""


@dataclass(frozen=True)
class Credentials:
    url: str
    email: str | None = None
    password: str | None = None
    token: str | None = None

    @classmethod
    def resolve(
        cls, url: str | None, email: str | None, password: str | None, token: str | None
    ) -> Credentials:
        """Flags win over the environment: DOCFLOW_URL, DOCFLOW_API_TOKEN, DOCFLOW_EMAIL,
        DOCFLOW_PASSWORD."""
        return cls(
            url=(url or os.environ.get("DOCFLOW_URL") or DEFAULT_URL).rstrip("/"),
            email=email or os.environ.get("DOCFLOW_EMAIL"),
            password=password or os.environ.get("DOCFLOW_PASSWORD"),
            token=token or os.environ.get("DOCFLOW_API_TOKEN"),
        )


def error_message(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
        return f"{error['message']} ({error['code']}, HTTP {response.status_code})"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text[:200]}"


async def sign_in(client: httpx.AsyncClient, creds: Credentials) -> dict[str, str]:
    """Bearer headers from a token, or from signing in with email and password."""
    if creds.email and creds.password:
        try:
            response = await client.post(
                "/api/v1/auth/login", json={"email": creds.email, "password": creds.password}
            )
        except httpx.HTTPError as exc:
            raise ClientError(f"cannot reach Docflow at {creds.url}: {exc}") from exc
        if response.status_code != 200:
            raise ClientError(f"sign-in failed: {error_message(response)}")
        return {"Authorization": f"Bearer {response.json()['access_token']}"}
    if creds.token:
        return {"Authorization": f"Bearer {creds.token}"}
    raise ClientError(
        "sign in with --email and --password (or DOCFLOW_EMAIL/DOCFLOW_PASSWORD), "
        "or set DOCFLOW_API_TOKEN"
    )


def client_for(creds: Credentials) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=creds.url, timeout=httpx.Timeout(60, connect=5))
