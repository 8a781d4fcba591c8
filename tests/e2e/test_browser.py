"""The web UI end to end: a real Chromium (Playwright Test) against the real stack.

The browser scenarios live in frontend/e2e/; this test starts the stack (API serving the built UI,
worker, PostgreSQL, Redis), makes the users and files, and runs them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from tests.conftest import ROOT, Stack, create_user
from tests.fixtures.files import SAMPLE_TEXTS, make_image_only_pdf, make_pdf
from tests.helpers import PASSWORD

FRONTEND = ROOT / "frontend"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SCAN_TEXT = (
    "INVOICE Northwind Office Supplies Ltd. Invoice Number INV-2026-001 Invoice Date "
    "12 March 2026 Bill To Acme Analytics GmbH Amount due 1396.00 GBP Payment terms 30 days"
)


def write_files(folder: Path, run: str) -> None:
    """The files the scenarios upload, named with the run's tag (e2e/docflow.spec.ts expects it)."""
    folder.mkdir(parents=True, exist_ok=True)
    # Scans go through OCR page by page: slow enough to watch every stage happen.
    (folder / f"scanned-invoice-{run}.pdf").write_bytes(make_image_only_pdf(SCAN_TEXT, pages=6))
    (folder / f"scanned-report-{run}.pdf").write_bytes(
        make_image_only_pdf("Quarterly report: revenue grew in every region this quarter", pages=6)
    )
    (folder / f"contract-{run}.pdf").write_bytes(
        make_pdf([SAMPLE_TEXTS["contract"]], title="Contract")
    )
    (folder / f"broken-{run}.pdf").write_bytes(b"%PDF-1.7\n" + b"\x00not really a pdf\x00" * 64)


@pytest.mark.slow
def test_browser_user_journeys(stack: Stack, tmp_path: Path) -> None:
    if not (FRONTEND / "out" / "index.html").is_file():
        pytest.fail(
            "frontend/out is missing: build the UI first (cd frontend && npm ci && npm run build)"
        )
    if "DOCFLOW_UI_DIR" not in stack.env:
        pytest.fail(
            "the stack started before frontend/out existed, so the API is not serving the UI"
        )
    if not (FRONTEND / "node_modules" / ".bin" / "playwright").exists():
        pytest.fail("Playwright is not installed: cd frontend && npm ci")
    if not Path(CHROMIUM).exists() or shutil.which("npx") is None:
        pytest.fail(f"needs Chromium at {CHROMIUM} (apt-get install chromium) and Node's npx")

    run = uuid.uuid4().hex[:6]
    # Users of its own, so the empty state and the queue hold only this test's documents.
    uploader, reviewer = f"e2e-uploader-{run}@example.com", f"e2e-reviewer-{run}@example.com"
    create_user(stack.infra.env, uploader, "uploader")
    create_user(stack.infra.env, reviewer, "reviewer")
    files = tmp_path / "files"
    write_files(files, run)

    env = {
        **os.environ,
        "BASE_URL": stack.base_url,
        "E2E_UPLOADER": uploader,
        "E2E_REVIEWER": reviewer,
        "E2E_PASSWORD": PASSWORD,
        "E2E_FILES": str(files),
        "E2E_RUN": run,
        "CHROMIUM_PATH": CHROMIUM,
        "NEXT_TELEMETRY_DISABLED": "1",
        "CI": os.environ.get("CI", "1"),
    }
    result = subprocess.run(
        ["npx", "--no-install", "playwright", "test"],
        cwd=FRONTEND,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    report = f"{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, (
        f"Playwright failed:\n{report[-12000:]}\n--- API log ---\n{stack.api.tail(40)}"
        f"\n--- worker log ---\n{stack.worker.tail(40)}"
    )
    assert "3 passed" in report, report[-4000:]
