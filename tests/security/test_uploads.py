"""Hostile uploads: each one ends as it should, and an ordinary document beside it still
reaches review (the worker survives whatever it was handed)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import Infra, Proc, Stack, start_api, wait_ready
from tests.fixtures.files import (
    SAMPLE_TEXTS,
    make_docx,
    make_pdf,
    make_png_text,
    make_unsafe_path_docx,
    make_zip_bomb_docx,
)
from tests.helpers import assert_envelope, upload, wait_status
from tests.security.hostile import (
    billion_laughs_docx,
    billion_laughs_html,
    billion_laughs_odt,
    nested_flate_pdf,
)

LIMIT = 1024 * 1024


@pytest.fixture(scope="module")
def small_api(
    infra: Infra,
    stack: Stack,  # noqa: ARG001  (the stack's worker makes it ready)
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, Path, Path]]:
    """An API with a 1 MiB limit, files on disk and its own temp dir, so leftovers show."""
    root = tmp_path_factory.mktemp("small-api")
    files, tmp = root / "files", root / "tmp"
    files.mkdir()
    tmp.mkdir()
    proc: Proc
    proc, base_url = start_api(
        infra,
        extra_env={
            "DOCFLOW_MAX_UPLOAD_BYTES": str(LIMIT),
            "DOCFLOW_STORAGE_BACKEND": "filesystem",
            "DOCFLOW_STORAGE_PATH": str(files),
            "TMPDIR": str(tmp),
        },
    )
    try:
        wait_ready(base_url, [proc])
        yield base_url, files, tmp
    finally:
        proc.stop()
        # What it stored has its original on a disk only this API sees: in the database the
        # whole suite shares, those rows would look damaged to the next reader (the restore
        # drill's check of every original, the stack's worker).
        stored = [uuid.UUID(hex=path.name) for path in files.rglob("*") if path.is_file()]
        with psycopg.connect(infra.database_url) as conn:
            conn.execute("delete from documents where id = any(%s)", (stored,))


def _leftovers(*dirs: Path) -> list[Path]:
    return [p for d in dirs for p in d.rglob("*") if p.is_file()]


async def _total(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    return int((await client.get("/api/v1/documents", headers=headers)).json()["total"])


async def test_oversize_upload_is_413_while_streaming_and_leaves_nothing(
    small_api: tuple[str, Path, Path], auth: dict[str, dict[str, str]]
) -> None:
    base_url, files, tmp = small_api
    me = auth["uploader"]
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        before = await _total(client, me)
        big = b"All work and no play makes Jack a dull boy.\n" * (3 * LIMIT // 44)
        # With a Content-Length the refusal comes before the body is read.
        declared = await client.post(
            "/api/v1/documents", headers=me, files={"file": ("big.txt", big, "text/plain")}
        )
        assert_envelope(declared, 413, "payload_too_large")

        # Without one (chunked), the limit holds while the bytes stream in.
        boundary = "docflowboundary"

        async def body() -> AsyncIterator[bytes]:
            yield (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                f'filename="big.txt"\r\nContent-Type: text/plain\r\n\r\n'
            ).encode()
            for start in range(0, len(big), 64 * 1024):
                yield big[start : start + 64 * 1024]
                await asyncio.sleep(0)
            yield f"\r\n--{boundary}--\r\n".encode()

        streamed = await client.post(
            "/api/v1/documents",
            content=body(),
            headers={**me, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        error = assert_envelope(streamed, 413, "payload_too_large")
        assert error["details"]["limit_bytes"] == LIMIT
        assert await _total(client, me) == before
        assert _leftovers(files, tmp) == []

        # The control: a file under the limit is stored where we looked.
        ok = await client.post(
            "/api/v1/documents",
            headers=me,
            files={"file": ("small.txt", big[: LIMIT // 2], "text/plain")},
        )
        assert ok.status_code == 201, ok.text
        assert len(_leftovers(files)) == 1
        assert _leftovers(tmp) == []


SPOOFED = [
    ("invoice.pdf", make_png_text("Invoice 42"), "application/pdf"),
    ("scan.png", make_pdf(["Just a PDF"]), "image/png"),
    ("report.docx", make_pdf(["Not a Word file"]), "application/msword"),
    ("notes.txt", b"\x7fELF\x02\x01\x01" + bytes(range(256)) * 64, "text/plain"),
    ("setup.exe", b"MZ\x90\x00" + bytes(range(256)) * 64, "application/octet-stream"),
    ("table.csv", make_docx(["a Word file named like a table"]), "text/csv"),
    ("page.html", b"GIF89a" + bytes(range(256)) * 16, "text/html"),
]


async def test_content_that_contradicts_its_name_is_415(
    client: httpx.AsyncClient, auth: dict[str, dict[str, str]]
) -> None:
    me = auth["uploader"]
    before = await _total(client, me)
    for name, data, declared in SPOOFED:
        response = await client.post(
            "/api/v1/documents", headers=me, files={"file": (name, data, declared)}
        )
        error = assert_envelope(response, 415, "unsupported_media_type")
        assert "Traceback" not in error["message"], name
    assert await _total(client, me) == before


async def test_hostile_files_fail_their_own_document_and_nothing_else(
    client: httpx.AsyncClient, auth: dict[str, dict[str, str]]
) -> None:
    me = auth["uploader"]
    hostile = {
        "bomb.docx": (make_zip_bomb_docx(), "zip bomb"),
        "slip.docx": (make_unsafe_path_docx(), "outside the archive"),
        "laughs.docx": (billion_laughs_docx(), "cannot be read"),
        "laughs.odt": (billion_laughs_odt(), "cannot be read"),
    }
    ids = {
        name: (await upload(client, me, name, data))["id"] for name, (data, _) in hostile.items()
    }
    normal = await upload(client, me, "ordinary.txt", SAMPLE_TEXTS["letter"].encode(), "text/plain")
    for name, (_, reason) in hostile.items():
        body = await wait_status(client, me, ids[name], {"failed", "review"}, timeout=120)
        assert body["status"] == "failed", (name, body)
        assert reason in body["error"], (name, body["error"])
        assert "Traceback" not in body["error"]
    assert (await wait_status(client, me, normal["id"], {"review", "failed"}))["status"] == "review"


async def test_entity_bomb_html_is_read_without_expanding_entities(
    client: httpx.AsyncClient, auth: dict[str, dict[str, str]]
) -> None:
    me = auth["uploader"]
    doc = await upload(client, me, "laughs.html", billion_laughs_html(), "text/html")
    body = await wait_status(client, me, doc["id"], {"failed", "review"}, timeout=120)
    assert body["status"] == "review", body
    text = (await client.get(f"/api/v1/documents/{doc['id']}/text", headers=me)).json()["text"]
    assert "Laughing matters" in text
    assert "lollollol" not in text
    assert len(text) < 10_000


async def test_nested_flate_pdf_is_bounded_and_the_worker_carries_on(
    client: httpx.AsyncClient, auth: dict[str, dict[str, str]]
) -> None:
    me = auth["uploader"]
    bomb = nested_flate_pdf(expanded_mb=128, rounds=3)
    assert len(bomb) < 10_000  # a few KB that inflate to 128 MB
    doc = await upload(client, me, "figures.pdf", bomb, "application/pdf")
    normal = await upload(client, me, "after.txt", SAMPLE_TEXTS["contract"].encode(), "text/plain")
    body = await wait_status(client, me, doc["id"], {"failed", "review"}, timeout=180)
    if body["status"] == "failed":
        assert "Traceback" not in body["error"]
        assert body["error"]
    else:
        text = (await client.get(f"/api/v1/documents/{doc['id']}/text", headers=me)).json()
        assert "Quarterly figures" in text["text"]
    assert (await wait_status(client, me, normal["id"], {"review", "failed"}))["status"] == "review"


async def test_traversal_names_are_only_display_names(
    client: httpx.AsyncClient, auth: dict[str, dict[str, str]]
) -> None:
    me = auth["uploader"]
    cases = {
        "../../../../etc/passwd.txt": "passwd.txt",
        "..\\..\\windows\\system32\\boot.txt": "boot.txt",
        "/abs/path/report.txt": "report.txt",
        "invoice\u202etxt.exe.txt": "invoicetxt.exe.txt",
        "..": "untitled",
    }
    docs = {}
    for raw, shown in cases.items():
        doc = await upload(client, me, raw, SAMPLE_TEXTS["letter"].encode(), "text/plain")
        assert doc["filename"] == shown, (raw, doc["filename"])
        docs[raw] = doc["id"]
    for doc_id in docs.values():
        assert (await wait_status(client, me, doc_id, {"review", "failed"}))["status"] == "review"
