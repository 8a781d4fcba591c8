"""`make run` (docflow run) on a machine with nothing configured: embedded PostgreSQL and Redis,
every process up and healthy, Ctrl-C leaves nothing behind, and a second run keeps the data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from docflow.embedded import free_port
from tests.conftest import ROOT

ADMIN, PASSWORD = "first-admin@example.com", "first-admin-password"


def _start(var: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "DOCFLOW_UI_DIR"}
    }
    env.update(
        {
            "DOCFLOW_VAR_DIR": str(var),
            "PORT": str(port),
            "FLOWER_PORT": str(free_port()),
            "DOCFLOW_REDIS_PORT": str(free_port()),
            "DOCFLOW_SKIP_UI_BUILD": "1",
            "DOCFLOW_ADMIN_EMAIL": ADMIN,
            "DOCFLOW_ADMIN_PASSWORD": PASSWORD,
            "DOCFLOW_SECRET_KEY": "run-test-secret-run-test-secret-run-test",
        }
    )
    return subprocess.Popen(
        [sys.executable, "-m", "docflow.cli", "run"],
        env=env,
        cwd=ROOT,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def _ready(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            # Ready as a person sees it: the health check passes and the banner is printed
            # (make run polls every 0.5 s, so the banner can trail our own check).
            ok = httpx.get(f"{base}/api/v1/health/ready", timeout=3).status_code == 200
            if ok and "Docflow is ready" in log.read_text():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"not ready:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
    family = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    assert proc.wait(90) == 0
    time.sleep(1)
    return [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_make_run_starts_everything_stops_cleanly_and_keeps_data(tmp_path: Path) -> None:
    var, log, port = tmp_path / "var", tmp_path / "run.log", free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _start(var, port, log)
    try:
        _ready(base, proc, log)
        token = httpx.post(
            f"{base}/api/v1/auth/login", json={"email": ADMIN, "password": PASSWORD}
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        doc = httpx.post(
            f"{base}/api/v1/documents",
            headers=auth,
            files={"file": ("kept.txt", b"Kept across restarts. " * 30)},
        ).json()
        deadline = time.monotonic() + 60
        while (
            httpx.get(f"{base}/api/v1/documents/{doc['id']}", headers=auth).json()["status"]
            != "review"
        ):
            assert time.monotonic() < deadline
            time.sleep(0.3)
        text = log.read_text()
        for name in ("api", "worker", "beat", "flower"):
            assert f"{name:>7} |" in text, f"no log lines prefixed by {name}"
        assert "Docflow is ready" in text
    finally:
        leftovers = _stop(proc)
    assert leftovers == [], f"processes left behind: {[p.cmdline() for p in leftovers]}"

    proc = _start(var, port, log)
    try:
        _ready(base, proc, log)
        token = httpx.post(
            f"{base}/api/v1/auth/login", json={"email": ADMIN, "password": PASSWORD}
        ).json()["access_token"]
        again = httpx.get(
            f"{base}/api/v1/documents/{doc['id']}", headers={"Authorization": f"Bearer {token}"}
        )
        assert again.status_code == 200 and again.json()["status"] == "review"
    finally:
        assert _stop(proc) == []
