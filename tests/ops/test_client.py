"""`docflow upload --follow`, `docflow status` and `docflow export` against the running stack."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import ROOT, Stack
from tests.fixtures.files import make_pdf
from tests.helpers import PASSWORD

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def docflow(
    stack: Stack, *args: str, email: str | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    env = {**stack.env, "DOCFLOW_URL": stack.base_url, "COLUMNS": "120"}
    if email:
        env |= {"DOCFLOW_EMAIL": email, "DOCFLOW_PASSWORD": PASSWORD}
    return subprocess.run(
        [sys.executable, "-m", "docflow.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_upload_follow_shows_every_document_reach_review(stack: Stack, tmp_path: Path) -> None:
    first, second = tmp_path / "invoice.pdf", tmp_path / "notes.txt"
    first.write_bytes(make_pdf(["Invoice 2041. Total due 120 EUR within 30 days."]))
    second.write_text("Meeting notes: the contract renewal is due in March.\n")
    result = docflow(
        stack,
        "upload",
        str(first),
        str(second),
        "--follow",
        "--timeout",
        "120",
        email=stack.users["uploader"],
    )
    assert result.returncode == 0, result.stdout + result.stderr
    ids = UUID.findall(result.stdout)
    assert len(set(ids)) == 2, result.stdout
    assert "100%" in result.stdout  # the progress bars ran to the end
    final_lines = [line for line in result.stdout.splitlines() if "review" in line]
    assert any("invoice.pdf" in line for line in final_lines), result.stdout
    assert any("notes.txt" in line for line in final_lines), result.stdout


def test_upload_follow_exits_non_zero_when_a_document_fails(stack: Stack, tmp_path: Path) -> None:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7\nthis is not really a pdf\n" + bytes(range(256)) * 4)
    result = docflow(
        stack, "upload", str(broken), "--follow", "--timeout", "120", email=stack.users["uploader"]
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "failed" in result.stdout
    doc_id = UUID.findall(result.stdout)[0]
    status = docflow(stack, "status", doc_id, email=stack.users["uploader"])
    assert status.returncode == 1  # status also says "this one failed" through its exit code
    assert "failed" in status.stdout
    assert "error" in status.stdout


def test_status_shows_stage_timings(stack: Stack, tmp_path: Path) -> None:
    note = tmp_path / "memo.txt"
    note.write_text("Internal memo: the office closes early on Friday.\n")
    upload = docflow(stack, "upload", str(note), "--follow", email=stack.users["uploader"])
    assert upload.returncode == 0, upload.stdout + upload.stderr
    doc_id = UUID.findall(upload.stdout)[0]
    result = docflow(stack, "status", doc_id, email=stack.users["uploader"])
    assert result.returncode == 0, result.stderr
    assert "status: review" in result.stdout
    assert "extract ms:" in result.stdout
    # Someone else's document is not found for another uploader.
    other = docflow(stack, "status", doc_id, email=stack.users["other"])
    assert other.returncode == 2
    assert "not found" in other.stderr.lower()


def test_wrong_password_is_a_clear_error(stack: Stack) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "docflow.cli",
            "status",
            "00000000-0000-0000-0000-000000000000",
            "--url",
            stack.base_url,
            "--email",
            stack.users["uploader"],
            "--password",
            "nope-nope",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=stack.env,
        timeout=60,
    )
    assert result.returncode == 2
    assert "sign-in failed" in result.stderr


def test_export_csv_writes_the_finalised_documents(stack: Stack, tmp_path: Path) -> None:
    note = tmp_path / "export-me.txt"
    note.write_text("Invoice 77: total 99 EUR, payment due in 14 days.\n")
    upload = docflow(stack, "upload", str(note), "--follow", email=stack.users["uploader"])
    assert upload.returncode == 0, upload.stdout + upload.stderr
    doc_id = UUID.findall(upload.stdout)[0]
    login = httpx.post(
        f"{stack.base_url}/api/v1/auth/login",
        json={"email": stack.users["reviewer"], "password": PASSWORD},
    )
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    approved = httpx.post(
        f"{stack.base_url}/api/v1/review/{doc_id}/approve",
        headers=headers,
        json={"title": "Exported by the CLI"},
    )
    assert approved.status_code == 200, approved.text
    out = tmp_path / "export.csv"
    result = docflow(
        stack, "export", "--format", "csv", "-o", str(out), email=stack.users["reviewer"]
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(out.open(newline="", encoding="utf-8-sig")))
    mine = [row for row in rows if row.get("id") == doc_id]
    assert len(mine) == 1, rows[:3]
    assert mine[0]["title"] == "Exported by the CLI"
    assert not (tmp_path / "export.csv.part").exists()
