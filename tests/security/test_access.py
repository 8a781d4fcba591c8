"""Who may reach what: the BOLA matrix from the OpenAPI routes, roles, mass assignment."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.fixtures.files import SAMPLE_TEXTS
from tests.helpers import assert_envelope, upload, wait_status

# Every route that takes a document id, with a request that would succeed for its owner.
# A new route with {document_id} and no entry here fails test_every_document_route_has_a_case.
DOCUMENT_ROUTES: dict[tuple[str, str], dict[str, Any] | None] = {
    ("GET", "/api/v1/documents/{document_id}"): None,
    ("GET", "/api/v1/documents/{document_id}/text"): None,
    ("GET", "/api/v1/documents/{document_id}/events"): None,
    ("GET", "/api/v1/documents/{document_id}/stream"): None,
    ("POST", "/api/v1/review/{document_id}/approve"): {"note": "fine"},
    ("POST", "/api/v1/review/{document_id}/reject"): {"reason": "not ours"},
    ("POST", "/api/v1/review/{document_id}/reprocess"): {"from_stage": "analyze"},
}
REVIEWER_ONLY_PREFIX = "/api/v1/review/"
ADMIN_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/api/v1/users", None),
    ("POST", "/api/v1/users", {"email": "new-person@example.com", "password": "long enough pw"}),
    ("GET", "/api/v1/users/{user_id}", None),
    ("PATCH", "/api/v1/users/{user_id}", {"role": "admin"}),
]


async def _routes_with(client: httpx.AsyncClient, param: str) -> set[tuple[str, str]]:
    schema = (await client.get("/api/v1/openapi.json")).json()
    return {
        (method.upper(), path)
        for path, item in schema["paths"].items()
        if param in path
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }


async def _call(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    headers: dict[str, str],
    body: dict[str, Any] | None,
) -> httpx.Response:
    if path.endswith("/stream") and method == "GET":
        async with client.stream("GET", path, headers=headers) as response:
            await response.aread() if response.status_code != 200 else None
            return response
    return await client.request(method, path, headers=headers, json=body)


async def test_every_document_route_has_a_case(client: httpx.AsyncClient) -> None:
    assert await _routes_with(client, "{document_id}") == set(DOCUMENT_ROUTES)


async def test_bola_matrix_another_users_document_is_404(
    client: httpx.AsyncClient, auth: dict[str, dict[str, str]]
) -> None:
    owner, stranger, reviewer = auth["uploader"], auth["other"], auth["reviewer"]
    doc = await upload(client, owner, "private.txt", SAMPLE_TEXTS["resume"].encode(), "text/plain")
    await wait_status(client, owner, doc["id"], {"review"})
    missing = str(uuid.uuid4())
    for (method, template), body in DOCUMENT_ROUTES.items():
        path = template.format(document_id=doc["id"])
        review_route = template.startswith(REVIEWER_ONLY_PREFIX)
        # An uploader may not review at all (403); everything else about someone else's
        # document looks exactly like a document that does not exist (404).
        expected = (403, "forbidden") if review_route else (404, "not_found")
        response = await _call(client, method, path, stranger, body)
        assert response.status_code == expected[0], (method, template, response.status_code)
        if not path.endswith("/stream"):
            assert_envelope(response, *expected)
        # A reviewer asking for a document that does not exist gets the same 404.
        gone = await _call(client, method, template.format(document_id=missing), reviewer, body)
        assert gone.status_code == 404, (method, template, gone.status_code)
        if not review_route:  # the owner, for contrast, gets through
            assert (await _call(client, method, path, owner, body)).status_code == 200, template
    # Lists and exports do not leak it either.
    listing = (
        await client.get("/api/v1/documents", headers=stranger, params={"page_size": 200})
    ).json()
    assert doc["id"] not in {d["id"] for d in listing["items"]}
    exported = (await client.get("/api/v1/export", headers=stranger)).json()
    assert doc["id"] not in {row["id"] for row in exported}
    # Nothing the stranger did changed the document.
    after = (await client.get(f"/api/v1/documents/{doc['id']}", headers=owner)).json()
    assert after["status"] == "review"


async def test_role_matrix(client: httpx.AsyncClient, auth: dict[str, dict[str, str]]) -> None:
    admin_id = (await client.get("/api/v1/auth/me", headers=auth["admin"])).json()["id"]
    missing = str(uuid.uuid4())
    user_routes = await _routes_with(client, "/api/v1/users")
    assert user_routes == {(m, p) for m, p, _ in ADMIN_ROUTES}
    for role in ("uploader", "other", "reviewer"):
        for method, template, body in ADMIN_ROUTES:
            path = template.format(user_id=admin_id)
            response = await client.request(method, path, headers=auth[role], json=body)
            assert_envelope(response, 403, "forbidden")
        for template in (t for (_, t) in DOCUMENT_ROUTES if t.startswith(REVIEWER_ONLY_PREFIX)):
            response = await client.post(
                template.format(document_id=missing), headers=auth[role], json=None
            )
            if role == "reviewer":  # allowed to review: the unknown document is the problem
                assert response.status_code in (404, 422), response.text
            else:
                assert_envelope(response, 403, "forbidden")
    assert (await client.get("/api/v1/users", headers=auth["admin"])).status_code == 200
    # Nobody signed in: 401 everywhere, before anything else is looked at.
    for method, template, body in ADMIN_ROUTES:
        response = await client.request(method, template.format(user_id=admin_id), json=body)
        assert_envelope(response, 401, "unauthorized")


async def test_admin_manages_accounts_but_cannot_lock_themselves_out(
    client: httpx.AsyncClient, auth: dict[str, dict[str, str]]
) -> None:
    admin = auth["admin"]
    email = f"Clerk-{uuid.uuid4().hex[:6]}@Example.com"
    made = await client.post(
        "/api/v1/users",
        headers=admin,
        json={"email": email, "password": "long enough pw", "role": "reviewer"},
    )
    assert made.status_code == 201
    assert made.json()["email"] == email.lower()
    assert_envelope(
        await client.post(
            "/api/v1/users",
            headers=admin,
            json={"email": email.upper(), "password": "long enough pw"},
        ),
        409,
        "conflict",
    )
    listed = (await client.get("/api/v1/users", headers=admin)).json()
    assert email.lower() in {u["email"] for u in listed}
    assert all("password_hash" not in u for u in listed)
    changed = await client.patch(
        f"/api/v1/users/{made.json()['id']}", headers=admin, json={"role": "uploader"}
    )
    assert changed.json()["role"] == "uploader"
    me = (await client.get("/api/v1/auth/me", headers=admin)).json()
    for body in ({"role": "uploader"}, {"is_active": False}):
        assert_envelope(
            await client.patch(f"/api/v1/users/{me['id']}", headers=admin, json=body),
            403,
            "forbidden",
        )
    assert_envelope(
        await client.patch(
            f"/api/v1/users/{uuid.uuid4()}", headers=admin, json={"role": "reviewer"}
        ),
        404,
        "not_found",
    )
    assert_envelope(
        await client.patch(f"/api/v1/users/{me['id']}", headers=admin, json={"role": "superuser"}),
        422,
        "validation_error",
    )


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/auth/login", {"email": "a@b.c", "password": "x", "role": "admin"}),
        ("POST", "/api/v1/auth/refresh", {"refresh_token": "x", "user_id": "y"}),
        ("POST", "/api/v1/auth/tokens", {"name": "n", "user_id": str(uuid.uuid4())}),
        (
            "POST",
            "/api/v1/users",
            {
                "email": "m@example.com",
                "password": "long enough pw",
                "is_active": True,
                "id": str(uuid.uuid4()),
            },
        ),
        ("PATCH", "/api/v1/users/{me}", {"email": "new@example.com"}),
        ("PATCH", "/api/v1/users/{me}", {"password_hash": "x"}),
        ("POST", "/api/v1/review/{doc}/approve", {"status": "finalised"}),
        ("POST", "/api/v1/review/{doc}/approve", {"reviewed_by": str(uuid.uuid4())}),
        ("POST", "/api/v1/review/{doc}/approve", {"owner_id": str(uuid.uuid4())}),
        ("POST", "/api/v1/review/{doc}/reject", {"reason": "x", "status": "review"}),
        ("POST", "/api/v1/review/{doc}/reprocess", {"from_stage": "extract", "owner": "me"}),
    ],
)
async def test_unknown_fields_are_refused(
    client: httpx.AsyncClient,
    auth: dict[str, dict[str, str]],
    method: str,
    path: str,
    body: dict[str, Any],
) -> None:
    me = (await client.get("/api/v1/auth/me", headers=auth["admin"])).json()["id"]
    url = path.format(me=me, doc=uuid.uuid4())
    response = await client.request(method, url, headers=auth["admin"], json=body)
    error = assert_envelope(response, 422, "validation_error")
    assert any(e["type"] == "extra_forbidden" for e in error["details"]["errors"]), error


async def test_upload_form_cannot_set_status_or_owner(
    client: httpx.AsyncClient, auth: dict[str, dict[str, str]]
) -> None:
    me = auth["uploader"]
    other_id = (await client.get("/api/v1/auth/me", headers=auth["other"])).json()["id"]
    response = await client.post(
        "/api/v1/documents",
        headers=me,
        data={"status": "finalised", "owner_id": other_id, "reviewed_by": other_id},
        files={"file": ("sneaky.txt", SAMPLE_TEXTS["letter"].encode(), "text/plain")},
    )
    assert response.status_code == 201, response.text
    doc = response.json()
    assert doc["status"] == "uploaded"
    hidden = await client.get(f"/api/v1/documents/{doc['id']}", headers=auth["other"])
    assert hidden.status_code == 404
