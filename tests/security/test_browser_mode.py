"""Cookie mode for the browser: HttpOnly cookies, CSRF on unsafe requests, headers, CORS."""

from __future__ import annotations

import httpx

from tests.conftest import Stack
from tests.helpers import PASSWORD, assert_envelope


async def test_cookie_session_needs_csrf_for_unsafe_requests(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    response = await client.post(
        "/api/v1/auth/login", json={"email": stack.users["uploader"], "password": PASSWORD}
    )
    assert response.status_code == 200
    cookies = {c.split("=", 1)[0]: c.lower() for c in response.headers.get_list("set-cookie")}
    for name in ("docflow_access", "docflow_refresh"):
        assert "httponly" in cookies[name]
        assert "samesite=strict" in cookies[name]
    assert "httponly" not in cookies["docflow_csrf"]  # the page must read it to send it back
    csrf = client.cookies["docflow_csrf"]
    assert csrf == response.json()["csrf_token"]

    # GET works with the cookie alone (EventSource cannot send headers).
    listing = await client.get("/api/v1/documents")
    assert listing.status_code == 200
    async with client.stream("GET", "/api/v1/documents/stream") as stream:
        assert stream.status_code == 200

    upload = {"file": ("cookie.txt", b"uploaded from a browser " * 20, "text/plain")}
    error = assert_envelope(await client.post("/api/v1/documents", files=upload), 403, "forbidden")
    assert error["details"]["reason"] == "csrf"
    assert_envelope(
        await client.post("/api/v1/documents", files=upload, headers={"X-CSRF-Token": "forged"}),
        403,
        "forbidden",
    )
    ok = await client.post("/api/v1/documents", files=upload, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201, ok.text
    assert_envelope(await client.post("/api/v1/auth/tokens", json={"name": "x"}), 403, "forbidden")

    # An API token is never accepted from a cookie.
    client.cookies.set("docflow_access", "df_" + "A" * 43, path="/api")
    assert_envelope(await client.get("/api/v1/documents"), 401, "unauthorized")


async def test_security_headers_and_closed_cors(client: httpx.AsyncClient) -> None:
    evil = {"Origin": "https://evil.example"}
    response = await client.get("/api/v1/health", headers=evil)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "access-control-allow-origin" not in response.headers
    preflight = await client.options(
        "/api/v1/documents", headers={**evil, "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-credentials" not in preflight.headers
