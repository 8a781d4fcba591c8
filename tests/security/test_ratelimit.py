"""Rate limits: per account (failed sign-ins), per user and per IP, each budget apart."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Infra, Stack, start_api, wait_ready
from tests.helpers import PASSWORD, assert_envelope, login


@pytest.fixture(scope="module")
def limited_api(infra: Infra, stack: Stack) -> Iterator[str]:  # noqa: ARG001 (worker readiness)
    proc, base_url = start_api(
        infra,
        extra_env={
            "DOCFLOW_RATE_LIMIT_LOGIN_ACCOUNT": "3/minute",
            "DOCFLOW_RATE_LIMIT_LOGIN_IP": "6/minute",
            "DOCFLOW_RATE_LIMIT_READ_USER": "5/minute",
            "DOCFLOW_RATE_LIMIT_UPLOAD_USER": "2/minute",
        },
    )
    try:
        wait_ready(base_url, [proc])
        yield base_url
    finally:
        proc.stop()


def _assert_limited(response: httpx.Response, scope: str) -> None:
    error = assert_envelope(response, 429, "rate_limited")
    retry_after = int(response.headers["Retry-After"])
    assert 0 < retry_after <= 60
    assert error["details"]["scope"] == scope
    assert error["details"]["retry_after"] == retry_after


async def test_failed_sign_ins_lock_the_account_for_a_while(limited_api: str, stack: Stack) -> None:
    email = stack.users["other"]
    ip = {"X-Forwarded-For": "198.51.100.1"}
    async with httpx.AsyncClient(base_url=limited_api, timeout=30) as client:
        for _ in range(3):
            assert_envelope(
                await client.post(
                    "/api/v1/auth/login", headers=ip, json={"email": email, "password": "guess"}
                ),
                401,
                "unauthorized",
            )
        # Even the right password waits now: the guesser cannot tell it was right.
        _assert_limited(
            await client.post(
                "/api/v1/auth/login", headers=ip, json={"email": email, "password": PASSWORD}
            ),
            "account",
        )
        # Other accounts are not locked out by someone guessing at this one.
        ok = await client.post(
            "/api/v1/auth/login",
            headers=ip,
            json={"email": stack.users["admin"], "password": PASSWORD},
        )
        assert ok.status_code == 200


async def test_sign_ins_from_one_address_are_limited(limited_api: str) -> None:
    ip = {"X-Forwarded-For": "203.0.113.9"}
    async with httpx.AsyncClient(base_url=limited_api, timeout=30) as client:
        for _ in range(6):
            response = await client.post(
                "/api/v1/auth/login",
                headers=ip,
                json={"email": f"nobody-{uuid.uuid4().hex[:6]}@example.com", "password": "x"},
            )
            assert response.status_code == 401
        _assert_limited(
            await client.post(
                "/api/v1/auth/login",
                headers=ip,
                json={"email": "someone@example.com", "password": "x"},
            ),
            "ip",
        )
        # Another address is unaffected.
        other = await client.post(
            "/api/v1/auth/login",
            headers={"X-Forwarded-For": "192.0.2.4"},
            json={"email": "someone@example.com", "password": "x"},
        )
        assert other.status_code == 401


async def test_reads_and_uploads_have_separate_per_user_budgets(
    limited_api: str, stack: Stack
) -> None:
    async with httpx.AsyncClient(base_url=limited_api, timeout=30) as client:
        me = await login(client, stack.users["uploader"])
        boss = await login(client, stack.users["reviewer"])
        for _ in range(5):
            assert (await client.get("/api/v1/auth/me", headers=me)).status_code == 200
        _assert_limited(await client.get("/api/v1/documents", headers=me), "user")
        # Someone else's budget is their own; and this user's upload budget is untouched.
        assert (await client.get("/api/v1/auth/me", headers=boss)).status_code == 200
        for i in range(2):
            uploaded = await client.post(
                "/api/v1/documents",
                headers=me,
                files={"file": (f"n{i}.txt", b"hello there " * 50, "text/plain")},
            )
            assert uploaded.status_code == 201, uploaded.text
        _assert_limited(
            await client.post(
                "/api/v1/documents",
                headers=me,
                files={"file": ("n3.txt", b"hi " * 50, "text/plain")},
            ),
            "user",
        )
        # Health checks are never limited (load balancers poll them).
        assert (await client.get("/api/v1/health")).status_code == 200
