"""Restore drill: back up a populated system, restore into a fresh database, find it all intact."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import ROOT, Stack
from tests.fixtures.files import make_pdf
from tests.helpers import PASSWORD


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "docflow.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def snapshot(url: str) -> dict[str, object]:
    engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as conn:
            return {
                "documents": sorted(
                    conn.execute(
                        text("SELECT id::text, filename, status, sha256 FROM documents")
                    ).all()
                ),
                "events": conn.execute(text("SELECT count(*), max(id) FROM document_events")).one(),
                "blobs": conn.execute(
                    text("SELECT count(*), sum(length(data)) FROM document_blobs")
                ).one(),
                "users": conn.execute(text("SELECT count(*) FROM users")).scalar_one(),
            }
    finally:
        engine.dispose()


@pytest.fixture
def fresh_database(stack: Stack) -> Iterator[str]:
    url = make_url(stack.infra.database_url).set(database=f"docflow_restore_{uuid.uuid4().hex[:8]}")
    yield url.render_as_string(hide_password=False)
    admin = create_engine(
        url.set(database="postgres", drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    admin.dispose()


def test_backup_then_restore_into_a_fresh_database_keeps_everything(
    stack: Stack,
    tmp_path: Path,
    fresh_database: str,
) -> None:
    login = httpx.post(
        f"{stack.base_url}/api/v1/auth/login",
        json={"email": stack.users["uploader"], "password": PASSWORD},
    )
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    pdf = make_pdf(["Backup drill: invoice 9 total 5 EUR."])
    created = httpx.post(
        f"{stack.base_url}/api/v1/documents",
        headers=headers,
        files={"file": ("drill.pdf", pdf, "application/pdf")},
    )
    assert created.status_code == 201, created.text
    doc_id = created.json()["id"]
    deadline = time.monotonic() + 90
    # A quiet system, so the copy can be compared with the original row for row.
    while (
        httpx.get(f"{stack.base_url}/api/v1/documents/{doc_id}", headers=headers).json()["status"]
        != "review"
    ):
        assert time.monotonic() < deadline, "the drill document never reached review"
        time.sleep(0.3)
    before = snapshot(stack.infra.database_url)

    made = cli(stack.env, "backup", "--out", str(tmp_path))
    assert made.returncode == 0, made.stderr
    archive = next(tmp_path.glob("docflow-backup-*.tar"))
    with tarfile.open(archive) as tar:
        assert {"manifest.json", "database.dump"} <= set(tar.getnames())

    restored = cli({**stack.env, "DATABASE_URL": fresh_database}, "restore", str(archive))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "verified" in restored.stdout
    after = snapshot(fresh_database)
    # Every document (with its checksum), every event and every stored byte came back.
    assert after == before
    assert doc_id in {row[0] for row in after["documents"]}  # type: ignore[attr-defined]

    # Restoring over a database that already holds data is refused, not merged.
    again = cli({**stack.env, "DATABASE_URL": fresh_database}, "restore", str(archive))
    assert again.returncode == 1
    assert "not empty" in again.stderr


def test_a_damaged_archive_is_refused(stack: Stack, tmp_path: Path, fresh_database: str) -> None:
    made = cli(stack.env, "backup", "--out", str(tmp_path))
    assert made.returncode == 0, made.stderr
    archive = next(tmp_path.glob("docflow-backup-*.tar"))
    damaged = tmp_path / "damaged.tar"
    with tarfile.open(archive) as src, tarfile.open(damaged, "w") as dst:
        for member in src.getmembers():
            data = src.extractfile(member)
            assert data is not None
            body = data.read()
            if member.name == "database.dump":
                body = body[:-64] + bytes(64)  # flip the tail: same size, different bytes
            member.size = len(body)
            dst.addfile(member, io.BytesIO(body))
    result = cli({**stack.env, "DATABASE_URL": fresh_database}, "restore", str(damaged))
    assert result.returncode == 1
    assert "checksum" in result.stderr
