"""Debian's nginx with deploy/nginx/docflow.conf, live in front of the real API (`stack`).

A private nginx instance (own prefix, pid file and port; never the system service) is rendered
with deploy/nginx/render.sh, the same template compose uses.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from docflow.embedded import free_port
from tests.conftest import ROOT, Stack
from tests.helpers import frames, login

pytestmark = pytest.mark.skipif(
    shutil.which("nginx") is None, reason="nginx not installed (apt-get install nginx)"
)

UPLOAD_LIMIT = 1024 * 1024  # rendered small so the oversize test sends little
SECURITY = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


@dataclass
class Edge:
    url: str
    prefix: Path


@pytest.fixture(scope="module")
def edge(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    out = tmp_path_factory.mktemp("edge")
    ui = out / "ui"
    ui.mkdir()
    (ui / "index.html").write_text("<!doctype html><title>Docflow</title><p>Docflow</p>")
    port = free_port()
    env = {
        **os.environ,
        "DOCFLOW_UPSTREAM": urlparse(stack.base_url).netloc,
        "DOCFLOW_LISTEN": f"127.0.0.1:{port}",
        "DOCFLOW_UI_ROOT": str(ui),
        "DOCFLOW_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT),
        "DOCFLOW_RATE": "5r/s",
        "DOCFLOW_BURST": "10",
        "DOCFLOW_STREAMS": "4",
    }
    subprocess.run(
        ["bash", str(ROOT / "deploy/nginx/render.sh"), str(out)],
        env=env,
        check=True,
        capture_output=True,
    )
    argv = ["nginx", "-p", str(out), "-c", str(out / "nginx.conf")]
    # As root, nginx's workers would drop to "nobody", who cannot read the temp directory.
    directives = "daemon off;" + (" user root;" if os.geteuid() == 0 else "")
    check = subprocess.run([*argv, "-t"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen(
        [*argv, "-g", directives],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while True:
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "nginx did not come up"
        time.sleep(0.2)
    try:
        yield Edge(url, out)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _pause_for_bucket() -> None:
    # Let the per-IP leaky bucket drain so one test's burst does not spill into the next.
    time.sleep(2.5)


def test_ui_and_api_answer_with_security_headers(edge: Edge) -> None:
    _pause_for_bucket()
    page = httpx.get(f"{edge.url}/")
    api = httpx.get(f"{edge.url}/api/v1/health")
    missing = httpx.get(f"{edge.url}/api/v1/nope")
    for response in (page, api, missing):
        for name, value in SECURITY.items():
            # Exactly one copy: the edge hides the API's own so none is sent twice.
            assert response.headers.get_list(name) == [value], (response.url, name)
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert page.status_code == 200
    assert "Docflow" in page.text
    assert api.status_code == 200
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert "x-request-id" in api.headers
    assert httpx.get(f"{edge.url}/metrics").status_code == 404  # not exposed to the internet


def test_a_burst_from_one_address_gets_429_with_the_error_envelope(edge: Edge) -> None:
    _pause_for_bucket()

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=edge.url) as client:
            return await asyncio.gather(*(client.get("/api/v1/health") for _ in range(40)))

    responses = asyncio.run(burst())
    codes = [r.status_code for r in responses]
    limited = [r for r in responses if r.status_code == 429]
    assert codes.count(200) >= 10, codes  # the burst allowance is served
    assert len(limited) >= 15, codes
    body = limited[0].json()
    assert body["error"]["code"] == "rate_limited"
    assert limited[0].headers["retry-after"] == "1"
    assert limited[0].headers["x-frame-options"] == "DENY"


def test_an_upload_over_the_limit_gets_413_from_the_edge(edge: Edge, stack: Stack) -> None:
    _pause_for_bucket()
    token = httpx.post(
        f"{edge.url}/api/v1/auth/login",
        json={"email": stack.users["uploader"], "password": "correct-horse-battery"},
    )
    assert token.status_code == 200, token.text
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    big = b"x" * (UPLOAD_LIMIT * 3)
    response = httpx.post(
        f"{edge.url}/api/v1/documents",
        headers=headers,
        files={"file": ("big.txt", big, "text/plain")},
        timeout=30,
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_stream_events_pass_through_unbuffered_and_uncompressed(
    edge: Edge,
    stack: Stack,
) -> None:
    _pause_for_bucket()
    async with httpx.AsyncClient(base_url=edge.url, timeout=30) as client:
        headers = await login(client, stack.users["uploader"])
        async with client.stream(
            "GET",
            "/api/v1/documents/stream",
            headers={**headers, "Accept-Encoding": "gzip"},
            timeout=None,
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert "content-encoding" not in response.headers
            assert response.headers["x-frame-options"] == "DENY"
            reader = frames(response)
            first = await asyncio.wait_for(anext(reader), 5)
            assert first.event == "snapshot"
            # Upload on a second connection; its first event must cross nginx at once.
            async with httpx.AsyncClient(base_url=edge.url, timeout=30) as other:
                created = await other.post(
                    "/api/v1/documents",
                    headers=headers,
                    files={"file": ("edge.txt", b"Invoice 42 total 10 EUR", "text/plain")},
                )
            assert created.status_code == 201, created.text
            sent_at = time.monotonic()
            doc_id = created.json()["id"]
            async with asyncio.timeout(20):
                async for frame in reader:
                    if frame.data.get("document_id") == doc_id:
                        break
            delay = time.monotonic() - sent_at
    # A buffering proxy would hold these few hundred bytes until its buffer filled or the
    # stream ended; through the edge they arrive about as fast as directly.
    assert frame.event in {"document.uploaded", "stage.started"}
    assert delay < 3.0, f"first event took {delay:.2f}s through nginx"
