"""Prometheus metrics on the API, and .env.example keeping up with the settings."""

from __future__ import annotations

import re

import httpx

from docflow.config import Settings
from tests.conftest import ROOT, Stack
from tests.helpers import PASSWORD


def test_api_metrics_report_requests_streams_queues_and_pipeline(stack: Stack) -> None:
    token = httpx.post(
        f"{stack.base_url}/api/v1/auth/login",
        json={"email": stack.users["uploader"], "password": PASSWORD},
    )
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    created = httpx.post(
        f"{stack.base_url}/api/v1/documents",
        headers=headers,
        files={"file": ("m.txt", b"Invoice 5 total 3 EUR", "text/plain")},
    )
    assert created.status_code == 201
    with httpx.stream(
        "GET", f"{stack.base_url}/api/v1/documents/stream", headers=headers, timeout=30
    ) as stream:
        lines = stream.iter_lines()
        while next(lines) != "event: snapshot":  # the stream is open and subscribed now
            pass
        body = httpx.get(f"{stack.base_url}/metrics").text
    assert re.search(r"^docflow_open_streams [1-9]", body, re.M), stack.api.tail()
    assert re.search(
        r'^docflow_http_requests_total\{method="POST",route="/api/v1/documents",'
        r'status="201"\} [1-9]',
        body,
        re.M,
    )
    # Ids in paths are folded into one label, so a million documents are not a million series.
    assert "/api/v1/documents/{id}" in body or created.json()["id"] not in body
    assert created.json()["id"] not in body
    assert re.search(r'^docflow_queue_depth\{queue="documents"\} \d', body, re.M)
    assert re.search(
        r'^docflow_pipeline_events_total\{type="document.uploaded"\} [1-9]', body, re.M
    )
    assert 'docflow_documents{status="' in body


def test_env_example_documents_every_setting() -> None:
    text = (ROOT / ".env.example").read_text()
    missing = []
    for name, field in Settings.model_fields.items():
        names = {f"DOCFLOW_{name.upper()}"}
        alias = field.validation_alias
        names |= {str(c) for c in getattr(alias, "choices", [])}
        if not any(re.search(rf"^#?{re.escape(n)}=", text, re.M) for n in names):
            missing.append(name)
    assert not missing, f".env.example lacks: {missing}"
